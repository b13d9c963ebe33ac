"""Statistics computed per CV repeat, then averaged: the numbers shown and the numbers permutation-tested.

Each repeat of the outer CV predicts every course once, so a repeat's out-of-fold predictions are one
honest prediction set. Averaging predictions over repeats first (as :func:`~ketamine_response.pipelines.folds.pooled`
does for display) shrinks them towards each course's mean and inflates the calibration slope (2.62 vs
2.01 per repeat on one cohort); so every reported metric is computed on each repeat's predictions and
the values are averaged. The permutation test calls :func:`statistic_values` on permuted runs, so the
statistic it tests is, by construction, the one the table shows beside its p.

A model that is constant within a group of courses (the arm-only model within the active arm) ranks
nobody there: its within-group AUROC is 0.5 and it has no calibration slope, however its constants
differ between folds (pooling a fold-varying constant faked a within-arm AUROC of 0.579).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ketamine_response.features.cohort.schema import ACTIVE_ARMS
from ketamine_response.models.families import SELECTED
from ketamine_response.pipelines.evaluation.heterogeneity import enough_events
from ketamine_response.pipelines.evaluation.metrics import STATISTICS, auroc
from ketamine_response.pipelines.folds import Data, FoldResult

ACTIVE_AUROC = "auroc_active"
# a time to relapse: Harrell's C among the courses of each drug (relapse *if given the drug*); the arm and the
# route, which set most of the relapse rate, cannot carry it
ACTIVE_C = "c_index_active"


def repeats(folds: list[FoldResult]) -> list[list[FoldResult]]:
    """The outer folds of each CV repeat, in repeat order."""
    return [[f for f in folds if f.split.repeat == r] for r in sorted({f.split.repeat for f in folds})]


def per_repeat(data: Data, folds: list[FoldResult], family: str | None = None) -> np.ndarray:
    """Out-of-fold predictions of each repeat, shape (repeats, courses); NaN for a course a repeat did not test.

    *family* None means the selected procedure (each fold's own selection).
    """
    out = np.full((len(repeats(folds)), len(data.y)), np.nan)
    for r, group in enumerate(repeats(folds)):
        for f in group:
            out[r, f.split.test] = f.predictions[family or f.selected]
    return out


def constant_within(folds: list[FoldResult], family: str | None, mask: np.ndarray) -> bool:
    """Whether the model's predictions have no spread among the *mask* courses of every outer fold's test set."""
    for f in folds:
        values = f.predictions[family or f.selected][mask[f.split.test]]
        if len(values) > 1 and np.ptp(values) > 1e-12:
            return False
    return True


def mean_over_repeats(data: Data, folds: list[FoldResult], family: str | None, mask: np.ndarray,
                      metric: Callable[[np.ndarray, np.ndarray], float]) -> float:
    """*metric* of the *mask* courses' out-of-fold predictions, per repeat, averaged over repeats."""
    values = [metric(data.y[mask & ~np.isnan(p)], p[mask & ~np.isnan(p)]) for p in per_repeat(data, folds, family)]
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def within_auroc(data: Data, folds: list[FoldResult], family: str | None, mask: np.ndarray) -> float:
    """AUROC among the *mask* courses, per repeat then averaged; 0.5 for a model constant within them."""
    if constant_within(folds, family, mask) and len(np.unique(data.y[mask])) == 2:
        return 0.5
    return mean_over_repeats(data, folds, family, mask, auroc)


def active(data: Data) -> np.ndarray:
    """Which courses were given an active arm (ketamine or esketamine)."""
    return np.isin(data.treatments, ACTIVE_ARMS)


def _enough(data: Data, rows: np.ndarray, min_events: int) -> bool:
    """Enough events to judge a ranking: responders and non-responders, or relapses for a time to relapse."""
    y = data.y[rows]
    if y.dtype.names:
        return int(y["event"].sum()) >= max(min_events, 1)
    return enough_events(y, max(min_events, 1))


def judged_drugs(data: Data, min_events: int = 0) -> list[str]:
    """The drugs whose courses have enough events for a within-drug statistic."""
    return [a for a in ACTIVE_ARMS if (data.treatments == a).any() and _enough(data, data.treatments == a, min_events)]


def statistic_of(data: Data, min_events: int = 0) -> str:
    """The metric the headline p tests: within the drug arm(s) (response or harm *if given the drug*: AUROC;
    relapse after responding to the drug: Harrell's C) where some drug has *min_events* events (and, for a
    binary outcome, non-events); otherwise the task's headline over all courses (named as such). A
    continuous outcome is judged on all courses."""
    if not (data.task.probabilities or data.y.dtype.names) or not judged_drugs(data, min_events):
        return data.task.headline
    return ACTIVE_AUROC if data.task.probabilities else ACTIVE_C


def drug_auroc(data: Data, folds: list[FoldResult], family: str | None, min_events: int = 0) -> float:
    """The within-active-arm statistic (AUROC, or Harrell's C of a time to relapse): within each drug, then
    averaged weighted by its courses, so that with ketamine and esketamine both present the drug's identity
    cannot pass for a prediction. A drug with fewer than *min_events* events is left out (NaN when every drug is)."""
    arms = judged_drugs(data, min_events)
    sizes = np.array([(data.treatments == a).sum() for a in arms])
    within = within_auroc if data.task.probabilities else within_c
    values = np.array([within(data, folds, family, data.treatments == a) for a in arms])
    seen = ~np.isnan(values)
    return float(np.average(values[seen], weights=sizes[seen])) if seen.any() else float("nan")


def drug_weighted_auroc(y: np.ndarray, p: np.ndarray, treatments: np.ndarray, drugs: list[str]) -> float:
    """The ``auroc_active`` estimator on one prediction set (an outer fold's test courses, a bootstrap resample,
    an external cohort): AUROC within each of *drugs*, averaged weighted by its courses there; a drug with one
    outcome class there is left out (NaN when every drug is). One estimator for the point, every fold's value
    behind the corrected interval and every resample, so the interval belongs to the number shown."""
    values, sizes = [], []
    for drug in drugs:
        rows = treatments == drug
        value = auroc(y[rows], p[rows]) if rows.any() else float("nan")
        if not np.isnan(value):
            values.append(value)
            sizes.append(rows.sum())
    return float(np.average(values, weights=sizes)) if values else float("nan")


def within_c(data: Data, folds: list[FoldResult], family: str | None, mask: np.ndarray) -> float:
    """Harrell's C among the *mask* courses, per repeat then averaged; 0.5 for a model constant within them in every
    fold (its fold-to-fold constants would otherwise pool into a ranking)."""
    if constant_within(folds, family, mask):
        return 0.5
    return mean_over_repeats(data, folds, family, mask, STATISTICS["c_index"])


def statistic_value(data: Data, folds: list[FoldResult], family: str | None, min_events: int = 0) -> float:
    """The tested statistic (see :func:`statistic_of`) of one family, or of the selected procedure."""
    if statistic_of(data, min_events) in (ACTIVE_AUROC, ACTIVE_C):
        return drug_auroc(data, folds, family, min_events)
    every = np.ones(len(data.y), bool)
    if data.task.probabilities:
        return within_auroc(data, folds, family, every)
    return mean_over_repeats(data, folds, family, every, STATISTICS[data.task.headline])


def statistic_values(data: Data, folds: list[FoldResult], families: tuple[str, ...],
                     min_events: int = 0) -> dict[str, float]:
    """The tested statistic of each family and of the selected procedure (keyed ``selected``)."""
    return {name: statistic_value(data, folds, None if name == SELECTED else name, min_events) for name in (*families, SELECTED)}
