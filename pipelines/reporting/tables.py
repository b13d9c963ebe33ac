"""Report tables made narrow enough to read without scrolling: estimates merged with their CIs, rounded.

The logged CSVs keep every column at full precision; these display frames (all strings) are for the
HTML page only, so a reader sees an estimate, its interval and the stability figures side by side.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ACTIVE_ARMS

NAMES = {"brier": "Brier", "c_index": "Harrell's C", "c_index_active": "C within drug arm(s)", "uno_c": "Uno's C",
         "integrated_brier": "integrated Brier",
         "calibration_28d_gap": "calibration gap 28d"}
ABBREVIATIONS = {"auroc": "AUROC", "auprc": "AUPRC", "r2": "R2", "rmse": "RMSE", "mae": "MAE", "pct": "%",
                 "shap": "SHAP", "ci": "CI", "q": "q (FDR)", "n": "n"}
SMALL_CELL = 5  # fewer courses than this in a column: means and SDs are withheld (they would describe a person)


def fmt(value: object, digits: int = 3) -> str:
    """One cell: floats rounded, whole numbers without decimals, booleans as yes/no, missing as a dash."""
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return "–"
        if 0 < value < 0.5 * 10**-digits:  # a q or p value: "0.000" would read as impossible
            return f"<{10**-digits:.{digits}f}"
        return f"{value:.{digits}f}"
    return "–" if value is None or (isinstance(value, str) and not value) else str(value)


def with_ci(estimate: float, low: float, high: float, digits: int = 3) -> str:
    """``0.802 (0.738 to 0.873)``; the dash for a missing interval."""
    if any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        return fmt(estimate, digits)
    return f"{fmt(estimate, digits)} ({fmt(low, digits)} to {fmt(high, digits)})"


def label(column: str) -> str:
    """A column name a reader can wrap: words instead of snake_case, acronyms upper-case."""
    return NAMES.get(column) or " ".join(ABBREVIATIONS.get(w, w) for w in column.split("_"))


def _interval_owner(column: str, columns: list[str], position: int) -> str | None:
    """The column a ``<stem>_ci_low`` (or bare ``ci_low``) interval belongs to."""
    stem = column.removesuffix("ci_low").removesuffix("_")
    if not stem:  # a bare ci_low: the estimate just before it
        return columns[position - 1] if position else None
    for candidate in (stem, f"{stem}_estimate"):
        if candidate in columns:
            return candidate
    return next((c for c in columns if c.startswith(f"{stem}_") and "_ci_" not in c), None)


def compact(frame: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Every estimate with its ``*_ci_low``/``*_ci_high`` pair becomes one ``estimate (low to high)`` column;
    ``*_repeat_min``/``*_repeat_max`` become one range column; everything is formatted to strings."""
    columns = list(frame.columns)
    owners = {}
    for i, c in enumerate(columns):
        if c.endswith("ci_low") and (owner := _interval_owner(c, columns, i)) is not None:
            owners[owner] = (c, c.removesuffix("low") + "high")
    consumed = {c for pair in owners.values() for c in pair} | {c for c in columns if c.endswith("_repeat_max")}
    out = {}
    for c in columns:
        if c in owners and owners[c][1] in frame:
            low, high = owners[c]
            name = c.removesuffix("_estimate") + " (95% CI)"
            out[label(name)] = [with_ci(e, lo, hi, digits) for e, lo, hi in zip(frame[c], frame[low], frame[high])]
        elif c.endswith("_repeat_min") and (top := c.removesuffix("min") + "max") in frame:
            out[label(c.removesuffix("_min") + "_range")] = [f"{fmt(a, digits)} to {fmt(b, digits)}"
                                                             for a, b in zip(frame[c], frame[top])]
        elif c not in consumed:
            out[label(c)] = [fmt(v, digits) for v in frame[c]]
    return pd.DataFrame(out)


