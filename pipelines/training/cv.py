"""Patient-grouped, site-aware splits and the within-site, whole-patient label permutation."""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold
from sklearn.utils import check_random_state, column_or_1d

from ketamine_response.features.errors import TrainingDataError
from ketamine_response.features.tasks import TASKS, Task, TaskKind
from ketamine_response.pipelines.folds import Split


def check_cv_feasible(y: np.ndarray, patients: np.ndarray, sites: np.ndarray, design: str,
                      outer_folds: int, inner_folds: int, source: str, task: Task = TASKS[TaskKind.BINARY]) -> None:
    """Stop with a clear message when the cohort is too small or one-class for nested CV."""
    needed = outer_folds * inner_folds if design == "kfold" else 2 * inner_folds
    if not task.labels_ok(y):
        raise TrainingDataError(f"{source}: the outcome is not a {task.label} for every course; check the target's "
                                "outcome columns.")
    if task.kind is TaskKind.SURVIVAL:  # enough relapses to fold
        events = int(y["event"].sum())
        if events < needed:
            raise TrainingDataError(
                f"{source}: {len(y)} courses followed after a response, {events} relapses; nested cross-validation "
                f"with {outer_folds} outer x {inner_folds} inner folds needs at least {needed} relapses. Use fewer "
                "folds (cv.outer_folds, cv.inner_folds) or more follow-up.")
        _check_groups(patients, sites, design, outer_folds, source)
        return
    if not task.probabilities:  # enough courses, and not all the same value
        if len(y) < needed or np.ptp(y) == 0:
            raise TrainingDataError(f"{source}: {len(y)} courses with the outcome, {len(np.unique(y))} distinct values; "
                                    f"nested cross-validation with {outer_folds} outer x {inner_folds} inner folds needs "
                                    f"at least {needed} courses with varying outcomes.")
        _check_groups(patients, sites, design, outer_folds, source)
        return
    events, non_events = int(y.sum()), int((1 - y).sum())
    minority = min(events, non_events)
    if minority == 0:
        raise TrainingDataError(f"{source}: every course with an outcome has the same class ({events} events, "
                                f"{non_events} non-events); there is nothing to predict.")
    if minority < needed:
        raise TrainingDataError(
            f"{source}: only {minority} courses in the smaller outcome class ({events} events, {non_events} "
            f"non-events); nested cross-validation with {outer_folds} outer x {inner_folds} inner folds needs at "
            f"least {needed}. Use fewer folds (cv.outer_folds, cv.inner_folds): the shipped small-cohort config "
            f"train_small has 3 outer x 2 inner folds; or use more data.")
    _check_groups(patients, sites, design, outer_folds, source)


def _check_groups(patients: np.ndarray, sites: np.ndarray, design: str, outer_folds: int, source: str) -> None:
    if design == "site" and len(np.unique(sites)) < 2:
        raise TrainingDataError(f"{source}: site cross-validation (cv.design site) needs at least 2 sites; this cohort "
                                "has 1. Use k-fold cross-validation (cv.design kfold).")
    if len(np.unique(patients)) < outer_folds:
        raise TrainingDataError(f"{source}: fewer patients than outer folds ({outer_folds}).")


class GroupFolds(StratifiedGroupKFold):
    """scikit-learn's ``StratifiedGroupKFold``: the same folds, found faster.

    Why by hand: its greedy step places one patient at a time, trying each fold with small numpy calls,
    then lists each fold's rows with a Python scan; at 100,000 courses one split took 20 s, and every fold
    of every permuted run draws inner splits. Here the counts and the row lists are vectorised, and the
    greedy step does the same arithmetic in the same order on Python floats (a sum of k values, then the
    standard deviation as numpy computes it), so every comparison, ties included, comes out as in
    scikit-learn (tested against it on random designs).
    """

    def _iter_test_indices(self, X: Any, y: Any, groups: Any) -> Iterator[np.ndarray]:
        rng = check_random_state(self.random_state)
        y = column_or_1d(np.asarray(y))
        _, y_inv, y_cnt = np.unique(y, return_inverse=True, return_counts=True)
        _, groups_inv, groups_cnt = np.unique(groups, return_inverse=True, return_counts=True)
        if self.n_splits > len(groups_cnt) or np.all(self.n_splits > y_cnt):
            yield from super()._iter_test_indices(X, y, groups)  # scikit-learn's own error message
            return
        if self.n_splits > y_cnt.min():
            warnings.warn(f"The least populated class in y has only {y_cnt.min()} members, which is less than "
                          f"n_splits={self.n_splits}.", UserWarning, stacklevel=2)  # scikit-learn's own warning
        counts = np.zeros((len(groups_cnt), len(y_cnt)))
        np.add.at(counts, (groups_inv, y_inv), 1)
        if self.shuffle:
            perm = np.arange(len(groups_cnt))
            rng.shuffle(perm)
            counts = counts[perm]
            inv_perm = np.empty_like(perm)
            inv_perm[perm] = np.arange(perm.size)
            groups_inv = inv_perm[groups_inv]
        order = np.argsort(-np.std(counts, axis=1), kind="stable")
        fold_of = _greedy_folds(counts[order].tolist(), [float(c) for c in y_cnt], self.n_splits)
        fold_of_group = np.empty(len(order), dtype=int)
        fold_of_group[order] = fold_of
        for i in range(self.n_splits):
            yield np.flatnonzero(fold_of_group[groups_inv] == i)


