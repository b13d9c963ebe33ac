"""Evaluate pooled out-of-fold probabilities: metrics with CIs, decision curve, subgroups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ACTIVE_ARMS
from ketamine_response.pipelines.evaluation.metrics import (
    HEADLINE,
    Threshold,
    auroc,
    bootstrap_ci,
    brier,
    calibration_slope_intercept,
    continuous_bootstrap_ci,
    continuous_metrics,
    continuous_subgroups,
    corrected_cv_interval,
    decision_curve,
    point_metrics,
    subgroup_table,
)
from ketamine_response.pipelines.training.data import Data
from ketamine_response.pipelines.training.nested import FoldResult, pooled


@dataclass(frozen=True)
class Evaluation:
    """Everything one run (parent or child) reports, for a binary or a continuous target (*task*)."""

    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    curve: pd.DataFrame
    subgroups: pd.DataFrame
    task: str = "classification"

    @property
    def headline(self) -> str:
        """The metric the run is judged by: AUROC, or R2 of the percentage change."""
        return HEADLINE[self.task][0]

    def tracked_metrics(self, permutation_p: float, permutation_b: int) -> dict[str, float]:
        """The metric names every run carries, plus the other CIs."""
        out = dict(self.metrics)
        for name, (low, high) in self.ci.items():
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = low, high
        out["permutation_p"], out["permutation_b"] = permutation_p, float(permutation_b)
        return out

    def row(self, name: str, permutation_p: float, permutation_b: int) -> dict[str, Any]:
        """One line of the comparison table."""
        m, ci, h = self.metrics, self.ci, self.headline
        head = {"model": name, h: m[h], f"{h}_fold_mean": m.get(f"{h}_fold_mean", m[h]),
                f"{h}_ci_low": ci[h][0], f"{h}_ci_high": ci[h][1],
                f"{h}_repeat_min": m.get(f"{h}_repeat_min", m[h]), f"{h}_repeat_max": m.get(f"{h}_repeat_max", m[h])}
        keys = (("rmse_pct_change", "mae_pct_change", "calibration_slope_pct_change") if self.task == "regression" else
                ("auprc", "brier", "calibration_slope", "calibration_intercept", "balanced_accuracy", "sensitivity",
                 "specificity"))
        within = {}
        if self.task == "classification":  # NaN where the cohort has no active arm or no arm-only model
            nan = (float("nan"), float("nan"))
            within = {"auroc_active": m.get("auroc_active", float("nan")),
                      "auroc_active_fold_mean": m.get("auroc_active_fold_mean", float("nan")),
                      "auroc_gain_over_arm_fold_mean": m.get("auroc_gain_over_arm_fold_mean", float("nan")),
                      "auroc_active_ci_low": ci.get("auroc_active", nan)[0],
                      "auroc_active_ci_high": ci.get("auroc_active", nan)[1],
                      "auroc_gain_over_arm": m.get("auroc_gain_over_arm", float("nan")),
                      "auroc_gain_over_arm_ci_low": ci.get("auroc_gain_over_arm", nan)[0],
                      "auroc_gain_over_arm_ci_high": ci.get("auroc_gain_over_arm", nan)[1]}
        return (head | within | {k: m[k] for k in keys}
                | {"permutation_p": permutation_p, "permutation_b": permutation_b})


def evaluate(y: np.ndarray, p: np.ndarray, patients: np.ndarray, subgroups: dict[str, np.ndarray],
             threshold: Threshold, n_boot: int, seed: int, task: str = "classification") -> Evaluation:
    """Point metrics, patient-bootstrap CIs, decision curve and subgroup table of one prediction set."""
    if task == "regression":  # no threshold and no decision curve for a continuous prediction
        return Evaluation(continuous_metrics(y, p), continuous_bootstrap_ci(y, p, patients, n_boot, seed),
                          pd.DataFrame(), continuous_subgroups(y, p, subgroups), task)
    return Evaluation(point_metrics(y, p, threshold), bootstrap_ci(y, p, patients, threshold, n_boot, seed),
                      decision_curve(y, p), subgroup_table(y, p, subgroups))


def add_cv_uncertainty(evaluation: Evaluation, data: Data, folds: list[FoldResult], family: str | None) -> Evaluation:
    """Add the spread over CV repeats, and make the headline interval one that includes refit and selection.

    The interval is the corrected resampled t interval of the mean per-fold value, logged as
    ``<headline>_fold_mean``; the pooled value stays the point estimate. (Pooling folds whose
    models differ can shift it: a constant predictor pools to below 0.5 AUROC, while each fold's
    AUROC is exactly 0.5.) *family* None means the selected procedure. The patient-bootstrap interval
    of the pooled predictions stays beside it as ``<headline>_bootstrap`` (it holds the models fixed).
    """
    h, metric = HEADLINE[evaluation.task]
    repeats = [metric(data.y, pooled(data, [f for f in folds if f.split.repeat == r], family))
               for r in sorted({f.split.repeat for f in folds})]
    evaluation.metrics[f"{h}_repeat_min"], evaluation.metrics[f"{h}_repeat_max"] = min(repeats), max(repeats)
    per_fold = np.array([_fold_metric(evaluation.task, data.y, f, family) for f in folds])
    share = float(np.mean([len(f.split.test) / len(data.y) for f in folds]))
    evaluation.ci[f"{h}_bootstrap"] = evaluation.ci[h]
    bounds = (0.0, 1.0) if h == "auroc" else (-np.inf, 1.0)  # AUROC, or R2 (at most 1)
    evaluation.metrics[f"{h}_fold_mean"], *interval = corrected_cv_interval(per_fold, share, bounds)
    evaluation.ci[h] = (interval[0], interval[1])
    return evaluation


def _fold_metric(task: str, y: np.ndarray, fold: FoldResult, family: str | None) -> float:
    truth, predicted = y[fold.split.test], fold.predictions[family or fold.selected]
    if task == "regression":  # against the whole cohort's variance, so folds' R2 average to the pooled one
        return float(1 - np.mean((truth - predicted) ** 2) / np.var(y))
    return auroc(truth, predicted)


def add_active_arm_metrics(evaluation: Evaluation, data: Data, folds: list[FoldResult], family: str | None) -> Evaluation:
    """Within the active arm(s): how well the model predicts response *if given the drug*.

    Pooled AUROC mixes arms, so the arm alone can carry it (drug responders outnumber placebo
    ones). These metrics use only active-arm courses: ``auroc_active`` with the corrected interval
    over outer folds, ``brier_active``, ``calibration_slope_active``, and with two active arms
    ``auroc_<arm>`` for each.
    """
    active = np.isin(data.treatments, ACTIVE_ARMS)
    if evaluation.task != "classification" or not active.any():
        return evaluation
    y, p, m = data.y[active], pooled(data, folds, family)[active], evaluation.metrics
    m["auroc_active"], m["brier_active"] = auroc(y, p), brier(y, p)
    m["calibration_slope_active"] = calibration_slope_intercept(y, p)[0]
    per_fold = np.array([_within(f, data, family, active) for f in folds])
    share = float(np.mean([len(f.split.test) / len(data.y) for f in folds]))
    m["auroc_active_fold_mean"], *interval = corrected_cv_interval(per_fold, share, (0.0, 1.0))
    evaluation.ci["auroc_active"] = (interval[0], interval[1])
    arms = [a for a in ACTIVE_ARMS if (data.treatments == a).any()]
    for arm in arms if len(arms) > 1 else []:
        mask = data.treatments[active] == arm
        m[f"auroc_{arm}"] = auroc(y[mask], p[mask])
    return evaluation


def _within(fold: FoldResult, data: Data, family: str | None, mask: np.ndarray) -> float:
    keep = mask[fold.split.test]
    return auroc(data.y[fold.split.test][keep], fold.predictions[family or fold.selected][keep])


def add_gain_over_arm(evaluations: dict[str, Evaluation], data: Data, folds: list[FoldResult]) -> None:
    """``auroc_arm_only`` and ``auroc_gain_over_arm`` (with its corrected interval) on every run.

    The gain asks what the biomarkers add to knowing the arm; its interval comes from the per-fold
    differences, since both models saw the same folds.
    """
    if "arm_only" not in evaluations or evaluations["arm_only"].task != "classification":
        return
    arm_only = evaluations["arm_only"].metrics["auroc"]
    share = float(np.mean([len(f.split.test) / len(data.y) for f in folds]))
    for name, evaluation in evaluations.items():
        family = None if name == "selected" else name
        diffs = np.array([auroc(data.y[f.split.test], f.predictions[family or f.selected])
                          - auroc(data.y[f.split.test], f.predictions["arm_only"]) for f in folds])
        evaluation.metrics["auroc_arm_only"] = arm_only
        evaluation.metrics["auroc_gain_over_arm"] = evaluation.metrics["auroc"] - arm_only
        evaluation.metrics["auroc_gain_over_arm_fold_mean"], low, high = corrected_cv_interval(diffs, share, (-1.0, 1.0))
        evaluation.ci["auroc_gain_over_arm"] = (low, high)