def by_model(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison table with one column per model and one row per metric: a few short columns
    instead of fifteen wide ones."""
    shown = compact(table).set_index("model").T
    return shown.rename_axis("metric").reset_index().rename_axis(None, axis=1)


def shap_display(importance: pd.DataFrame, directions: tuple[str, str], rows: int = 20) -> pd.DataFrame:
    """The SHAP importance table with its stability columns first (feature, mean |SHAP| and its range,
    top-k frequency, sign consistency, consistent), then direction and domain; source columns and rank
    are left to the CSV. *directions*: what a higher feature value does to the prediction, for + and -."""
    top = importance.head(rows)
    single = bool(len(top)) and bool(np.allclose(top["repeat_low"], top["repeat_high"]))
    spread = ["one CV repeat" if single else f"{fmt(a)} to {fmt(b)}" for a, b in zip(top["repeat_low"], top["repeat_high"])]
    return pd.DataFrame({
        "feature": top["feature"].astype(str),
        "mean |SHAP|": [fmt(v) for v in top["mean_abs_shap"]],
        "range over CV repeats": spread,
        "topk frequency": [fmt(v, 2) for v in top["topk_frequency"]],
        "sign consistency": [fmt(v, 2) for v in top["sign_consistency"]],
        "consistent": [fmt(bool(v)) for v in top["consistent"]],
        "direction (value up)": [dict(zip("+-", directions)).get(str(v), "–")
                                 for v in top["direction"]],
        "domain": top["domain"].astype(str),
        "main | modifier part": [f"{fmt(a)} | {fmt(b)}" for a, b in zip(top["mean_abs_shap_main"], top["mean_abs_shap_modifier"])],
    })


def _mean_sd(values: pd.Series) -> str:
    seen = values.dropna()
    if len(seen) < SMALL_CELL:
        return "–"
    return f"{seen.mean():.1f} ({seen.std():.1f})"


def _share(flags: pd.Series) -> str:
    seen = flags.dropna()
    if len(seen) < SMALL_CELL:
        return "–"
    return f"{seen.mean():.0%} ({int(seen.sum())})"


def _get(frame: pd.DataFrame, name: str) -> pd.Series:
    """A column, or all-missing where the cohort did not have it (table 1 then shows a dash)."""
    return pd.Series(frame[name], dtype=float) if name in frame else pd.Series(np.nan, index=frame.index)


def _column(frame: pd.DataFrame, patients: np.ndarray, y: np.ndarray, regression: bool) -> list[str]:
    """One arm's column of table 1 (aggregates over its courses)."""
    events = (_mean_sd(pd.Series(y)) if regression else
              f"{int(np.nansum(y))} ({np.nanmean(y):.0%})" if len(y) else "–")
    return [str(len(frame)), str(len(np.unique(patients))), _mean_sd(_get(frame, "age")),
            _share(_get(frame, "sex_female")), _mean_sd(_get(frame, "madrs_baseline")), events]


def participants_table(features: pd.DataFrame, treatments: np.ndarray, patients: np.ndarray, y: np.ndarray,
                       regression: bool, events: str = "Events (outcome = 1), n (%)") -> pd.DataFrame:
    """Table 1: participant characteristics of the analysed courses by arm, then all arms together.

    *features* is the feature frame restricted to the analysed courses (same order as the arrays).
    Means and shares are withheld for fewer than :data:`SMALL_CELL` courses. *events* names the outcome row of a
    0/1 outcome (harms are not events of response).
    """
    outcome = "Outcome: % change in MADRS, mean (SD)" if regression else events
    rows = ["Courses", "Patients", "Age, years, mean (SD)", "Female, % (n)", "Baseline MADRS, mean (SD)", outcome]
    arms = [a for a in (*ACTIVE_ARMS, "placebo") if (treatments == a).any()]
    arms += sorted(set(map(str, treatments)) - set(arms))
    table = {"characteristic": rows}
    for arm in arms:
        mask = treatments == arm
        table[arm] = _column(features[mask], patients[mask], y[mask], regression)
    if len(arms) > 1:
        table["all arms"] = _column(features, patients, y, regression)
    return pd.DataFrame(table)
