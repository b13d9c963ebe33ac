"""Patient-grouped, site-aware splits and the within-site, whole-patient label permutation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import LeaveOneGroupOut, StratifiedGroupKFold

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
    """scikit-learn's ``StratifiedGroupKFold``, the same folds, with its per-group greedy step vectorised.

    Why by hand: its ``_find_best_fold`` tries each fold in a Python loop of small numpy calls, for every
    patient; at 10,000 courses that was a sixth of an outer fold's time, and it grows with the cohort. Here the
    k trial placements are evaluated in one array operation (the same sums in the same order, so the same
    floating-point values) and the tie rule is applied as scikit-learn applies it (tested against it).
    """

    def _find_best_fold(self, y_counts_per_fold: np.ndarray, y_cnt: np.ndarray,
                        group_y_counts: np.ndarray) -> int | None:
        k = self.n_splits
        trial = np.repeat(y_counts_per_fold[np.newaxis], k, axis=0)  # trial[i]: the folds with the group in fold i
        trial[np.arange(k), np.arange(k)] += group_y_counts
        evaluations = np.mean(np.std(trial / y_cnt.reshape(1, 1, -1), axis=1), axis=1)
        samples = np.sum(y_counts_per_fold, axis=1)
        best, min_eval, min_samples = None, np.inf, np.inf
        for i in range(k):
            value = evaluations[i]
            close = bool(np.isfinite(min_eval)) and abs(value - min_eval) <= 1e-8 + 1e-5 * abs(min_eval)  # np.isclose
            if value < min_eval or (close and samples[i] < min_samples):
                best, min_eval, min_samples = i, value, samples[i]
        return best


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
