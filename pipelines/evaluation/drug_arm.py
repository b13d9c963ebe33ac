"""Drug arm first: discrimination, calibration, the operating point and the decision curves judged on the
courses given the drug (response *if given the drug*), and the treatment-selection decision curve.

Pooled figures mix arms, so the arm alone can carry them (drug responders outnumber placebo ones) and "treat
all" on a pooled decision curve has no treatment meaning; the pooled versions stay secondary, labelled "all arms".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ACTIVE_ARMS
from ketamine_response.pipelines.evaluation.estimators import centred, honest
from ketamine_response.pipelines.evaluation.heterogeneity import enough_events
from ketamine_response.pipelines.evaluation.metrics import (
    auroc,
    averaged,
    bootstrap_ci,
    brier,
    calibration_slope_intercept,
    corrected_cv_interval,
    decision_curve,
    threshold_metrics,
)
from ketamine_response.pipelines.evaluation.repeats import (
    active,
    constant_within,
    drug_auroc,
    per_repeat,
    statistic_of,
    within_auroc,
)
from ketamine_response.pipelines.folds import Data, FoldResult

if TYPE_CHECKING:  # evaluate.py imports this module
    from ketamine_response.pipelines.evaluation.evaluate import Evaluation

# the drug arm's metrics with a patient-bootstrap interval (the selected procedure's only: a second bootstrap per
# family would double the evaluation time for rows nobody reads first)
ACTIVE_CI = ("brier", "calibration_slope", "calibration_intercept", "sensitivity", "specificity", "balanced_accuracy")


def drug_threshold(data: Data, folds: list[FoldResult], configured: str | float) -> np.ndarray:
    """Each course's operating threshold judged in the drug arm: the drug-arm training courses' event rate of its
    outer folds (averaged over repeats), or the configured probability (NaN where the prediction is not the
    probability of a binary outcome: a percentage change, a time to relapse)."""
    drug = active(data)
    if not data.task.probabilities:
        return np.full(len(data.y), np.nan)
    if configured != "prevalence":
        return np.full(len(data.y), float(configured))
    total, count = np.zeros(len(data.y)), np.zeros(len(data.y))
    for f in folds:
        train = f.split.train[drug[f.split.train]]
        total[f.split.test] += data.y[train].mean() if len(train) else f.threshold
        count[f.split.test] += 1
    return total / np.maximum(count, 1)


def _share(data: Data, folds: list[FoldResult]) -> float:
    return float(np.mean([len(f.split.test) / len(data.y) for f in folds]))


def _within(fold: FoldResult, data: Data, family: str | None, mask: np.ndarray) -> float:
    keep = mask[fold.split.test]
    return auroc(data.y[fold.split.test][keep], fold.predictions[family or fold.selected][keep])


def _calibration(y: np.ndarray, p: np.ndarray, t: np.ndarray) -> dict[str, float]:
    slope, intercept = calibration_slope_intercept(y, p)
    return {"brier": brier(y, p), "calibration_slope": slope, "calibration_intercept": intercept,
            **threshold_metrics(y, p, t)}


def active_figures(data: Data, folds: list[FoldResult], family: str | None, threshold: np.ndarray,
                   n_boot: int, seed: int) -> tuple[dict[str, float], dict[str, tuple[float, float]], pd.DataFrame]:
    """Brier, calibration slope and intercept, sensitivity and specificity at the drug arm's threshold, within the
    drug arm (per CV repeat, then averaged), each named ``<metric>_active``, with patient-bootstrap intervals where
    *n_boot*; and the decision curve of the drug-arm courses."""
    drug = active(data)
    p = per_repeat(data, folds, family)[:, drug]
    m = averaged(_calibration, data.y[drug], p, threshold[drug])
    ci = bootstrap_ci(data.y[drug], p, data.patients[drug], threshold[drug], n_boot, seed) if n_boot else {}
    if constant_within(folds, family, drug):  # ranks nobody in the arm: no slope, whatever its constants pool to
        m |= {"calibration_slope": float("nan"), "calibration_intercept": float("nan")}
    named = {f"{k}_active": v for k, v in m.items()}
    intervals = {f"{k}_active": v for k, v in ci.items() if k in ACTIVE_CI}
    return named, honest(named, intervals), decision_curve(data.y[drug], np.nanmean(p, axis=0))


def add_active_arm_metrics(evaluation: Evaluation, data: Data, folds: list[FoldResult], family: str | None,
                           min_events: int = 0, threshold: np.ndarray | None = None, n_boot: int = 0,
                           seed: int = 0) -> Evaluation:
    """Within the active arm(s): how well the model predicts response *if given the drug*.

    ``auroc_active`` (per CV repeat then averaged: the permutation test's statistic; 0.5 for a model constant
    within the arm) with the corrected interval over outer folds centred on it; with two active arms
    ``auroc_<arm>`` for each; Brier, calibration slope and intercept and the operating point at *threshold*
    (default: the drug arm's training event rate) as ``<metric>_active`` (:func:`active_figures`), and the drug
    arm's decision curve. With fewer than *min_events* responders or non-responders on the drug these are
    withheld: ``responders_active`` and ``non_responders_active`` stand instead.
    """
    drug = active(data)
    if not evaluation.task.probabilities or not drug.any():
        return evaluation
    counts = {"responders_active": float(data.y[drug].sum()), "non_responders_active": float((1 - data.y[drug]).sum())}
    if statistic_of(data, min_events) != "auroc_active":
        return evaluation.adding(counts)
    flat = constant_within(folds, family, drug)
    per_fold = np.array([0.5 if flat else _within(f, data, family, drug) for f in folds])
    mean, low, high = corrected_cv_interval(per_fold, _share(data, folds), (0.0, 1.0))
    shown = drug_auroc(data, folds, family, min_events)  # the value the permutation test tests; the interval centred on it
    t = drug_threshold(data, folds, "prevalence") if threshold is None else threshold
    m, ci, curve = active_figures(data, folds, family, t, n_boot, seed)
    m |= counts | {"auroc_active": shown}
    arms = [a for a in ACTIVE_ARMS if (data.treatments == a).any()]
    for arm in arms if len(arms) > 1 else []:
        if enough_events(data.y[data.treatments == arm], max(min_events, 1)):
            m[f"auroc_{arm}"] = within_auroc(data, folds, family, data.treatments == arm)
    ci["auroc_active"] = centred(shown, mean, low, high, (0.0, 1.0))
    return evaluation.adding(m, ci).with_curve_active(curve)


def treatment_selection_curve(benefit: np.ndarray, y: np.ndarray, treated: np.ndarray,
                              thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """Net benefit of treating by predicted benefit, of treating all and of treating none, in responses gained per
    100 patients over treating none (everyone on placebo), across the benefit a clinician asks for before treating.

    Vickers AJ, Kattan MW, Sargent DJ. Method for evaluating prediction models that differentiate between patients
    on the basis of a marker. Trials 2007;8:14. With randomised arms, the response rate under "treat where
    predicted benefit > t" is estimated as share_treated x (drug-arm response rate among those the rule treats)
    + (1 - share_treated) x (placebo-arm response rate among those it does not); treat all is the drug arm's rate,
    treat none the placebo arm's. The threshold t (the smallest absolute benefit worth the drug's burden) is
    charged once per patient treated: net benefit = rate - placebo rate - t x share treated. Written here because
    no maintained Python package computes the treatment-selection form (dcurves covers the single-arm form).
    *benefit* is the benefit model's out-of-fold predicted benefit; *treated* 1 for the drug course, 0 for placebo.
    """
    thresholds = np.arange(0.0, 0.41, 0.01) if thresholds is None else thresholds
    drug, placebo = treated == 1, treated == 0
    rate_drug, rate_placebo = y[drug].mean(), y[placebo].mean()
    rows = []
    for t in thresholds:
        chosen = benefit > t
        share = chosen.mean()
        on_drug = y[drug & chosen].mean() if (drug & chosen).any() else 0.0
        on_placebo = y[placebo & ~chosen].mean() if (placebo & ~chosen).any() else 0.0
        rate = share * on_drug + (1 - share) * on_placebo
        rows.append((t, 100 * (rate - rate_placebo - t * share), 100 * (rate_drug - rate_placebo - t), 0.0, share))
    return pd.DataFrame(rows, columns=["benefit_threshold", "treat_by_benefit", "treat_all", "treat_none", "share_treated"])
