"""Label-permutation test of a trained procedure (whole patients exchanged within site)."""

from __future__ import annotations

from typing import Any

import numpy as np

from pipelines.config import TrainConfig
from pipelines.evaluation.metrics import auroc
from pipelines.training.cv import permute_labels
from pipelines.training.data import Data
from pipelines.training.nested import FoldResult, family_pipeline


def _permuted_auroc(data: Data, folds: list[FoldResult], config: TrainConfig, y: np.ndarray,
                    family: str | None = None) -> float:
    # Cheaper scheme: refit each first-repeat fold's selected candidate (chosen on the real labels)
    # uncalibrated on permuted labels; calibration is monotone within a fold, so AUROC barely moves.
    p = np.full(len(y), np.nan)
    for f in folds:
        if f.split.repeat:
            continue
        seed = config.seed + f.split.fold
        chosen = family or f.selected
        model = family_pipeline(chosen, data, f.params[chosen], seed)
        model.fit(data.X.iloc[f.split.train], y[f.split.train])
        p[f.split.test] = model.predict_proba(data.X.iloc[f.split.test])[:, 1]
    return auroc(y, p)


def permutation_test(data: Data, folds: list[FoldResult], config: TrainConfig, parallel: Any,
                     family: str | None = None) -> tuple[float, float, list[float]]:
    """(observed AUROC, p-value, null AUROCs) with p = (b + 1) / (B + 1).

    *family* None tests the selected procedure; a family name tests that family's candidates.
    """
    from joblib import delayed

    observed = _permuted_auroc(data, folds, config, data.y, family)
    b = config.evaluation.permutations
    if b == 0:
        return observed, float("nan"), []
    rngs = [np.random.default_rng([config.seed, i]) for i in range(b)]
    labels = [permute_labels(data.y, data.patients, data.sites, data.treatments, r) for r in rngs]
    null = list(parallel(delayed(_permuted_auroc)(data, folds, config, y, family) for y in labels))
    exceed = sum(v >= observed for v in null if not np.isnan(v))
    return observed, (exceed + 1) / (b + 1), null
