"""The model-family registry: one declarative table read by config validation, training,
explanation, the logged model and the tests.

Every family is a scikit-learn pipeline that starts from the tier-1 feature table, so its fitted
tier (winsorising, composites, imputation, scaling) is refit wherever the pipeline is fit.
Adding a family is one :class:`Family` entry in :data:`FAMILIES` (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import ParameterSampler
from sklearn.pipeline import Pipeline

from ketamine_response.features.cohort.schema import ARM_COLUMNS
from ketamine_response.features.derivations.inflammatory import COMPOSITE, COMPOSITE_MARKERS
from ketamine_response.features.tasks import TaskKind
from ketamine_response.features.transformers import LinearTier, SelectColumns

# How models.explain computes exact SHAP values for the family's final step.
ExplainerKind = Literal["constant", "linear", "tree", "survival_tree"]
ColumnPolicy = Callable[[tuple[str, ...], Mapping[str, str]], tuple[str, ...]]
Builder = Callable[[tuple[str, ...], int], Pipeline]
CLINICAL_DOMAINS = ("clinical", "pharmacological")


@dataclass(frozen=True)
class Family:
    """A model family.

    Attributes
    ----------
    name, description : str
    space : mapping of pipeline parameter -> values searched in the inner loop (empty: nothing to tune)
    columns : which tier-1 features the family sees, given the features and their domains
    build : an unfitted pipeline on the given columns, seeded; its last step is named ``model``
    explainer : how its exact SHAP values are computed (see :mod:`ketamine_response.models.explain`)
    task : the kind of target it predicts (:mod:`ketamine_response.features.tasks`): a probability, or a value
    calibrate : whether the inner loop calibrates its probabilities (not for constants or regressors)
    threads_param : the pipeline parameter that sets prediction threads, if any
    """

    name: str
    description: str
    space: Mapping[str, Sequence[Any]]
    columns: ColumnPolicy
    build: Builder
    explainer: ExplainerKind
    task: TaskKind = TaskKind.BINARY
    calibrate: bool = True
    threads_param: str | None = None

    def candidates(self, budget: int, seed: int) -> list[dict[str, Any]]:
        """Up to *budget* hyperparameter settings, drawn reproducibly."""
        if not self.space:
            return [{}]
        size = int(np.prod([len(v) for v in self.space.values()]))
        return list(ParameterSampler(dict(self.space), n_iter=min(budget, size), random_state=seed))

    def pipeline(self, features: tuple[str, ...], domains: Mapping[str, str], params: Mapping[str, Any],
                 seed: int) -> Pipeline:
        """An unfitted pipeline on the family's view of *features*, with *params* set."""
        return self.build(self.columns(features, domains), seed).set_params(**params)


def all_columns(features: tuple[str, ...], domains: Mapping[str, str]) -> tuple[str, ...]:
    return features


def first_column(features: tuple[str, ...], domains: Mapping[str, str]) -> tuple[str, ...]:
    """A constant predictor reads no feature; one column keeps the pipeline's input contract."""
    return features[:1]


