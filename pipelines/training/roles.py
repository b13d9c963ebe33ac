"""The fitted part of the biomarker roles table: each candidate feature's cross-fitted "others" index.

The roles regressions themselves (:mod:`ketamine_response.pipelines.evaluation.roles`) are inference
on the index computed here; the ridge S-learner that produces it is a fitted model, so it lives in
training and evaluation receives only its out-of-fold output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ARM_COLUMNS
from ketamine_response.features.derivations.inflammatory import COMPOSITE_MARKERS
from ketamine_response.pipelines.folds import Data


def others_fold(data: Data, rows: np.ndarray, groups: dict[str, list[str]], train: np.ndarray,
                test: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One fold of every feature's cross-fitted (prognostic, modifier) log-odds index: *test* and, per feature of
    *groups* (the feature and its proxies, :func:`related_features`), the index of the *test* courses from a
    ridge S-learner fitted on *train* without the group.

    Why an index at all: one feature at a time, a logistic interaction is biased by the features left out: other
    drug-arm modifiers add unexplained variance to the drug arm only, which shrinks a prognostic feature's
    drug-arm slope and fakes an interaction (non-collapsibility). Adjusting for the others jointly, feature by
    feature, was unstable at trial sizes (collinear proxies, ~60 terms); two summary covariates are not:
    *prognostic* = log-odds on placebo and *modifier* = log-odds on the drug minus on placebo, from a ridge
    S-learner with centred interactions fitted without the tested feature and everything derived from its
    source columns, cross-fitted on patient-grouped folds.

    Every step of the linear tier but the composite works column by column, so a group's design matrix is the
    all-feature matrix without the group's columns (and their missing-indicator and interaction terms): the tier
    is fitted once per fold and per set of composite markers dropped, not once per feature. Its pandas and
    input-validation overhead, not the ridge fits, was most of the cost.
    """
    from sklearn.linear_model import LogisticRegression

    X, y = data.X.iloc[rows], data.y[rows]
    drug = _site_drug(data, rows)[test]
    tiers: dict[tuple[str, ...], _Tier] = {}
    out = {}
    for feature, drop in groups.items():
        markers = tuple(c for c in COMPOSITE_MARKERS if c in drop)  # the composite is remade from the others
        if markers not in tiers:
            tiers[markers] = _Tier.fit(tuple(c for c in X.columns if c not in markers), X.iloc[train], X.iloc[test], drug)
        tier = tiers[markers]
        keep = ~np.isin(tier.sources, drop)
        model = LogisticRegression(C=0.1, max_iter=2000).fit(tier.train[:, keep], y[train])
        placebo = model.decision_function(tier.placebo[:, keep])
        out[feature] = np.column_stack([placebo, model.decision_function(tier.on_drug[:, keep]) - placebo])
    return test, out


def _site_drug(data: Data, rows: np.ndarray) -> np.ndarray:
    """Each course's site's active drug (a placebo course's comparison drug; NaN at a site without one)."""
    sites = data.sites[rows]
    return pd.Series(data.treatments[rows]).where(lambda t: t != "placebo").groupby(sites).transform("first").to_numpy()


@dataclass(frozen=True)
class _Tier:
    """The linear families' fitted tier on one fold: its design matrices and each output column's source feature."""

    sources: np.ndarray  # per output column, the input feature it comes from (itself, its missing indicator, x arm)
    train: np.ndarray
    placebo: np.ndarray  # the test courses as if given placebo
    on_drug: np.ndarray  # the test courses as if given their site's drug (placebo where there is none)

    @classmethod
    def fit(cls, columns: tuple[str, ...], train: pd.DataFrame, test: pd.DataFrame, drug: np.ndarray) -> _Tier:
        from ketamine_response.models.benefit import arm_column, with_arm
        from ketamine_response.models.families import linear_pipeline

        tier = linear_pipeline(columns, "passthrough")
        fitted = tier.fit_transform(train)
        placebo = tier.transform(with_arm(test, None)).to_numpy()
        on_drug = placebo.copy()
        for arm in pd.unique(drug):
            here = drug == arm
            if isinstance(arm, str) and arm_column(arm) in test:
                on_drug[here] = tier.transform(with_arm(test[here], arm)).to_numpy()
        return cls(tier.named_steps["tier"].sources_out_, fitted.to_numpy(), placebo, on_drug)


def related_features(data: Data, dictionary: pd.DataFrame) -> dict[str, list[str]]:
    """Per candidate feature (arm indicators excluded), itself and every feature sharing a source column with
    it (*dictionary*'s ``inputs``): proxies of one measurement (bmi and obese)."""
    info = dictionary.set_index("feature")
    sources = {f: set(str(info.loc[f, "inputs"]).split(";")) for f in data.X.columns if f in info.index}
    out = {}
    for feature in [c for c in data.X.columns if c not in ARM_COLUMNS]:
        related = [f for f, s in sources.items() if s & sources.get(feature, {feature}) and f not in (*ARM_COLUMNS, feature)]
        out[feature] = [feature, *related]
    return out


def others_tasks(data: Data, rows: np.ndarray, dictionary: pd.DataFrame, folds: int = 5) -> list[Any]:
    """The joblib tasks of every candidate feature's others index (without it and its proxies,
    :func:`related_features`), one per patient-grouped fold (:func:`others_fold`): independent fits, for a
    caller to run beside its own tasks and :func:`gather` into the indexes."""
    from joblib import delayed
    from sklearn.model_selection import GroupKFold

    groups = related_features(data, dictionary)
    split = GroupKFold(n_splits=folds).split(rows, groups=data.patients[rows])
    return [delayed(others_fold)(data, rows, groups, train, test) for train, test in split]


def gather(rows: np.ndarray, parts: list[tuple[np.ndarray, dict[str, np.ndarray]]]) -> dict[str, np.ndarray]:
    """Per feature, the index of every course of *rows*, from the folds' parts (:func:`others_fold`)."""
    out = {feature: np.zeros((len(rows), 2)) for feature in parts[0][1]}
    for test, values in parts:
        for feature, index in values.items():
            out[feature][test] = index
    return out


def others_indexes(data: Data, rows: np.ndarray, dictionary: pd.DataFrame, parallel: Any = None) -> dict[str, np.ndarray]:
    """Per candidate feature, its cross-fitted others index (:func:`others_fold`): what the roles table adjusts
    for; on *parallel* (a ``joblib.Parallel``) if given."""
    from joblib import Parallel

    return gather(rows, (parallel or Parallel(n_jobs=1))(others_tasks(data, rows, dictionary)))
