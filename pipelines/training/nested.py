"""Nested cross-validation with the model family as one more hyperparameter.

Inner loop: every (family, hyperparameters) candidate is scored by the pre-declared criterion
on patient-grouped inner folds of the outer training set. The best candidate of each family is
calibrated in-fold and predicts the outer test fold (the child runs' estimates); the best
candidate overall is the parent's selection for that fold, so the parent's pooled out-of-fold
metrics estimate the whole procedure, selection included.

Why it is cheap (issue 26): the fitted tier before the model learns nothing from the labels, so it is
fitted once per inner fold and shared by every candidate; the linear families' candidates are fitted
along a regularisation path, each starting from the previous solution (warm start); and the in-fold
calibration re-uses the best candidate's inner-fold fits instead of refitting them (given the same
members, the numbers of ``CalibratedClassifierCV(cv=inner folds)``; a warm-started member differs from a
cold fit only within its solver's tolerance, up to about 0.01 in probability).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.pipeline import Pipeline

from ketamine_response.models.explain import explain
from ketamine_response.models.families import FAMILY_NAMES, get_family, predict
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.evaluation.metrics import auroc, brier, log_loss
from ketamine_response.pipelines.evaluation.repeats import ACTIVE_AUROC, ACTIVE_C, active, statistic_of
from ketamine_response.pipelines.evaluation.survival import GRID_DAYS, partial_log_likelihood
from ketamine_response.pipelines.folds import Data, FoldResult, Split
from ketamine_response.pipelines.training.cv import inner_splits, outer_splits
from ketamine_response.pipelines.training.progress import Progress

log = logging.getLogger(__name__)
Folds = list[tuple[np.ndarray, np.ndarray]]  # (train, test) positions of inner folds


# The inner loop's selection criteria by name (the config's search.selection_metric, or a task's own), each
# turned so that higher is better.
CRITERIA: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "log_loss": lambda y, p: -log_loss(y, p), "brier": lambda y, p: -brier(y, p), "auroc": auroc,
    "mse": lambda y, p: -float(np.mean((p - y) ** 2)), "partial_likelihood": partial_log_likelihood}


@dataclass(frozen=True)
class Searched:
    """A family's inner loop: its best hyperparameters, their mean inner score, and the best candidate
    fitted on each inner training fold (the members of its in-fold calibration) with each member's raw output
    (decision function, else probability) on its inner test fold, which its calibrator is fitted to."""

    params: dict[str, Any]
    score: float
    members: tuple[Any, ...]
    raw: tuple[np.ndarray, ...]


def family_pipeline(family: str, data: Data, params: dict[str, Any], seed: int) -> Any:
    """An unfitted pipeline of *family* on *data*'s features."""
    return get_family(family).pipeline(tuple(data.X.columns), data.domains, params, seed)


def path_order(candidates: list[dict[str, Any]]) -> list[int]:
    """The order the candidates are fitted in: along the regularisation path (strongest penalty first) where
    they have one, so that each starts from its neighbour's solution; as drawn otherwise."""
    if not candidates or any("model__C" not in c for c in candidates):
        return list(range(len(candidates)))
    return sorted(range(len(candidates)), key=lambda i: (candidates[i]["model__C"], candidates[i].get("model__l1_ratio", 0)))


def _warm(candidate: Any, previous: Any) -> None:
    """Start *candidate*'s solver at *previous*'s coefficients. Why: along a path neighbouring penalties have
    nearby solutions, so saga and lbfgs converge in a few passes; the optimum (to the solver's tolerance) is
    the one a cold start reaches."""
    if previous is not None and "warm_start" in candidate.get_params() and hasattr(previous, "coef_"):
        candidate.set_params(warm_start=True)
        candidate.coef_, candidate.intercept_ = previous.coef_.copy(), previous.intercept_.copy()


