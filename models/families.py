"""Estimator families and their search spaces.

Every family is a scikit-learn pipeline that starts from the tier-1 feature table, so its fitted
tier (winsorising, composites, imputation, scaling) is refit wherever the pipeline is fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.dummy import DummyClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import ParameterSampler
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from features.transformers import ActiveArmInteractions, Winsorizer, ZScoreComposite

CLINICAL_DOMAINS = ("clinical", "pharmacological")
INFLAMMATION = ("log_il6", "log_crp", "log_tnf_alpha")


class SelectColumns(TransformerMixin, BaseEstimator):
    """Keep the named columns of a DataFrame (a family's view of the feature table)."""

    def __init__(self, columns: tuple[str, ...] = ()):
        self.columns = columns

    def fit(self, X: pd.DataFrame, y=None):
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"SelectColumns: columns {missing} are not in the feature table")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X[list(self.columns)]

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.columns, dtype=object)


@dataclass(frozen=True)
class Family:
    """A model family: which features it sees, and the hyperparameters searched in the inner loop."""

    name: str
    description: str
    space: dict[str, list[Any]]

    def columns(self, features: tuple[str, ...], domains: dict[str, str]) -> tuple[str, ...]:
        if self.name == "prevalence":
            return features[:1]
        if self.name == "clinical_logistic":
            return tuple(f for f in features if domains.get(f) in CLINICAL_DOMAINS)
        return features

    def candidates(self, budget: int, seed: int) -> list[dict[str, Any]]:
        """Up to *budget* hyperparameter settings, drawn reproducibly."""
        if not self.space:
            return [{}]
        size = int(np.prod([len(v) for v in self.space.values()]))
        return list(ParameterSampler(self.space, n_iter=min(budget, size), random_state=seed))


FAMILIES: dict[str, Family] = {
    "prevalence": Family("prevalence", "predicts the training event rate for everyone (the floor)", {}),
    "clinical_logistic": Family(
        "clinical_logistic", "ridge logistic regression on clinical and pharmacological features only",
        {"model__C": [0.01, 0.03, 0.1, 0.3, 1.0]}),
    "elastic_net": Family(
        "elastic_net", "elastic-net logistic regression on all features",
        {"model__C": [0.01, 0.03, 0.1, 0.3, 1.0], "model__l1_ratio": [0.1, 0.5, 0.9]}),
    "lightgbm": Family(
        "lightgbm", "gradient-boosted trees with small-data settings (shallow, regularised, native NaN)",
        {"model__num_leaves": [4, 8], "model__n_estimators": [100, 200], "model__learning_rate": [0.03, 0.06],
         "model__min_child_samples": [20, 40], "model__reg_lambda": [1.0, 10.0]}),
}


def _linear(columns: tuple[str, ...], seed: int, l1: bool) -> list[tuple[str, Any]]:
    inflammation = [c for c in INFLAMMATION if c in columns]
    steps: list[tuple[str, Any]] = [("select", SelectColumns(columns)), ("winsorize", Winsorizer())]
    if len(inflammation) >= 2:
        steps.append(("inflammation", ZScoreComposite(inflammation, name="inflammation_composite")))
    steps += [("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
              ("interact", ActiveArmInteractions()), ("scale", StandardScaler())]
    solver = "saga" if l1 else "lbfgs"
    model = LogisticRegression(C=0.1, l1_ratio=0.5 if l1 else 0.0, solver=solver, max_iter=2000, tol=1e-3,
                               random_state=seed)
    return steps + [("model", model)]


def build_pipeline(family: str, columns: tuple[str, ...], params: dict[str, Any], seed: int) -> Pipeline:
    """An unfitted pipeline of *family* on *columns* with *params* set."""
    if family == "prevalence":
        steps = [("select", SelectColumns(columns)), ("model", DummyClassifier(strategy="prior"))]
    elif family in ("clinical_logistic", "elastic_net"):
        # pandas between steps so the composite can find its columns by name
        linear = Pipeline(_linear(columns, seed, l1=family == "elastic_net")).set_output(transform="pandas")
        return linear.set_params(**params)
    elif family == "lightgbm":
        from lightgbm import LGBMClassifier

        model = LGBMClassifier(max_depth=3, subsample=0.8, subsample_freq=1, colsample_bytree=0.8,
                               n_jobs=1, random_state=seed, verbose=-1, deterministic=True, force_col_wise=True)
        steps = [("select", SelectColumns(columns)), ("model", model)]
    else:
        raise ValueError(f"unknown model family '{family}'")
    return Pipeline(steps).set_params(**params)
