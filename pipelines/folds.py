"""The cross-validation design and its out-of-fold results: what training produces and evaluation reads.

Training (which fits and selects, scored by evaluation's metrics) sits above evaluation (which only
computes on the predictions it is given); both need these types, so they live in this lower room
rather than in either of them (see docs/architecture.md, "Packages and what each may import").
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.tasks import TASKS, Task, TaskKind


@dataclass(frozen=True)
class Data:
    """What the nested CV needs: the feature table and the design arrays (no identifiers leave here).

    Attributes
    ----------
    X : tier-1 feature table, one row per course
    y : the outcome per course, a label of the task (0/1 for a binary target; a structured (event, time) array
        for a time to relapse, so that splits and permutations move both together)
    patients, sites, treatments : per-course grouping arrays (patient ids never reach the store)
    domains : feature -> domain, for the families' column policies
    task : the target's task (:mod:`ketamine_response.features.tasks`): split strata, losses, metrics
    """

    X: pd.DataFrame
    y: np.ndarray
    patients: np.ndarray
    sites: np.ndarray
    treatments: np.ndarray
    domains: Mapping[str, str]
    task: Task = field(default_factory=lambda: TASKS[TaskKind.BINARY])

    def take(self, rows: np.ndarray) -> Data:
        """The courses at positions *rows*."""
        return Data(self.X.iloc[rows], self.y[rows], self.patients[rows], self.sites[rows],
                    self.treatments[rows], self.domains, self.task)


@dataclass(frozen=True)
class Split:
    repeat: int
    fold: int
    train: np.ndarray
    test: np.ndarray


@dataclass
class FoldResult:
    split: Split
    selected: str
    params: dict[str, dict[str, Any]]
    inner_scores: dict[str, float]
    threshold: float = 0.5  # decision threshold from this fold's training labels (their event rate)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    shap: pd.DataFrame | None = None  # out-of-fold SHAP of the selected family on the test courses
    shap_modifier: pd.DataFrame | None = None  # the part of it through feature x active-arm terms
    additivity_error: float = 0.0     # max |sum(SHAP) + base - raw output| on this fold
    # a time to relapse: each family's relapse-free curves of the test courses on the evaluation's weekly grid
    curves: dict[str, np.ndarray] = field(default_factory=dict)


def _over_repeats(n: int, folds: list[FoldResult], value: Callable[[FoldResult], Any]) -> np.ndarray:
    """Per course, the mean over repeats of *value* of the outer folds that held it out."""
    total, count = np.zeros(n), np.zeros(n)
    for f in folds:
        total[f.split.test] += value(f)
        count[f.split.test] += 1
    return total / np.maximum(count, 1)


def pooled(data: Data, folds: list[FoldResult], family: str | None = None) -> np.ndarray:
    """Each course's mean out-of-fold probability over repeats; *family* None means the selected one."""
    return _over_repeats(len(data.y), folds, lambda f: f.predictions[family or f.selected])


def pooled_threshold(data: Data, folds: list[FoldResult]) -> np.ndarray:
    """Each course's decision threshold: the mean over repeats of its outer folds' training thresholds."""
    return _over_repeats(len(data.y), folds, lambda f: f.threshold)
