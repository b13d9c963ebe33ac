"""SHAP values add up to each model's raw output, for every family, and map back to dictionary features."""

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMClassifier
from sklearn.pipeline import Pipeline

from features.synthetic_cohort import build_cohort
from features.validation import validate_table
from models.explain import background_centres, explain, source_feature
from models.families import SelectColumns
from pipelines.config import load_config
from pipelines.nested import fit_calibrated, search
from pipelines.train import build_training_data
from tests.pipelines.conftest import FAST_CONFIG


@pytest.fixture(scope="module")
def training():
    cohort, _ = build_cohort(500, 4, "strong")
    config = load_config(FAST_CONFIG)
    data, _, _ = build_training_data(validate_table(cohort, "c"), "response_24h", config, False)
    params, _ = search(data, config, 1)
    return data, config, params


@pytest.mark.parametrize("family", ["prevalence", "clinical_logistic", "elastic_net", "lightgbm"])
def test_additivity_for_every_family(training, family):
    data, config, params = training
    train, test = data.take(np.arange(0, 300)), data.take(np.arange(300, len(data.y)))
    model = fit_calibrated(family, params[family], train, config, 1)
    e = explain(model, train.X, test.X)
    np.testing.assert_allclose(e.values.sum(axis=1).to_numpy() + e.base, e.raw, atol=1e-9)
    assert list(e.values.index) == list(test.X.index)
    assert all(c in data.X.columns or c == "inflammation_composite" for c in e.values.columns)
    # stored centres (no training rows) give the same explanation
    again = explain(model, background_centres(model, train.X), test.X)
    pd.testing.assert_frame_equal(e.values, again.values)
    if family != "prevalence":
        # the raw output is the members' mean log-odds; calibration maps it monotonically
        order = np.argsort(e.raw)
        assert np.all(np.diff(model.predict_proba(test.X)[:, 1][order]) >= -0.15)


def test_lightgbm_categorical_features_are_explained():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"arm": pd.Categorical(rng.choice(["ketamine_iv", "esketamine_in", "placebo"], 400)),
                      "bmi": rng.normal(28, 5, 400)})
    y = ((X["arm"] != "placebo") & (rng.random(400) < 0.7) | (rng.random(400) < 0.2)).astype(int).to_numpy()
    model = Pipeline([("select", SelectColumns(("arm", "bmi"))),
                      ("model", LGBMClassifier(n_estimators=30, num_leaves=4, verbose=-1, n_jobs=1))]).fit(X, y)
    e = explain(model, X, X)
    np.testing.assert_allclose(e.values.sum(axis=1).to_numpy() + e.base, e.raw, atol=1e-9)
    assert e.values["arm"].abs().mean() > e.values["bmi"].abs().mean()


def test_transformed_columns_map_back_to_their_feature():
    assert source_feature("missingindicator_log_crp") == "log_crp"
    assert source_feature("bmi_kg_m2:active") == "bmi_kg_m2"
    assert source_feature("missingindicator_log_crp:active") == "log_crp"
    assert source_feature("inflammation_composite") == "inflammation_composite"