def clinical_columns(features: tuple[str, ...], domains: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(f for f in features if domains.get(f) in CLINICAL_DOMAINS)


def arm_columns(features: tuple[str, ...], domains: Mapping[str, str]) -> tuple[str, ...]:
    """The active-arm indicators only: what knowing the treatment alone predicts."""
    return tuple(f for f in features if f in ARM_COLUMNS) or features[:1]


def _arm_only(columns: tuple[str, ...], seed: int) -> Pipeline:
    model = LogisticRegression(C=1.0, max_iter=1000, random_state=seed)
    return Pipeline([("select", SelectColumns(columns)), ("impute", SimpleImputer(strategy="median")),
                     ("model", model)]).set_output(transform="pandas")


def _prevalence(columns: tuple[str, ...], seed: int) -> Pipeline:
    return Pipeline([("select", SelectColumns(columns)), ("model", DummyClassifier(strategy="prior"))])


def linear_pipeline(columns: tuple[str, ...], model: Any) -> Pipeline:
    """The linear families' fitted tier (:class:`LinearTier`: winsorising, the inflammation composite where two or
    more of its markers are in *columns*, imputation with missingness indicators, feature x arm terms, scaling),
    then *model*."""
    markers = tuple(c for c in COMPOSITE_MARKERS if c in columns)
    tier = LinearTier(columns, markers if len(markers) >= 2 else (), COMPOSITE)
    return Pipeline([("tier", tier), ("model", model)]).set_output(transform="pandas")


def _ridge_logistic(columns: tuple[str, ...], seed: int) -> Pipeline:
    return linear_pipeline(columns, LogisticRegression(C=0.1, l1_ratio=0.0, max_iter=2000, tol=1e-3, random_state=seed))


def _elastic_net(columns: tuple[str, ...], seed: int) -> Pipeline:
    model = LogisticRegression(C=0.1, l1_ratio=0.5, solver="saga", max_iter=2000, tol=1e-3, random_state=seed)
    return linear_pipeline(columns, model)


def _ridge_regression(columns: tuple[str, ...], seed: int) -> Pipeline:
    return linear_pipeline(columns, Ridge(alpha=10.0))


_LGBM_SMALL_DATA: dict[str, Any] = {"max_depth": 3, "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.8, "n_jobs": 1,
                    "verbose": -1, "deterministic": True, "force_col_wise": True}


def _lightgbm(columns: tuple[str, ...], seed: int) -> Pipeline:
    from lightgbm import LGBMClassifier  # imported on use: 1.4 s, and only these families need it

    # n_jobs=1: CV folds run in parallel; the logged model raises it for scoring (threads_param)
    model = LGBMClassifier(random_state=seed, **_LGBM_SMALL_DATA)
    return Pipeline([("select", SelectColumns(columns)), ("model", model)])


def _lightgbm_regression(columns: tuple[str, ...], seed: int) -> Pipeline:
    from lightgbm import LGBMRegressor

    return Pipeline([("select", SelectColumns(columns)), ("model", LGBMRegressor(random_state=seed, **_LGBM_SMALL_DATA))])


def _mean(columns: tuple[str, ...], seed: int) -> Pipeline:
    return Pipeline([("select", SelectColumns(columns)), ("model", DummyRegressor(strategy="mean"))])


def _km(columns: tuple[str, ...], seed: int) -> Pipeline:
    from ketamine_response.models.survival import KaplanMeierRelapse

    return Pipeline([("select", SelectColumns(columns)), ("model", KaplanMeierRelapse())])


def _coxnet(columns: tuple[str, ...], seed: int) -> Pipeline:
    from ketamine_response.models.survival import CoxnetRelapse

    return linear_pipeline(columns, CoxnetRelapse())


def _boosted_survival(columns: tuple[str, ...], seed: int) -> Pipeline:
    from ketamine_response.models.survival import BoostedRelapse

    steps = [("select", SelectColumns(columns)), ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
             ("model", BoostedRelapse(random_state=seed))]
    return Pipeline(steps).set_output(transform="pandas")


_LGBM_SPACE: dict[str, list[Any]] = {"model__num_leaves": [4, 8], "model__n_estimators": [100, 200], "model__learning_rate": [0.03, 0.06],
               "model__min_child_samples": [20, 40], "model__reg_lambda": [1.0, 10.0]}
_ENTRIES = (
    Family("prevalence", "predicts the training event rate for everyone (the floor)", {}, first_column,
           _prevalence, "constant", calibrate=False),
    Family("arm_only", "logistic regression on the treatment arm alone (what the arm predicts without biomarkers)",
           {}, arm_columns, _arm_only, "linear"),
    Family("clinical_logistic", "ridge logistic regression on clinical and pharmacological features only",
           {"model__C": [0.01, 0.03, 0.1, 0.3, 1.0]}, clinical_columns, _ridge_logistic, "linear"),
    Family("elastic_net", "elastic-net logistic regression on all features",
           {"model__C": [0.01, 0.03, 0.1, 0.3, 1.0], "model__l1_ratio": [0.1, 0.5, 0.9]}, all_columns,
           _elastic_net, "linear"),
    Family("lightgbm", "gradient-boosted trees with small-data settings (shallow, regularised, native NaN)",
           _LGBM_SPACE, all_columns, _lightgbm,
           "tree", threads_param="model__n_jobs"),
    # continuous targets (pct_change_<tp>)
    Family("mean", "predicts the training mean for everyone (the floor)", {}, first_column, _mean, "constant",
           task=TaskKind.CONTINUOUS, calibrate=False),
    Family("ridge", "ridge regression on all features", {"model__alpha": [1.0, 10.0, 100.0, 1000.0]}, all_columns,
           _ridge_regression, "linear", task=TaskKind.CONTINUOUS, calibrate=False),
    Family("lightgbm_regression", "gradient-boosted regression trees with the same small-data settings",
           _LGBM_SPACE, all_columns, _lightgbm_regression, "tree", task=TaskKind.CONTINUOUS, calibrate=False,
           threads_param="model__n_jobs"),
    # time to relapse (time_to_relapse): right-censored, on the courses followed after a response
    Family("kaplan_meier", "the training courses' Kaplan-Meier curve for everyone (the floor)", {}, first_column, _km,
           "constant", task=TaskKind.SURVIVAL, calibrate=False),
    Family("coxnet", "elastic-net penalised Cox model on all features (scikit-survival)",
           {"model__alpha": [0.02, 0.05, 0.1, 0.2], "model__l1_ratio": [0.5, 0.9]}, all_columns, _coxnet, "linear",
           task=TaskKind.SURVIVAL, calibrate=False),
    # a small space: each fit boosts 100 trees (0.2 s on 500 courses), and the permutation test re-runs the search
    # 20 times; depth 1 is additive, depth 2 lets pairs of features (a factor and the arm) interact
    Family("boosted_survival", "gradient-boosted Cox model with depth-1 or depth-2 trees (scikit-survival)",
           {"model__max_depth": [1, 2], "model__n_estimators": [100], "model__learning_rate": [0.1]},
           all_columns, _boosted_survival, "survival_tree", task=TaskKind.SURVIVAL, calibrate=False),
)
FAMILIES: dict[str, Family] = {f.name: f for f in _ENTRIES}
# The row, child run and pooled predictions of the whole procedure: the family each outer fold's inner loop chose.
SELECTED = "selected"
FAMILY_NAMES: tuple[str, ...] = tuple(FAMILIES)


def family_names(task: TaskKind) -> tuple[str, ...]:
    """The registered families of one task, in registry order."""
    return tuple(f.name for f in _ENTRIES if f.task == task)


def predict(model: Any, X: Any) -> np.ndarray:
    """P(response) from a fitted classifier, the predicted value from a fitted regressor."""
    from sklearn.base import is_classifier

    return np.asarray(model.predict_proba(X)[:, 1] if is_classifier(model) else model.predict(X), dtype=float)


def get_family(name: str) -> Family:
    """The registered family *name*; ValueError lists the known ones."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family '{name}'; known: {', '.join(FAMILY_NAMES)}") from None
