"""SHAP for a training run: out-of-fold importance with its uncertainty, and the final model on all courses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.models.explain import Explanation, explain
from ketamine_response.pipelines.evaluation.importance import IMPORTANCE_COLUMNS, by_domain, by_source_column, global_importance
from ketamine_response.pipelines.folds import Data, FoldResult


@dataclass(frozen=True)
class ShapSummary:
    """Aggregated SHAP results of a run (no per-course values are kept for logging)."""

    importance: pd.DataFrame
    domains: pd.DataFrame
    sources: pd.DataFrame
    final: Explanation
    max_additivity_error: float
    vetoed: bool = False  # no feature may be called consistently important (the procedure showed no signal)


def explain_training(data: Data, folds: list[FoldResult], estimator: Any, family: str, dictionary: pd.DataFrame,
                     signal: bool = True) -> ShapSummary:
    """Global importance from out-of-fold SHAP; domains and sources from the final model on all courses.

    *signal* False (the model did not beat permuted labels) means no feature is reported as
    ``consistent``, however stable its ranking: a stable ranking of noise is still noise.
    """
    final = explain(estimator, family, data.X, data.X)
    final_error = float(np.abs(final.values.sum(axis=1) + final.base - final.raw).max())
    explained_folds = any(f.shap is not None and f.shap.shape[1] for f in folds)
    importance = (global_importance(folds, data.X, dictionary) if explained_folds
                  else pd.DataFrame(columns=IMPORTANCE_COLUMNS))
    importance["consistent"] = importance["consistent"].astype(bool) & signal
    # the prevalence model explains nothing: its tables stay empty
    domains = by_domain(final.values, dictionary) if final.values.shape[1] else pd.DataFrame(columns=["domain", "mean_abs_shap"])
    sources = (by_source_column(final.values, dictionary) if final.values.shape[1]
               else pd.DataFrame(columns=["source_column", "mean_abs_shap"]))
    return ShapSummary(importance, domains, sources, final, max([f.additivity_error for f in folds] + [final_error]),
                       vetoed=not signal)
