"""The report's sentences: headline, TRIPOD+AI items (validation, intended use, operating point,
calibration, data digest) and the identity block. Aggregates only."""

from __future__ import annotations

import numpy as np

from ketamine_response.features.tasks import HORIZONS, TaskKind, parse_target, task_of
from ketamine_response.models.families import SELECTED
from ketamine_response.pipelines.evaluation.evaluate import Evaluation
from ketamine_response.pipelines.evaluation.repeats import active
from ketamine_response.pipelines.reporting.tables import with_ci
from ketamine_response.pipelines.reporting.wording import DRUG_NAMES, points
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


def estimate(ev: Evaluation, key: str) -> str:
    """The metric with its 95% CI; where its bootstrap interval missed the point and was withheld, says so
    (a bare number would read as "no interval computed")."""
    value = ev.metrics.get(key, np.nan)
    if key in ev.withheld:
        return f"{with_ci(value, np.nan, np.nan)} (interval withheld: bootstrap skewed)"
    return with_ci(value, *ev.ci.get(key, (np.nan, np.nan)))


def operating_point(result: TrainingResult) -> str:
    """The decision threshold and sensitivity / specificity at it, from the pooled out-of-fold predictions."""
    ev = result.evaluations[SELECTED]
    if ev.task.kind is TaskKind.SURVIVAL:
        return (f"not applicable: the prediction is a relapse risk by day {HORIZONS[0]} for ranking courses and is "
                "judged by its C-index and calibration (no decision threshold)")
    if not ev.task.probabilities:
        return "not applicable: the target is continuous (no decision threshold)"
    t = result.config.evaluation.threshold
    m = ev.metrics
    keys = (("sensitivity", "sensitivity"), ("specificity", "specificity"), ("balanced accuracy", "balanced_accuracy"))
    pooled_parts = ", ".join(f"{name} {estimate(ev, key)}" for name, key in keys if key in m)
    folds = np.array([f.threshold for f in result.folds])
    pooled_rule = (f"each outer fold's training event rate, all arms (mean {folds.mean():.3f})" if t == "prevalence"
                   else f"{float(t):.3f}")
    pooled_text = f"all arms, predicted probability ≥ {pooled_rule}: {pooled_parts}"
    if "sensitivity_active" not in m:
        return pooled_text + " (out of fold, per CV repeat then averaged; patient bootstrap)"
    drug = active(result.data)
    rates = np.array([result.data.y[f.split.train[drug[f.split.train]]].mean() for f in result.folds])
    rule = (f"each outer fold's drug-arm training event rate (mean {rates.mean():.3f}, range {rates.min():.3f} to "
            f"{rates.max():.3f})" if t == "prevalence" else f"{float(t):.3f}")
    drug_parts = ", ".join(f"{name} {estimate(ev, key + '_active')}"
                           for name, key in keys if key + "_active" in m)
    return (f"drug arm(s), predicted probability ≥ {rule}: {drug_parts}; {pooled_text} (out of fold, per CV repeat then "
            "averaged; patient bootstrap)")


def calibration_text(ev: Evaluation) -> str:
    """Calibration slope and intercept with their CIs (ideal: slope 1, intercept 0) on the drug-arm courses first,
    then over all arms with the ICI, E50 and E90 (ideal 0; no CI) where the evaluation has them."""
    if ev.task.kind is TaskKind.SURVIVAL:
        return survival_calibration_text(ev)
    if not np.isnan(ev.metrics.get("calibration_slope_active", np.nan)):
        drug = ", ".join(f"{name} {estimate(ev, key)}" for name, key in
                         (("slope", "calibration_slope_active"), ("intercept", "calibration_intercept_active")))
        return f"drug arm(s): {drug}; all arms: " + _pooled_calibration(ev)
    return _pooled_calibration(ev)