def _std(values: list[float]) -> float:
    """numpy's population standard deviation of a short list, operation for operation."""
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) * (v - mean) for v in values) / len(values))


def _greedy_folds(groups: list[list[float]], totals: list[float], k: int) -> list[int]:
    """scikit-learn's ``StratifiedGroupKFold._find_best_fold`` applied to each group in turn: the fold whose
    class shares stay most even, ties (``np.isclose``) to the fold with fewer courses."""
    folds = [[0.0] * len(totals) for _ in range(k)]
    out = []
    for group in groups:
        best, min_eval, min_samples = 0, math.inf, math.inf
        for i in range(k):
            trial = [[c + g for c, g in zip(folds[f], group, strict=True)] if f == i else folds[f] for f in range(k)]
            per_class = [_std([trial[f][c] / t for f in range(k)]) for c, t in enumerate(totals)]
            value, samples = sum(per_class) / len(per_class), sum(folds[i])
            close = min_eval != math.inf and abs(value - min_eval) <= 1e-8 + 1e-5 * abs(min_eval)
            if value < min_eval or (close and samples < min_samples):
                best, min_eval, min_samples = i, value, samples
        folds[best] = [c + g for c, g in zip(folds[best], group, strict=True)]
        out.append(best)
    return out


def outer_splits(strata: np.ndarray, patients: np.ndarray, sites: np.ndarray, design: str,
                 folds: int, repeats: int, seed: int) -> list[Split]:
    """Repeated stratified patient-grouped k-fold, or leave-one-site-out (one repeat).

    *strata* is what the folds balance: the task's strata of the outcome (a binary outcome is its own).
    """
    if design == "site":
        logo = LeaveOneGroupOut().split(np.zeros(len(strata)), strata, sites)
        return [Split(0, i, tr, te) for i, (tr, te) in enumerate(logo)]
    out = []
    for r in range(repeats):
        cv = GroupFolds(n_splits=folds, shuffle=True, random_state=seed + r)
        out += [Split(r, i, tr, te) for i, (tr, te) in enumerate(cv.split(np.zeros(len(strata)), strata, patients))]
    return out


def inner_splits(strata: np.ndarray, patients: np.ndarray, folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Patient-grouped stratified folds within a training set (indices relative to it), balancing *strata*."""
    cv = GroupFolds(n_splits=folds, shuffle=True, random_state=seed)
    return list(cv.split(np.zeros(len(strata)), strata, patients))


def permute_labels(y: np.ndarray, patients: np.ndarray, sites: np.ndarray, treatments: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """Exchange whole patients' labels within site, among patients with the same set of arms.

    A crossover patient's courses keep their pairing (their two labels move together to another
    crossover patient's matching arms), so within-patient correlation survives the permutation.
    """
    order = np.lexsort((treatments.astype(str), patients.astype(str)))
    uniq, start, counts = np.unique(patients[order].astype(str), return_index=True, return_counts=True)
    code = np.repeat(np.arange(len(uniq)), counts)  # patient number of each sorted row
    rank = np.arange(len(order)) - start[code]      # position of the course within its patient
    pattern = pd.Series(treatments[order].astype(str)).groupby(code).agg("|".join).to_numpy()
    blocks = pd.DataFrame({"site": sites[order][start].astype(str), "pattern": pattern}).groupby(["site", "pattern"])
    donor = np.arange(len(uniq))
    for members in blocks.indices.values():
        donor[members] = members[rng.permutation(len(members))]
    out = np.empty_like(y)
    out[order] = y[order[start[donor[code]] + rank]]
    return out
