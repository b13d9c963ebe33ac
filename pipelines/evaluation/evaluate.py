"""Evaluate pooled out-of-fold probabilities: metrics with CIs, decision curve, subgroups."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipelines.evaluation.metrics import bootstrap_ci, decision_curve, point_metrics, subgroup_table


@dataclass(frozen=True)
class Evaluation:
    """Everything one run (parent or child) reports."""

    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    curve: pd.DataFrame
    subgroups: pd.DataFrame

    def tracked_metrics(self, permutation_p: float) -> dict[str, float]:
        """The metric names every run carries, plus the other CIs."""
        out = dict(self.metrics)
        for name, (low, high) in self.ci.items():
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = low, high
        out["permutation_p"] = permutation_p
        return out

    def row(self, name: str, permutation_p: float) -> dict[str, Any]:
        m, ci = self.metrics, self.ci
        return {"model": name, "auroc": m["auroc"], "auroc_ci_low": ci["auroc"][0], "auroc_ci_high": ci["auroc"][1],
                "auprc": m["auprc"], "brier": m["brier"], "calibration_slope": m["calibration_slope"],
                "calibration_intercept": m["calibration_intercept"], "balanced_accuracy": m["balanced_accuracy"],
                "sensitivity": m["sensitivity"], "specificity": m["specificity"], "permutation_p": permutation_p}


def evaluate(y: np.ndarray, p: np.ndarray, patients: np.ndarray, subgroups: dict[str, np.ndarray],
             threshold: float, n_boot: int, seed: int) -> Evaluation:
    """Point metrics, patient-bootstrap CIs, decision curve and subgroup table of one prediction set."""
    return Evaluation(point_metrics(y, p, threshold), bootstrap_ci(y, p, patients, threshold, n_boot, seed),
                      decision_curve(y, p), subgroup_table(y, p, subgroups))


def results_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The comparison table: one row per family plus the selected procedure."""
    return pd.DataFrame(rows)
