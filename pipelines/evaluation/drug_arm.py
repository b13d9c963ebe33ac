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
from ketamine_response.pipelines.evaluation.estimators import centred, honest, skewed, with_own_interval
from ketamine_response.pipelines.evaluation.heterogeneity import enough_events
from ketamine_response.pipelines.evaluation.metrics import (
    averaged,
    bootstrap_ci,
    brier,
    calibration_slope_intercept,
    corrected_cv_interval,
    decision_curve,
    patient_resamples,
    percentile_interval,
    threshold_metrics,
)
from ketamine_response.pipelines.evaluation.repeats import (
    active,
    constant_within,
    drug_auroc,
    drug_weighted_auroc,
    judged_drugs,
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


def _fold_auroc(fold: FoldResult, data: Data, family: str | None, drugs: list[str]) -> float:
    """The fold's test courses judged by the point's estimator (within each drug, course-weighted)."""
    test = fold.split.test
    return drug_weighted_auroc(data.y[test], fold.predictions[family or fold.selected], data.treatments[test], drugs)


def _calibration(y: np.ndarray, p: np.ndarray, t: np.ndarray) -> dict[str, float]:
    slope, intercept = calibration_slope_intercept(y, p)
    return {"brier": brier(y, p), "calibration_slope": slope, "calibration_intercept": intercept,
            **threshold_metrics(y, p, t)}


def active_figures(data: Data, folds: list[FoldResult], family: str | None, threshold: np.ndarray,
                   n_boot: int, seed: int) -> tuple[dict[str, float], dict[str, tuple[float, float]], pd.DataFrame,
                                                    frozenset[str]]:
    """Brier, calibration slope and intercept, sensitivity and specificity at the drug arm's threshold, within the
    drug arm (per CV repeat, then averaged), each named ``<metric>_active``, with patient-bootstrap intervals where
    *n_boot* (those that miss their point withheld, and named last); and the decision curve of the drug-arm courses."""
    drug = active(data)
    p = per_repeat(data, folds, family)[:, drug]
    m = averaged(_calibration, data.y[drug], p, threshold[drug])
    ci = bootstrap_ci(data.y[drug], p, data.patients[drug], threshold[drug], n_boot, seed) if n_boot else {}
    if constant_within(folds, family, drug):  # ranks nobody in the arm: no slope, whatever its constants pool to
        m |= {"calibration_slope": float("nan")}  # calibration in the large stays: the constant can be wrong
    named = {f"{k}_active": v for k, v in m.items()}
    intervals = {f"{k}_active": v for k, v in ci.items() if k in ACTIVE_CI}
    curve = decision_curve(data.y[drug], np.nanmean(p, axis=0))
    return named, honest(named, intervals), curve, skewed(named, intervals)


def add_active_arm_metrics(evaluation: Evaluation, data: Data, folds: list[FoldResult], family: str | None,
                           min_events: int = 0, threshold: np.ndarray | None = None, n_boot: int = 0,
                           seed: int = 0) -> Evaluation:
    """Within the active arm(s): how well the model predicts response *if given the drug*.

    ``auroc_active`` (within each drug, course-weighted, per CV repeat then averaged: the permutation test's
    statistic; 0.5 for a model constant within the arm) with the corrected interval over outer folds of the same
    within-drug, course-weighted estimator, centred on it; with two active arms
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
    drugs = judged_drugs(data, min_events)
    per_fold = np.array([_fold_auroc(f, data, family, drugs) for f in folds])
    mean, low, high = corrected_cv_interval(per_fold, _share(data, folds), (0.0, 1.0))
    shown = drug_auroc(data, folds, family, min_events)  # the value the permutation test tests; the interval centred on it
    t = drug_threshold(data, folds, "prevalence") if threshold is None else threshold
    m, ci, curve, withheld = active_figures(data, folds, family, t, n_boot, seed)
    m |= counts | {"auroc_active": shown}
    arms = [a for a in ACTIVE_ARMS if (data.treatments == a).any()]
    for arm in arms if len(arms) > 1 else []:
        if enough_events(data.y[data.treatments == arm], max(min_events, 1)):
            m[f"auroc_{arm}"] = within_auroc(data, folds, family, data.treatments == arm)
    ci["auroc_active"] = centred(shown, mean, low, high, (0.0, 1.0))
    return evaluation.adding(m, ci, withheld).with_curve_active(curve)


def placebo_stratum(treatments: np.ndarray, sites: np.ndarray, drug: str) -> np.ndarray:
    """The drug's courses and its own placebo comparators: placebo courses at the sites that give the drug (an IV
    site's placebo is not an intranasal trial's), as the benefit model's comparison takes them."""
    return (treatments == drug) | ((treatments == "placebo") & np.isin(sites, np.unique(sites[treatments == drug])))


