"""Evaluate pooled out-of-fold probabilities: metrics with CIs, decision curve, subgroups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipelines.evaluation.metrics import (
    HEADLINE,
    Threshold,
    auroc,
    bootstrap_ci,
    continuous_bootstrap_ci,
    continuous_metrics,
    continuous_subgroups,
    corrected_cv_interval,
    decision_curve,
    point_metrics,
    subgroup_table,
)
from pipelines.training.data import Data
from pipelines.training.nested import FoldResult, pooled


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
        return head | {k: m[k] for k in keys} | {"permutation_p": permutation_p, "permutation_b": permutation_b}


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
    evaluation.metrics[f"{h}_fold_mean"], *interval = corrected_cv_interval(per_fold, share)
    evaluation.ci[h] = (interval[0], interval[1])
    return evaluation


def _fold_metric(task: str, y: np.ndarray, fold: FoldResult, family: str | None) -> float:
    truth, predicted = y[fold.split.test], fold.predictions[family or fold.selected]
    if task == "regression":  # against the whole cohort's variance, so folds' R2 average to the pooled one
        return float(1 - np.mean((truth - predicted) ** 2) / np.var(y))
    return auroc(truth, predicted)
