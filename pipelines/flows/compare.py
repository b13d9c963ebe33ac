"""The ``compare`` flow: two or more runs (training or evaluation) side by side.

find the runs (ids or unique prefixes) → read what each logged (metrics, tags, params, the roles table)
→ one :class:`Comparison` of sections, rows by columns, that :mod:`~ketamine_response.pipelines.reporting.comparison`
renders for the terminal or as a self-contained HTML page. Each figure is the point estimate its interval
belongs to (:func:`estimate`); config differences list only the keys on which training runs differ.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ketamine_response.features.errors import UsageError
from ketamine_response.pipelines import listing, store

# (metric, what it is); a row shows where any run logged it
HEADLINE = (("auroc_active", "AUROC within the drug arm(s)"), ("auroc_gain_over_arm", "AUROC gain over the arm alone"),
            ("c_index_active", "Harrell's C within the drug arm(s)"), ("c_for_benefit", "c-for-benefit"),
            ("auroc", "AUROC, all arms pooled"))
COUNTS = (("n_courses", "courses"), ("n_events", "events"), ("responders_active", "drug-arm courses with the event"),
          ("non_responders_active", "drug-arm courses without it"), ("auroc_active_p", "permutation p (drug-arm AUROC)"),
          ("auroc_active_permutations", "permutations run"))
CALIBRATION = (("calibration_slope_active", "slope, drug arm(s)"), ("calibration_intercept_active", "intercept, drug arm(s)"),
               ("calibration_ici_active", "ICI (loess), drug arm(s)"), ("calibration_slope", "slope, all arms"),
               ("calibration_intercept", "intercept, all arms"), ("brier", "Brier score, all arms"))
ROLES = "benefit/biomarkers.csv"
Cell = tuple[float, float, float] | float | str


@dataclass(frozen=True)
class Comparison:
    """Runs side by side: each section a table, one row per item, one column per run (labelled by short id).
    Figures are (point, low, high) triples or plain numbers; roles cells are {role: [features]}."""

    runs: list[str]
    sections: dict[str, pd.DataFrame]


def estimate(metrics: dict[str, float], name: str) -> Cell:
    """*name*'s point estimate and its interval, or the bare value; NaN when not logged. The point is the one
    the interval is built around (one estimator per name)."""
    nan = float("nan")
    if name not in metrics:
        return nan
    point = metrics[name]
    if f"{name}_ci_low" not in metrics:
        return point
    return point, metrics[f"{name}_ci_low"], metrics.get(f"{name}_ci_high", nan)


def run_compare(ids: list[str]) -> Comparison:
    """The runs *ids* (full or unique prefixes, at least two, no repeats) compared."""
    if len(ids) < 2:
        raise UsageError("compare needs at least two run ids (or unique prefixes of them)")
    store.open_store()
    runs = listing.find_runs(ids)
    full = [r["run_id"] for r in runs]
    if len(set(full)) < len(full):
        raise UsageError("compare: the same run was named twice; name each run once")
    labels = [r["run_id"][:8] for r in runs]
    sections = {"run": _identity(runs), "headline (95% CI)": _figures(runs, HEADLINE + _r2_rows(runs)),
                "counts and tests": _figures(runs, COUNTS), "calibration (95% CI)": _figures(runs, CALIBRATION),
                "biomarker roles": _roles(runs), "config differences": config_differences(runs)}
    return Comparison(labels, {k: v.set_axis(labels, axis=1) for k, v in sections.items() if len(v)})


def _r2_rows(runs: list[dict[str, Any]]) -> tuple[tuple[str, str], ...]:
    names = sorted({m for r in runs for m in r["metrics"] if m.startswith("r2_") and "_ci_" not in m})
    return tuple((m, f"R² ({m.removeprefix('r2_').replace('_', ' ')})") for m in names)


def _identity(runs: list[dict[str, Any]]) -> pd.DataFrame:
    rows: dict[str, list[str]] = {k: [] for k in ("kind", "status", "started", "experiment", "target",
                                                  "registered model", "version",
                                                  "training run", "cohort file", "data origin", "data digest")}
    for r in runs:
        t = r["tags"]
        evaluation = t.get("run_kind") == "evaluation"
        rows["kind"].append("evaluation" if evaluation else "training")
        rows["status"].append(r["status"])
        rows["started"].append(datetime.fromtimestamp(r["start"] / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC"))
        rows["experiment"].append(r["experiment"])
        rows["target"].append(t.get("target", "-"))
        name, _, version = t.get("registered_model", "").rpartition("/")
        rows["registered model"].append(name or "-")
        rows["version"].append(_version(name, version))
        rows["training run"].append(t.get("training_run_id", "")[:8] if evaluation else "(this run)")
        rows["cohort file"].append(r["params"].get("cohort_file", "-") if evaluation else "-")
        rows["data origin"].append(t.get("data_source") or t.get("data_origin", "-"))  # synthetic:<scenario> or real:<file>
        rows["data digest"].append(t.get("data_digest", "-")[:12])
    return pd.DataFrame(rows).T


def _version(name: str, version: str) -> str:
    """``v3 @champion`` as the registry holds it now, or ``v3 no alias: <why>``."""
    if not name:
        return "-"
    info = listing.model_version(name, version)
    if info.get("aliases"):
        return f"v{version} @{', '.join(info['aliases'])}"
    reason = info.get("alias_reason", "")
    return f"v{version} no alias" + (f": {reason}" if reason else "")


def _figures(runs: list[dict[str, Any]], rows: tuple[tuple[str, str], ...]) -> pd.DataFrame:
    shown = [(name, label) for name, label in rows if any(name in r["metrics"] for r in runs)]
    return pd.DataFrame([[estimate(r["metrics"], name) for r in runs] for name, _ in shown],
                        index=[label for _, label in shown], dtype=object)


def _roles(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """Per run and scale, which features the roles table calls predictive, prognostic or both ({} when the run
    logged no roles table: an evaluation, or training without a placebo arm)."""
    cells: dict[str, list[Any]] = {"absolute scale": [], "log-odds scale": []}
    for r in runs:
        text = listing.run_text(r["run_id"], ROLES)
        if text is None:  # no roles table logged: "-" (not "none", which would say it found none)
            for cell in cells.values():
                cell.append("-")
            continue
        table = pd.read_csv(io.StringIO(text)) if text else pd.DataFrame(columns=["feature", "role_absolute", "role_log_odds"])
        for scale, column in (("absolute scale", "role_absolute"), ("log-odds scale", "role_log_odds")):
            named = table[~table[column].isin(["none", "withheld"]) & table[column].notna()]
            cells[scale].append({str(role): sorted(map(str, group["feature"])) for role, group in named.groupby(column)})
    if all(not c or c == "-" for cell in cells.values() for c in cell):
        return pd.DataFrame()
    return pd.DataFrame([cells[s] for s in cells], index=list(cells), dtype=object)


def config_differences(runs: list[dict[str, Any]]) -> pd.DataFrame:
    """The config keys (logged as params) whose values differ between the training runs; "-" where a run lacks
    the key, and in an evaluation run's column (it has no training config: its cohort file is under "run")."""
    trained = [r for r in runs if r["tags"].get("run_kind") != "evaluation"]
    keys = sorted({k for r in trained for k in r["params"]})
    rows = {k: [r["params"].get(k, "-") if r in trained else "-" for r in runs] for k in keys}
    return pd.DataFrame({k: v for k, v in rows.items() if len({r["params"].get(k, "-") for r in trained}) > 1}, dtype=object).T


def write_page(comparison: Comparison, out: str | Path) -> Path:
    """The comparison as a self-contained HTML page at *out*, written aside and renamed (exit 2 when it cannot be)."""
    from ketamine_response.features.cohort.reader import write_aside
    from ketamine_response.pipelines.reporting.comparison import render_comparison_html

    page = render_comparison_html(comparison.runs, comparison.sections, "Runs compared: " + ", ".join(comparison.runs))
    write_aside(out, lambda partial: partial.write_text(page, encoding="utf-8"))
    return Path(out)