def arm_rates(y: np.ndarray, treated: np.ndarray, patients: np.ndarray, n_boot: int = 500,
              seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """Drug and placebo response rates and their difference (drug - placebo), each (point, low, high) with a 95%
    patient-bootstrap percentile interval: whole patients are resampled, so a crossover patient's two courses stay
    together and the interval respects the pairing an unpaired (Newcombe) interval ignores."""

    def rates(rows: np.ndarray) -> tuple[float, float, float]:
        on, off = y[rows][treated[rows] == 1], y[rows][treated[rows] == 0]
        a, b = (float(v.mean()) if len(v) else float("nan") for v in (on, off))
        return a, b, a - b

    point = rates(np.arange(len(y)))
    draws = np.array([rates(pick) for pick in patient_resamples(patients, n_boot, seed)])
    names = ("drug", "placebo", "difference")
    return {n: with_own_interval(point[i], *percentile_interval(draws[:, i])) for i, n in enumerate(names)}


def treatment_selection_curve(benefit: np.ndarray, y: np.ndarray, treated: np.ndarray, patients: np.ndarray | None = None,
                              scores: np.ndarray | None = None, thresholds: np.ndarray | None = None, n_boot: int = 0,
                              seed: int = 0) -> pd.DataFrame:
    """Net benefit of treating by predicted benefit, of treating all and of treating none, in responses gained per
    100 patients over treating none (everyone on placebo), across the benefit a clinician asks for before treating,
    with 95% patient-bootstrap bands where *n_boot*.

    Vickers AJ, Kattan MW, Sargent DJ. Trials 2007;8:14, in its doubly robust form: with psi each course's doubly
    robust score of benefit (*scores*: DRTester's, over the comparison's courses, propensity and outcome models
    cross-fitted, so design strata and allocation are accounted for), the gain over treating none of "treat where
    predicted benefit > t" is mean(1{benefit > t} psi), and the threshold t (the smallest absolute benefit worth
    the drug's burden) is charged once per patient treated: NB(t) = 100 [mean(1{benefit > t} psi) - t share treated];
    treat all = 100 [mean psi - t]; treat none = 0. Without *scores* psi is the inverse-probability score at the
    comparison's overall allocation ratio, which assumes randomised allocation at one ratio (no design strata).
    The bands resample whole patients over fixed psi (nuisance models held fixed). Written here because no
    maintained Python package computes the treatment-selection form (dcurves covers the single-arm form).
    *benefit* is the benefit model's out-of-fold predicted benefit; *treated* 1 for the drug course, 0 for placebo.
    """
    thresholds = np.arange(0.0, 0.41, 0.01) if thresholds is None else thresholds
    psi = _ipw_scores(y, treated) if scores is None or np.isnan(scores).any() else scores
    chosen = (benefit[None, :] > thresholds[:, None]).astype(float)  # (thresholds, courses)

    def net(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        share = chosen[:, rows].mean(axis=1)
        return 100 * (chosen[:, rows] @ psi[rows] / len(rows) - thresholds * share), 100 * (psi[rows].mean() - thresholds)

    by_benefit, treat_all = net(np.arange(len(psi)))
    frame = pd.DataFrame({"benefit_threshold": thresholds, "treat_by_benefit": by_benefit, "treat_all": treat_all,
                          "treat_none": 0.0, "share_treated": chosen.mean(axis=1)})
    if n_boot and patients is not None:
        draws = np.array([net(pick)[0] for pick in patient_resamples(patients, n_boot, seed)])
        frame["treat_by_benefit_ci_low"], frame["treat_by_benefit_ci_high"] = np.percentile(draws, [2.5, 97.5], axis=0)
    return frame


def _ipw_scores(y: np.ndarray, treated: np.ndarray) -> np.ndarray:
    """Inverse-probability scores of benefit at the overall allocation ratio (randomised allocation assumed):
    their mean is the drug rate minus the placebo rate, and no empty cell is ever read as a rate of 0."""
    e = treated.mean()
    return treated * y / e - (1 - treated) * y / (1 - e)