def candidate_fits(family: str, data: Data, folds: Folds, candidates: list[dict[str, Any]], metric: str,
                   seed: int) -> tuple[np.ndarray, list[list[tuple[Any, np.ndarray]]]]:
    """Mean inner-fold score of each candidate of *family*, and each candidate fitted on each inner training fold
    with its raw output on the inner test fold.

    Candidates differ only in the final model's parameters (the registry's contract), and the fitted tier
    before it learns nothing from the labels, so the tier is fitted once per inner fold and shared by the
    candidates: the same numbers as refitting each whole pipeline, several times faster.
    """
    from sklearn.utils._response import _get_response_values  # what CalibratedClassifierCV calibrates

    scores = np.full((len(candidates), len(folds)), np.nan)
    fitted: list[list[Any]] = [[None] * len(folds) for _ in candidates]
    calibrated = get_family(family).calibrate
    for j, (train, test) in enumerate(folds):
        pipeline = family_pipeline(family, data, {}, seed)
        head, model = pipeline[:-1], pipeline[-1]
        fitted_train = head.fit_transform(data.X.iloc[train])
        fitted_test = head.transform(data.X.iloc[test])
        previous = None
        for i in path_order(candidates):
            candidate = clone(model).set_params(**{k.removeprefix("model__"): v for k, v in candidates[i].items()})
            _warm(candidate, previous)
            candidate.fit(fitted_train, data.y[train])
            if "warm_start" in candidate.get_params():
                candidate.set_params(warm_start=False)  # the stored member refits from cold, as its clones do
            scores[i, j] = CRITERIA[metric](data.y[test], predict(candidate, fitted_test))
            raw = _get_response_values(candidate, fitted_test, ["decision_function", "predict_proba"])[0] if calibrated else None
            fitted[i][j], previous = (Pipeline([*head.steps, ("model", candidate)]), raw), candidate
    return np.asarray(np.nanmean(scores, axis=1)), fitted


def search(data: Data, config: TrainConfig, seed: int, folds: Folds | None = None) -> dict[str, Searched]:
    """Each family's inner loop on *data* (:class:`Searched`)."""
    folds = inner_splits(data.task.strata(data.y), data.patients, config.cv.inner_folds, seed) if folds is None else folds
    out = {}
    for family in config.families:
        candidates = get_family(family).candidates(config.search.budget, seed)
        metric = data.task.selection_metric or config.search.selection_metric
        scores, fitted = candidate_fits(family, data, folds, candidates, metric, seed)
        best = int(np.argmax(np.nan_to_num(scores, nan=-np.inf)))  # the first of equal scores; never an undefined one
        members, raw = zip(*fitted[best], strict=True)
        out[family] = Searched(candidates[best], float(scores[best]), members, raw)
    return out


def fit_calibrated(family: str, params: dict[str, Any], data: Data, config: TrainConfig, seed: int,
                   folds: Folds | None = None) -> Any:
    """Fit *family* on *data* with calibration learnt on patient-grouped inner folds (*folds*, or drawn)."""
    model = family_pipeline(family, data, params, seed)
    if not get_family(family).calibrate:
        return model.fit(data.X, data.y)
    folds = inner_splits(data.task.strata(data.y), data.patients, config.cv.inner_folds, seed) if folds is None else folds
    return CalibratedClassifierCV(model, method=config.calibration.method, cv=folds).fit(data.X, data.y)


def fit_searched(family: str, searched: Searched, data: Data, config: TrainConfig, seed: int, folds: Folds) -> Any:
    """:func:`fit_calibrated` of *family*'s best candidate, re-using its search's inner-fold fits as the
    calibration members (*folds* are the folds the search used); a family that is not calibrated is fitted
    on every course."""
    model = family_pipeline(family, data, searched.params, seed)
    if not get_family(family).calibrate:
        return model.fit(data.X, data.y)
    return calibrated_ensemble(model, searched, data, folds, config.calibration.method)


