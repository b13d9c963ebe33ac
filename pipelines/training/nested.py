"""Nested cross-validation with the model family as one more hyperparameter.

Inner loop: every (family, hyperparameters) candidate is scored by the pre-declared criterion
on patient-grouped inner folds of the outer training set. The best candidate of each family is
refit with in-fold calibration and predicts the outer test fold (the child runs' estimates);
the best candidate overall is the parent's selection for that fold, so the parent's pooled
out-of-fold metrics estimate the whole procedure, selection included.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV

from models.explain import explain
from models.families import FAMILY_NAMES, get_family
from pipelines.config import TrainConfig
from pipelines.evaluation.metrics import auroc, brier, log_loss
from pipelines.training.cv import Split, inner_splits, outer_splits
from pipelines.training.data import Data

log = logging.getLogger(__name__)


@dataclass
class FoldResult:
    split: Split
    selected: str
    params: dict[str, dict[str, Any]]
    inner_scores: dict[str, float]
    predictions: dict[str, np.ndarray] = field(default_factory=dict)
    shap: pd.DataFrame | None = None  # out-of-fold SHAP of the selected family on the test courses
    additivity_error: float = 0.0     # max |sum(SHAP) + base - raw output| on this fold


def _score(y: np.ndarray, p: np.ndarray, metric: str) -> float:
    """Higher is better for every criterion."""
    if metric == "auroc":
        return auroc(y, p)
    return -(brier(y, p) if metric == "brier" else log_loss(y, p))


def family_pipeline(family: str, data: Data, params: dict[str, Any], seed: int) -> Any:
    """An unfitted pipeline of *family* on *data*'s features."""
    return get_family(family).pipeline(tuple(data.X.columns), data.domains, params, seed)


def search(data: Data, config: TrainConfig, seed: int) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Best hyperparameters and inner-CV score of each family on *data* (the inner loop)."""
    folds = inner_splits(data.y, data.patients, config.cv.inner_folds, seed)
    best_params: dict[str, dict[str, Any]] = {}
    best_score: dict[str, float] = {}
    for family in config.families:
        for params in get_family(family).candidates(config.search.budget, seed):
            scores = []
            for train, test in folds:
                model = family_pipeline(family, data, params, seed).fit(data.X.iloc[train], data.y[train])
                scores.append(_score(data.y[test], model.predict_proba(data.X.iloc[test])[:, 1],
                                     config.search.selection_metric))
            score = float(np.nanmean(scores))
            if family not in best_score or score > best_score[family]:
                best_params[family], best_score[family] = params, score
    return best_params, best_score


def fit_calibrated(family: str, params: dict[str, Any], data: Data, config: TrainConfig, seed: int):
    """Fit *family* on *data* with calibration learnt on patient-grouped inner folds."""
    model = family_pipeline(family, data, params, seed)
    if not get_family(family).calibrate:
        return model.fit(data.X, data.y)
    folds = inner_splits(data.y, data.patients, config.cv.inner_folds, seed)
    return CalibratedClassifierCV(model, method=config.calibration.method, cv=folds).fit(data.X, data.y)


def select(best_score: dict[str, float]) -> str:
    """The family with the best inner score (ties: the simpler, earlier-listed family)."""
    return max(best_score, key=lambda f: (best_score[f], -FAMILY_NAMES.index(f)))


def run_fold(data: Data, split: Split, config: TrainConfig) -> FoldResult:
    """One outer fold: inner search, then each family's calibrated best predicts the test fold."""
    seed = config.seed + 1000 * split.repeat + split.fold
    train, test = data.take(split.train), data.take(split.test)
    params, scores = search(train, config, seed)
    result = FoldResult(split, select(scores), params, scores)
    for family in config.families:
        model = fit_calibrated(family, params[family], train, config, seed)
        result.predictions[family] = model.predict_proba(test.X)[:, 1]
        if family == result.selected:
            explained = explain(model, family, train.X, test.X)
            result.shap = explained.values
            result.additivity_error = float(np.abs(explained.values.sum(axis=1) + explained.base - explained.raw).max())
    return result


def run_nested(data: Data, config: TrainConfig, parallel) -> list[FoldResult]:
    """All outer folds (in parallel when *parallel* is a joblib.Parallel)."""
    from joblib import delayed

    c = config.cv
    splits = outer_splits(data.y, data.patients, data.sites, c.design, c.outer_folds, c.outer_repeats, config.seed)
    return list(parallel(delayed(run_fold)(data, s, config) for s in splits))


def pooled(data: Data, folds: list[FoldResult], family: str | None = None) -> np.ndarray:
    """Each course's mean out-of-fold probability over repeats; *family* None means the selected one."""
    total, count = np.zeros(len(data.y)), np.zeros(len(data.y))
    for f in folds:
        total[f.split.test] += f.predictions[family or f.selected]
        count[f.split.test] += 1
    return total / np.maximum(count, 1)
