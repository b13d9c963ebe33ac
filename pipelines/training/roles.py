"""The fitted part of the biomarker roles table: each candidate feature's cross-fitted "others" index.

The roles regressions themselves (:mod:`ketamine_response.pipelines.evaluation.roles`) are inference
on the index computed here; the ridge S-learner that produces it is a fitted model, so it lives in
training and evaluation receives only its out-of-fold output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ARM_COLUMNS
from ketamine_response.pipelines.folds import Data


def others_index(data: Data, rows: np.ndarray, drop: list[str], seed: int, folds: int = 5) -> np.ndarray:
    """Cross-fitted (prognostic, modifier) log-odds index of every course from all features but *drop*.

    One feature at a time, a logistic interaction is biased by the features left out: other drug-arm
    modifiers add unexplained variance to the drug arm only, which shrinks a prognostic feature's
    drug-arm slope and fakes an interaction (non-collapsibility). Adjusting for the others jointly,
    feature by feature, was unstable at trial sizes (collinear proxies, ~60 terms); two summary
    covariates are not: *prognostic* = log-odds on placebo and *modifier* = log-odds on the drug minus
    on placebo, from a ridge S-learner with centred interactions fitted without the tested feature and
    everything derived from its source columns, cross-fitted on patient-grouped folds.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    from ketamine_response.models.benefit import arm_column, with_arm
    from ketamine_response.models.families import linear_pipeline

    columns = tuple(c for c in data.X.columns if c not in drop)
    X, y = data.X.iloc[rows], data.y[rows]
    sites = data.sites[rows]
    drug = pd.Series(data.treatments[rows]).where(lambda t: t != "placebo").groupby(sites).transform("first").to_numpy()
    out = np.zeros((len(rows), 2))
    for train, test in GroupKFold(n_splits=folds).split(X, y, groups=data.patients[rows]):
        model = linear_pipeline(columns, LogisticRegression(C=0.1, max_iter=2000)).fit(X.iloc[train], y[train])
        placebo = model.decision_function(with_arm(X.iloc[test], None))
        on_drug = placebo.copy()
        for arm in pd.unique(drug[test]):
            here = drug[test] == arm
            if isinstance(arm, str) and arm_column(arm) in X:
                on_drug[here] = model.decision_function(with_arm(X.iloc[test][here], arm))
        out[test] = np.column_stack([placebo, on_drug - placebo])
    return out


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


def others_tasks(data: Data, rows: np.ndarray, dictionary: pd.DataFrame, seed: int = 0) -> dict[str, Any]:
    """Per candidate feature, the joblib task of its :func:`others_index` (without it and its proxies,
    :func:`related_features`): independent fits, for a caller to run beside its own tasks."""
    from joblib import delayed

    return {feature: delayed(others_index)(data, rows, group, seed)
            for feature, group in related_features(data, dictionary).items()}


def others_indexes(data: Data, rows: np.ndarray, dictionary: pd.DataFrame, seed: int = 0,
                   parallel: Any = None) -> dict[str, np.ndarray]:
    """Per candidate feature, :func:`others_index` without it and its proxies (:func:`related_features`):
    what the roles table adjusts for; on *parallel* (a ``joblib.Parallel``) if given."""
    from joblib import Parallel

    tasks = others_tasks(data, rows, dictionary, seed)
    return dict(zip(tasks, (parallel or Parallel(n_jobs=1))(tasks.values()), strict=True))
