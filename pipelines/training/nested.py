"""Nested cross-validation with the model family as one more hyperparameter.

Inner loop: every (family, hyperparameters) candidate is scored by the pre-declared criterion
on patient-grouped inner folds of the outer training set. The best candidate of each family is
refit with in-fold calibration and predicts the outer test fold (the child runs' estimates);
the best candidate overall is the parent's selection for that fold, so the parent's pooled
out-of-fold metrics estimate the whole procedure, selection included.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV

from ketamine_response.models.explain import explain
from ketamine_response.models.families import FAMILY_NAMES, get_family, predict
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.evaluation.metrics import auroc, brier, log_loss
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



def family_pipeline(family: str, data: Data, params: dict[str, Any], seed: int) -> Any:
    """An unfitted pipeline of *family* on *data*'s features."""
    return get_family(family).pipeline(tuple(data.X.columns), data.domains, params, seed)


def candidate_scores(family: str, data: Data, folds: Folds,
                     candidates: list[dict[str, Any]], metric: str, seed: int) -> np.ndarray:
    """Mean inner-fold score of each candidate of *family*.

    Candidates differ only in the final model's parameters (the registry's contract), and the
    fitted tier before it learns nothing from the labels, so the tier is fitted once per inner
    fold and shared by the candidates: the same numbers as refitting each whole pipeline, several
    times faster for the linear families.
    """
    scores = np.full((len(candidates), len(folds)), np.nan)
    for j, (train, test) in enumerate(folds):
        pipeline = family_pipeline(family, data, {}, seed)
        head, model = pipeline[:-1], pipeline[-1]
        fitted_train = head.fit_transform(data.X.iloc[train])
        fitted_test = head.transform(data.X.iloc[test])
        for i, params in enumerate(candidates):
            candidate = clone(model).set_params(**{k.removeprefix("model__"): v for k, v in params.items()})
            candidate.fit(fitted_train, data.y[train])
            scores[i, j] = CRITERIA[metric](data.y[test], predict(candidate, fitted_test))
    return np.asarray(np.nanmean(scores, axis=1))


def search(data: Data, config: TrainConfig, seed: int,
           folds: Folds | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Best hyperparameters and inner-CV score of each family on *data* (the inner loop)."""
    folds = inner_splits(data.task.strata(data.y), data.patients, config.cv.inner_folds, seed) if folds is None else folds
    best_params: dict[str, dict[str, Any]] = {}
    best_score: dict[str, float] = {}
    for family in config.families:
        candidates = get_family(family).candidates(config.search.budget, seed)
        metric = data.task.selection_metric or config.search.selection_metric
        scores = candidate_scores(family, data, folds, candidates, metric, seed)
        best = int(np.argmax(np.nan_to_num(scores, nan=-np.inf)))  # the first of equal scores; never an undefined one
        best_params[family], best_score[family] = candidates[best], float(scores[best])
    return best_params, best_score


def fit_calibrated(family: str, params: dict[str, Any], data: Data, config: TrainConfig, seed: int,
                   folds: Folds | None = None) -> Any:
    """Fit *family* on *data* with calibration learnt on patient-grouped inner folds (*folds*, or drawn)."""
    model = family_pipeline(family, data, params, seed)
    if not get_family(family).calibrate:
        return model.fit(data.X, data.y)
    folds = inner_splits(data.task.strata(data.y), data.patients, config.cv.inner_folds, seed) if folds is None else folds
    return CalibratedClassifierCV(model, method=config.calibration.method, cv=folds).fit(data.X, data.y)


def refit(estimator: Any, data: Data, config: TrainConfig, seed: int) -> Any:
    """*estimator* (a :func:`fit_calibrated` result) fitted anew on *data*: the same family and hyperparameters,
    with its own in-fold calibration on patient-grouped folds of *data* (a bootstrap replicate of the final fit)."""
    if not isinstance(estimator, CalibratedClassifierCV):
        return clone(estimator).fit(data.X, data.y)
    folds = inner_splits(data.task.strata(data.y), data.patients, config.cv.inner_folds, seed)
    model = CalibratedClassifierCV(clone(estimator.estimator), method=estimator.method, cv=folds).fit(data.X, data.y)
    model.cv = len(folds)  # the folds are course positions: prediction does not need them, the logged model keeps none
    return model


def select(best_score: dict[str, float]) -> str:
    """The family with the best inner score (ties: the simpler, earlier-listed family)."""
    return max(best_score, key=lambda f: (best_score[f], -FAMILY_NAMES.index(f)))


def fold_threshold(train: Data, config: TrainConfig) -> float:
    """The decision threshold of a fold: the configured probability, or its training event rate (none for a
    prediction that is not the probability of a binary outcome)."""
    t = config.evaluation.threshold
    if not train.task.probabilities:
        return float("nan")
    return float(train.y.mean()) if t == "prevalence" else float(t)


def run_fold(data: Data, split: Split, config: TrainConfig, explain_selected: bool = True) -> FoldResult:
    """One outer fold: inner search, then each family's calibrated best predicts the test fold."""
    seed = config.seed + 1000 * split.repeat + split.fold
    train, test = data.take(split.train), data.take(split.test)
    inner = inner_splits(train.task.strata(train.y), train.patients, config.cv.inner_folds, seed)  # drawn once: slow for many patients
    params, scores = search(train, config, seed, inner)
    result = FoldResult(split, select(scores), params, scores, fold_threshold(train, config))
    for family in config.families:
        model = fit_calibrated(family, params[family], train, config, seed, inner)
        result.predictions[family] = predict(model, test.X)
        last: Any = model.steps[-1][1] if hasattr(model, "steps") else None
        if hasattr(last, "survival"):  # a durability model: its curves, for the integrated Brier score
            result.curves[family] = last.survival(model[:-1].transform(test.X), GRID_DAYS)
        if family == result.selected and explain_selected:
            explained = explain(model, family, train.X, test.X)
            result.shap, result.shap_modifier = explained.values, explained.modifier
            result.additivity_error = float(np.abs(explained.values.sum(axis=1) + explained.base - explained.raw).max())
    return result


def run_nested(data: Data, config: TrainConfig, parallel: Any, seed: int | None = None,
               explain: bool = True, progress: Progress | None = None) -> list[FoldResult]:
    """All outer folds, split with *seed* (default: the config's), in parallel when *parallel* is a
    joblib.Parallel; each finished fold advances *progress*."""
    from joblib import delayed

    c = config.cv
    splits = outer_splits(data.task.strata(data.y), data.patients, data.sites, c.design, c.outer_folds, c.outer_repeats,
                          config.seed if seed is None else seed)
    out = []
    for fold in parallel(delayed(run_fold)(data, s, config, explain) for s in splits):
        out.append(fold)
        if progress is not None:
            progress.advance()
    return out


def n_outer(data: Data, config: TrainConfig) -> int:
    """How many outer folds one run of the procedure fits (for progress totals)."""
    c = config.cv
    return len(np.unique(data.sites)) if c.design == "site" else c.outer_folds * c.outer_repeats
