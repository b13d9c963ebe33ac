"""The roles table's others index: the shared-tier computation is the per-feature ridge S-learner it stands for."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.models.benefit import arm_column, with_arm
from ketamine_response.models.families import linear_pipeline
from ketamine_response.pipelines.config import load_config
from ketamine_response.pipelines.flows.train import build_training_data
from ketamine_response.pipelines.training.roles import others_indexes, related_features


def one_feature_at_a_time(X: pd.DataFrame, y: np.ndarray, drug: np.ndarray, patients: np.ndarray,
                          drop: list[str]) -> np.ndarray:
    """The definition: the linear tier and ridge logistic refitted on each fold without *drop*, every column."""
    columns = tuple(c for c in X.columns if c not in drop)
    out = np.zeros((len(X), 2))
    for train, test in GroupKFold(n_splits=5).split(X, y, groups=patients):
        model = linear_pipeline(columns, LogisticRegression(C=0.1, max_iter=2000)).fit(X.iloc[train], y[train])
        placebo = model.decision_function(with_arm(X.iloc[test], None))
        on_drug = placebo.copy()
        for arm in pd.unique(drug[test]):
            here = drug[test] == arm
            if isinstance(arm, str) and arm_column(arm) in X:
                on_drug[here] = model.decision_function(with_arm(X.iloc[test][here], arm))
        out[test] = np.column_stack([placebo, on_drug - placebo])
    return out


def test_the_shared_tier_gives_each_features_own_fit():
    cohort, _ = build_cohort(300, 5, "benefit")
    data, built, _ = build_training_data(validate_table(cohort, "benefit"), "response_24h", load_config(), False)
    rows = np.arange(len(data.y))
    indexes = others_indexes(data, rows, built.dictionary)
    groups = related_features(data, built.dictionary)
    assert set(indexes) == set(groups) and len(groups) >= 20
    drug = pd.Series(data.treatments).where(lambda t: t != "placebo").groupby(data.sites).transform("first").to_numpy()
    # a feature without proxies, one with (bmi and obese share a column), a composite marker and a prognostic one
    for feature in ("age", "bmi_kg_m2", "log_il6", "madrs_baseline"):
        expected = one_feature_at_a_time(data.X, data.y, drug, data.patients, groups[feature])
        np.testing.assert_allclose(indexes[feature], expected, rtol=0, atol=1e-9, err_msg=feature)
    assert len(groups["bmi_kg_m2"]) > 1  # the proxy case is exercised
