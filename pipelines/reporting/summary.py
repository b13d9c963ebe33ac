"""The report's sentences: headline, TRIPOD+AI items (validation, intended use, operating point,
calibration, data digest) and the identity block. Aggregates only."""

from __future__ import annotations

import numpy as np

from ketamine_response.features.tasks import HORIZONS, TaskKind, parse_target, task_of
from ketamine_response.models.families import SELECTED
from ketamine_response.pipelines.evaluation.evaluate import Evaluation
from ketamine_response.pipelines.reporting.tables import with_ci
from ketamine_response.pipelines.result import TrainingResult

CONSISTENCY_RULE = "top 5 in at least 80% of outer folds with one direction in at least 80%"


def validation_line(result: TrainingResult) -> str:
    """The validation design as run: site CV has one outer fold per site and no repeats, whatever the config says."""
    c = result.config
    outer = len(result.folds)
    if c.cv.design == "site":
        design = (f"leave-one-site-out ({len(np.unique(result.data.sites))} sites, so {outer} outer folds, "
                  "no repeats)")
    else:
        repeats = f"{c.cv.outer_repeats} repeat{'s' if c.cv.outer_repeats > 1 else ''}"
        design = f"stratified k-fold ({c.cv.outer_folds} folds x {repeats} = {outer} outer folds)"
    return (f"nested CV: outer {design}, inner {c.cv.inner_folds} folds, patient-grouped; family chosen in the "
            f"inner loop by {result.data.task.selection_metric or c.search.selection_metric}")


def digest_text(source: str, digest: str) -> str:
    """The data file and its digest, labelled as a prefix when it is not the whole SHA-256."""
    if len(digest) == 64:
        return f"{source} (SHA-256 {digest})"
    return f"{source} (first {len(digest)} hex characters of its SHA-256: {digest})"


def operating_point(result: TrainingResult) -> str:
    """The decision threshold and sensitivity / specificity at it, from the pooled out-of-fold predictions."""
    ev = result.evaluations[SELECTED]
    if ev.task.kind is TaskKind.SURVIVAL:
        return (f"not applicable: the prediction is a relapse risk by day {HORIZONS[0]} for ranking courses and is "
                "judged by its C-index and calibration (no decision threshold)")
    if not ev.task.probabilities:
        return "not applicable: the target is continuous (no decision threshold)"
    t = result.config.evaluation.threshold
    folds = np.array([f.threshold for f in result.folds])
    rule = (f"each outer fold's training event rate (mean {folds.mean():.3f}, range {folds.min():.3f} to "
            f"{folds.max():.3f})" if t == "prevalence" else f"{float(t):.3f}")
    m, ci = ev.metrics, ev.ci
    parts = [f"{name} {with_ci(m[key], *ci.get(key, (np.nan, np.nan)))}"
             for name, key in (("sensitivity", "sensitivity"), ("specificity", "specificity"),
                               ("balanced accuracy", "balanced_accuracy")) if key in m]
    return f"predicted probability ≥ {rule}: " + ", ".join(parts) + " (out of fold, per CV repeat then averaged; patient bootstrap)"


def calibration_text(ev: Evaluation) -> str:
    """Calibration slope and intercept with their CIs (ideal: slope 1, intercept 0), and the ICI with
    its E50 and E90 (ideal 0; no CI) where the evaluation has them."""
    if ev.task.kind is TaskKind.SURVIVAL:
        return survival_calibration_text(ev)
    keys = (("slope", "calibration_slope"), ("intercept (in the large)", "calibration_intercept"),
            ("slope of the % change", "calibration_slope_pct_change"))
    parts = [f"{name} {with_ci(ev.metrics[key], *ev.ci.get(key, (np.nan, np.nan)))}"
             for name, key in keys if key in ev.metrics]
    ideal = "slope 1, intercept 0" if "calibration_intercept" in ev.metrics else "slope 1"
    text = ", ".join(parts) + f" (ideal: {ideal}; out of fold, per CV repeat then averaged; patient bootstrap)"
    m = ev.metrics
    if not np.isnan(m.get("calibration_ici", np.nan)):
        text += (f"; ICI {m['calibration_ici']:.3f} (E50 {m['calibration_e50']:.3f}, E90 {m['calibration_e90']:.3f}; "
                 "mean |observed - predicted| along a loess curve, per CV repeat then averaged)")
    return text