def calibrated_ensemble(template: Any, searched: Searched, data: Data, folds: Folds, method: str) -> Any:
    """What ``CalibratedClassifierCV(template, method, cv=folds).fit(data.X, data.y)`` builds, from the members
    the search fitted on each inner training fold: each member's calibrator is fitted to its raw output on its
    own inner test fold.

    Why by hand: scikit-learn offers no public way to calibrate members it did not fit itself; its private
    ``_fit_calibrator`` is the step its own ``fit`` runs per fold, so given the same members the numbers are
    identical (tested, which also catches a change of that private signature).
    """
    from sklearn.calibration import _fit_calibrator

    model = CalibratedClassifierCV(template, method=method, cv=len(folds))
    model.classes_ = np.unique(data.y)
    model.calibrated_classifiers_ = [
        _fit_calibrator(member, np.asarray(raw).reshape(-1, 1), data.y[test], model.classes_, method, xp=np)
        for member, raw, (_, test) in zip(searched.members, searched.raw, folds, strict=True)]
    first = searched.members[0]
    for attribute in ("n_features_in_", "feature_names_in_"):
        if hasattr(first, attribute):
            setattr(model, attribute, getattr(first, attribute))
    return model


def refit(estimator: Any, data: Data, config: TrainConfig, seed: int) -> Any:
    """*estimator* (a :func:`fit_calibrated` or :func:`fit_searched` result) fitted anew on *data*: the same family and hyperparameters,
    with its own in-fold calibration on patient-grouped folds of *data* (a bootstrap replicate of the final fit)."""
    if not isinstance(estimator, CalibratedClassifierCV):
        return clone(estimator).fit(data.X, data.y)
    folds = inner_splits(data.task.strata(data.y), data.patients, config.cv.inner_folds, seed)
    model = CalibratedClassifierCV(clone(estimator.estimator), method=estimator.method, cv=folds).fit(data.X, data.y)
    model.cv = len(folds)  # the folds are course positions: prediction does not need them, the logged model keeps none
    return model


def select(searched: dict[str, Searched]) -> str:
    """The family with the best inner score (ties: the simpler, earlier-listed family)."""
    return max(searched, key=lambda f: (searched[f].score, -FAMILY_NAMES.index(f)))


def fit_selected(data: Data, config: TrainConfig) -> tuple[str, Any]:
    """The whole procedure on every course: the inner search, then the selected family's calibrated best."""
    folds = inner_splits(data.task.strata(data.y), data.patients, config.cv.inner_folds, config.seed)
    searched = search(data, config, config.seed, folds)
    selected = select(searched)
    return selected, fit_searched(selected, searched[selected], data, config, config.seed, folds)


def fold_threshold(train: Data, config: TrainConfig) -> float:
    """The decision threshold of a fold: the configured probability, or its training event rate (none for a
    prediction that is not the probability of a binary outcome)."""
    t = config.evaluation.threshold
    if not train.task.probabilities:
        return float("nan")
    return float(train.y.mean()) if t == "prevalence" else float(t)


def run_fold(data: Data, split: Split, config: TrainConfig, explain_selected: bool = True) -> FoldResult:
    """One outer fold: inner search, then each family's calibrated best predicts the test fold. Without
    *explain_selected* (a permuted run) only what the tested statistic reads: no SHAP, no relapse curves."""
    seed = config.seed + 1000 * split.repeat + split.fold
    train, test = data.take(split.train), data.take(split.test)
    inner = inner_splits(train.task.strata(train.y), train.patients, config.cv.inner_folds, seed)  # drawn once: slow for many patients
    searched = search(train, config, seed, inner)
    result = FoldResult(split, select(searched), {f: s.params for f, s in searched.items()},
                        {f: s.score for f, s in searched.items()}, fold_threshold(train, config))
    for family in config.families:
        model = fit_searched(family, searched[family], train, config, seed, inner)
        result.predictions[family] = predict(model, test.X)
        if not explain_selected:
            continue
        last: Any = model.steps[-1][1] if hasattr(model, "steps") else None
        if hasattr(last, "survival"):  # a durability model: its curves, for the integrated Brier score
            result.curves[family] = last.survival(model[:-1].transform(test.X), GRID_DAYS)
        if family == result.selected:
            explained = explain(model, family, train.X, test.X)
            result.shap, result.shap_modifier = explained.values, explained.modifier
            result.additivity_error = float(np.abs(explained.values.sum(axis=1) + explained.base - explained.raw).max())
    return result


