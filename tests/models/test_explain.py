"""Explanation details beyond the family contract (tests/models/test_families.py): categorical
LightGBM inputs, and transformed columns mapped back to their dictionary feature."""

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier
from sklearn.pipeline import Pipeline

from ketamine_response.features.transformers import SelectColumns
from ketamine_response.models.explain import explain, source_feature


def test_lightgbm_categorical_features_are_explained():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"arm": pd.Categorical(rng.choice(["ketamine_iv", "esketamine_in", "placebo"], 400)),
                      "bmi": rng.normal(28, 5, 400)})
    y = ((X["arm"] != "placebo") & (rng.random(400) < 0.7) | (rng.random(400) < 0.2)).astype(int).to_numpy()
    model = Pipeline([("select", SelectColumns(("arm", "bmi"))),
                      ("model", LGBMClassifier(n_estimators=30, num_leaves=4, verbose=-1, n_jobs=1))]).fit(X, y)
    e = explain(model, "lightgbm", X, X)
    np.testing.assert_allclose(e.values.sum(axis=1).to_numpy() + e.base, e.raw, atol=1e-9)
    assert e.values["arm"].abs().mean() > e.values["bmi"].abs().mean()


def test_transformed_columns_map_back_to_their_feature():
    assert source_feature("missingindicator_log_crp") == "log_crp"
    assert source_feature("bmi_kg_m2:active") == "bmi_kg_m2"
    assert source_feature("missingindicator_log_crp:active") == "log_crp"
    assert source_feature("inflammation_composite") == "inflammation_composite"