def survival_calibration_text(ev: Evaluation) -> str:
    """Calibration of a relapse risk at the first horizon: predicted against Kaplan-Meier observed by fifth."""
    key, day = f"calibration_{HORIZONS[0]}d_gap", HORIZONS[0]
    value = with_ci(ev.metrics.get(key, np.nan), *ev.ci.get(key, (np.nan, np.nan)))
    return (f"at {day} days, mean |predicted - Kaplan-Meier observed relapse| over fifths of predicted risk {value} "
            f"(ideal 0; patient bootstrap); integrated Brier score "
            f"{with_ci(ev.metrics.get('integrated_brier', np.nan), *ev.ci.get('integrated_brier', (np.nan, np.nan)))} "
            "(lower is better; 0.25 = a 50% forecast); table and figure in the durability section")


def arms_text(result: TrainingResult) -> str:
    """The arms in the analysed data with their course counts."""
    arms, counts = np.unique(result.data.treatments.astype(str), return_counts=True)
    return ", ".join(f"{a} ({n} courses)" for a, n in zip(arms, counts))


def intended_use(result: TrainingResult) -> str:
    """TRIPOD+AI intended use and population."""
    what = task_of(result.target).estimates(parse_target(result.target))
    return (f"Research use: estimates {what} after a course of ketamine or esketamine in adults with "
            "treatment-resistant depression. Not a clinical decision tool: internally validated only, not "
            f"prospectively evaluated. Arms in these data: {arms_text(result)}.")


def directions(result: TrainingResult) -> tuple[str, str]:
    """What a higher feature value does to the prediction, for SHAP direction + and -."""
    return task_of(result.target).directions(parse_target(result.target))


def feature_sentence(result: TrainingResult) -> str:
    """Which features matter and how sure we are: consistent features, or why none is reported."""
    imp = result.shap.importance
    if result.shap.vetoed:
        return "none is reported as consistently important (see the warning above)."
    up, down = directions(result)
    chosen = imp[imp["consistent"].astype(bool)]
    if len(chosen):
        named = ", ".join(f"{f} ({up if d == '+' else down}; top-5 in {k:.0%} of folds)"
                          for f, d, k in zip(chosen["feature"], chosen["direction"], chosen["topk_frequency"]))
        text = f"consistently important ({CONSISTENCY_RULE}): {named}."
    else:
        top = ", ".join(map(str, imp["feature"].head(3))) or "none"
        text = f"no feature met the consistency rule ({CONSISTENCY_RULE}); highest mean |SHAP|: {top}."
    roles = result.benefit.roles if result.benefit is not None and result.benefit.summaries else None
    if roles is not None and len(roles) and "role_absolute" in roles:
        predictive = roles.loc[roles["role_absolute"] == "predictive", "feature"].astype(str).tolist()
        more = f" and {len(predictive) - 5} more (biomarker roles below)" if len(predictive) > 5 else ""
        text += (f" Features that change the drug's gain in response chance (absolute scale, FDR-controlled): "
                 f"{', '.join(predictive[:5]) or 'none'}{more}.")
    return text + " Candidates, not proven predictors."


def default_identity(result: TrainingResult, source: str) -> dict[str, str]:
    """What identifies the run when the caller gives nothing: the run id and version if already logged."""
    return {"Run": result.run_id or "not logged yet",
            "Model": f"{result.selected}" + (f", registered version {result.version}" if result.version else ""),
            "Data": f"{source} (synthetic or real: not stated)"}