def repeats(data: Data, config: TrainConfig) -> int:
    """Outer repeats for this cohort: ``cv.outer_repeats`` while the smaller outcome stratum where the tested
    statistic is judged (within the drug arms for ``auroc_active`` or C; quintiles of a continuous outcome)
    holds fewer than ``cv.single_repeat_from`` courses, one from there on.

    Why: a second repeat averages out the noise of one random split, which fades as the folds grow; the
    counts are the same under every label permutation (labels move within site x arm), so the permuted runs
    repeat exactly as often as the observed one. The price: one repeat's corrected-t interval is wider
    (4 instead of 9 degrees of freedom, 1/5 instead of 1/10 in the variance: about 1.4 times), as the run
    notes say.
    """
    c = config.cv
    within_drug = statistic_of(data, config.policy.min_events_per_arm) in (ACTIVE_AUROC, ACTIVE_C)
    where = active(data) if within_drug else np.ones(len(data.y), dtype=bool)
    counts = np.unique(data.task.strata(data.y[where]), return_counts=True)[1]
    smaller = int(counts.min()) if len(counts) > 1 else 0  # one stratum only: nothing to gain, keep every repeat
    return c.outer_repeats if smaller < c.single_repeat_from else 1


def repeats_note(data: Data, config: TrainConfig) -> str | None:
    """What the run notes say when fewer outer repeats ran than ``cv.outer_repeats`` (None otherwise)."""
    c = config.cv
    if c.design == "site" or repeats(data, config) == c.outer_repeats:
        return None
    return (f"one outer repeat of {c.outer_folds} folds, not {c.outer_repeats}: the smaller outcome stratum where the "
            f"tested statistic is judged holds at least cv.single_repeat_from = {c.single_repeat_from} courses, where "
            "a second repeat only averages out one split's noise; the permuted runs repeat as often. Its corrected-t "
            "intervals are about 1.4 times as wide as two repeats' (fewer degrees of freedom), and ranges over repeats "
            "have one value")


def splits_of(data: Data, config: TrainConfig, seed: int | None = None) -> list[Split]:
    """The outer splits of one run of the procedure on *data*, drawn with *seed* (default: the config's)."""
    c = config.cv
    return outer_splits(data.task.strata(data.y), data.patients, data.sites, c.design, c.outer_folds,
                        repeats(data, config), config.seed if seed is None else seed)


def run_nested(data: Data, config: TrainConfig, parallel: Any, seed: int | None = None,
               explain: bool = True, progress: Progress | None = None) -> list[FoldResult]:
    """All outer folds, split with *seed* (default: the config's), in parallel when *parallel* is a
    joblib.Parallel; each finished fold advances *progress*."""
    return run_many([data], [splits_of(data, config, seed)], config, parallel, explain, progress)[0]


def run_many(runs: list[Data], splits: list[list[Split]], config: TrainConfig, parallel: Any, explain: bool = True,
             progress: Progress | None = None) -> list[list[FoldResult]]:
    """Several runs of the procedure (one per data set, with its splits) as one batch of (run, fold) tasks, so
    a pool or cluster wider than one run's folds stays busy; each finished fold advances *progress*."""
    from joblib import delayed

    tasks = [(i, s) for i, run in enumerate(splits) for s in run]
    out: list[list[FoldResult]] = [[] for _ in runs]
    for (i, _), fold in zip(tasks, parallel(delayed(run_fold)(runs[i], s, config, explain) for i, s in tasks), strict=True):
        out[i].append(fold)
        if progress is not None:
            progress.advance()
    return out


def n_outer(data: Data, config: TrainConfig) -> int:
    """How many outer folds one run of the procedure fits (for progress totals)."""
    c = config.cv
    return len(np.unique(data.sites)) if c.design == "site" else c.outer_folds * repeats(data, config)