def _pooled_calibration(ev: Evaluation) -> str:
    """Calibration over all courses (all arms), with the flexible-calibration figures."""
    keys = (("slope", "calibration_slope"), ("intercept (in the large)", "calibration_intercept"),
            ("slope of the % change", "calibration_slope_pct_change"))
    parts = [f"{name} {estimate(ev, key)}"
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
    value = estimate(ev, key)
    return (f"at {day} days, mean |predicted - Kaplan-Meier observed relapse| over fifths of predicted risk {value} "
            f"(ideal 0; patient bootstrap); integrated Brier score "
            f"{estimate(ev, 'integrated_brier')} "
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




def when(timepoint: str) -> str:
    """A timepoint label in words: ``24h`` -> "within 24 hours", ``day7`` -> "by day 7"."""
    import re

    if found := re.fullmatch(r"(\d+)(min|h)", timepoint):
        number, unit = found.groups()
        return f"within {number} {'minutes' if unit == 'min' else 'hour' if number == '1' else 'hours'}"
    return f"by {timepoint.replace('day', 'day ')}" if timepoint.startswith("day") else (f"at {timepoint}" if timepoint else "")


def natural_frequencies(result: TrainingResult) -> str:
    """The observed arm rates as natural frequencies per 100 courses, each drug beside its own placebo stratum (the
    placebo courses of the sites that give it), with 95% patient-bootstrap CIs for the rates and the difference:
    "Of 100 courses like those in this cohort, about 50 respond within 24 hours on ketamine (46 to 54; n = 526) and
    18 on placebo at the same sites (...): +32 percentage points (95% CI +26 to +38) (95% CIs by patient bootstrap;
    n: courses)"
    ("" for a continuous outcome or a time to relapse, which have no rate of this kind). Courses, not patients:
    a crossover patient has one on each arm."""
    from ketamine_response.pipelines.evaluation.drug_arm import arm_rates, placebo_stratum

    d = result.data
    if not d.task.probabilities:
        return ""
    target = parse_target(result.target)
    verb = f"have the harm {target.column} >= {target.threshold:g}" if d.task.kind is TaskKind.HARM else (
        f"{'remit' if target.kind == 'remission' else 'respond'} {when(target.timepoint)}".rstrip())
    clauses = []
    for drug in (a for a in ("ketamine_iv", "esketamine_in") if (d.treatments == a).any()):
        rows = placebo_stratum(d.treatments, d.sites, drug)
        treated = (d.treatments[rows] == drug).astype(int)
        r = arm_rates(d.y[rows], treated, d.patients[rows], seed=result.config.seed)
        text = f"{_rate(r['drug'])} on {DRUG_NAMES[drug]} ({_n(r['drug'], int(treated.sum()))})"
        if (treated == 0).any():
            text += (f" and {_rate(r['placebo'])} on placebo at the same sites ({_n(r['placebo'], int((treated == 0).sum()))})"
                     f": {points(r['difference'])}")
        clauses.append(text)
    if not clauses:
        return ""
    number, first = clauses[0].split(" ", 1)
    return (f"Of 100 courses like those in this cohort, about {number} {verb} " + "; about ".join([first, *clauses[1:]])
            + " (95% CIs by patient bootstrap; n: courses).")


def _rate(values: tuple[float, float, float]) -> str:
    return f"{100 * values[0]:.0f}"


def _n(values: tuple[float, float, float], n: int) -> str:
    # short: the sentence leads the first screen, where a phone has room for it and the warnings only
    ci = "" if values[1] != values[1] else f"{100 * values[1]:.0f} to {100 * values[2]:.0f}; "
    return f"{ci}n = {n}"


def drug_probability(result: TrainingResult) -> str:
    """How likely response is if given the drug, in probability terms: the out-of-fold predicted and observed rates
    in the lowest and highest fifth of predictions among the drug-arm courses ("" without enough of them)."""
    from ketamine_response.pipelines.folds import pooled

    drug = active(result.data)
    if drug.sum() < 10 or not result.data.task.probabilities:
        return ""
    p, y = pooled(result.data, result.folds)[drug], result.data.y[drug]
    order = np.argsort(p, kind="stable")
    low, high = order[: len(order) // 5], order[-(len(order) // 5):]
    return (f"on the drug, the predicted chance (out of fold) is about {p[low].mean():.0%} in the fifth of drug-arm "
            f"courses with the lowest predictions (observed {y[low].mean():.0%}) and {p[high].mean():.0%} in the "
            f"highest fifth (observed {y[high].mean():.0%})")
