"""Tier-2 transformers honour scikit-learn's contract and learn only from the fold they are fit on."""

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from ketamine_response.features.transformers import ActiveArmInteractions, LinearTier, SelectColumns, Winsorizer, ZScoreComposite

NUMERIC = [Winsorizer(), ZScoreComposite()]


@parametrize_with_checks(NUMERIC)
def test_sklearn_contract(estimator, check):
    check(estimator)


PANDAS_ONLY = [SelectColumns(("y",)), ActiveArmInteractions(("arm_ketamine_iv",)), LinearTier(("arm_ketamine_iv", "x", "y"), ("x", "y"))]


@pytest.mark.parametrize("transformer", NUMERIC + PANDAS_ONLY, ids=lambda t: type(t).__name__)
def test_pandas_output_and_names(transformer):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"arm_ketamine_iv": np.repeat([0.0, 1.0], 20), "x": rng.normal(size=40),
                      "y": rng.normal(size=40)})
    out = transformer.set_output(transform="pandas").fit(X).transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == list(transformer.get_feature_names_out())
    assert len(out) == len(X)


def test_winsorizer_uses_training_cutoffs_only():
    train = pd.DataFrame({"crp": np.arange(101, dtype=float)})
    w = Winsorizer(0.05, 0.95).fit(train)
    out = w.transform(pd.DataFrame({"crp": [-50.0, 50.0, 1000.0, np.nan]}))
    assert out[:, 0][:3].tolist() == [5.0, 50.0, 95.0]
    assert np.isnan(out[3, 0])
    with pytest.raises(ValueError, match="need 0 <= lower < upper <= 1"):
        Winsorizer(0.9, 0.1).fit(train)


def test_composite_is_mean_of_training_z_scores():
    train = pd.DataFrame({"log_il6": [0.0, 2.0], "log_crp": [10.0, 30.0], "age": [1.0, 2.0]})
    comp = ZScoreComposite(columns=["log_il6", "log_crp"], name="inflammation_composite").fit(train)
    test = pd.DataFrame({"log_il6": [2.0, np.nan, np.nan], "log_crp": [10.0, 30.0, np.nan], "age": [5.0, 5.0, 5.0]})
    out = comp.set_output(transform="pandas").transform(test)
    assert out["inflammation_composite"].iloc[0] == pytest.approx(0.0)  # (+1 + -1) / 2
    assert out["inflammation_composite"].iloc[1] == pytest.approx(1.0)  # only CRP observed
    assert np.isnan(out["inflammation_composite"].iloc[2])
    with pytest.raises(ValueError, match=r"columns \['tnf'\] are not in the input"):
        ZScoreComposite(columns=["tnf"]).fit(train)


def test_interactions_are_centred_on_the_training_fold():
    train = pd.DataFrame({"arm_ketamine_iv": np.tile([0.0, 1.0], 20), "age": np.arange(20.0, 60.0),
                          "rare_flag": np.r_[np.ones(35), np.zeros(5)]})
    step = ActiveArmInteractions(("arm_ketamine_iv",)).fit(train)
    assert step.modified_ == ["age"]  # a flag set in 5 courses cannot carry an estimable modifier
    assert step.centre_.tolist() == [39.5]
    test = pd.DataFrame({"arm_ketamine_iv": [1.0, 0.0], "age": [39.5, 80.0], "rare_flag": [1.0, 0.0]})
    # at the training mean the modifier term is 0, and placebo courses carry none
    assert step.transform(test)[:, 3].tolist() == [0.0, 0.0]
    # so x:active no longer tracks the arm indicator itself
    rng = np.random.default_rng(0)
    big = pd.DataFrame({"arm_ketamine_iv": rng.integers(0, 2, 2000).astype(float), "age": rng.normal(45, 12, 2000)})
    out = ActiveArmInteractions(("arm_ketamine_iv",)).fit(big).transform(big)
    assert abs(np.corrcoef(out[:, 0], out[:, 2])[0, 1]) < 0.1
    reordered = ActiveArmInteractions(("arm_ketamine_iv",)).fit(big).transform(big[["age", "arm_ketamine_iv"]])
    np.testing.assert_array_equal(reordered, out)  # columns are taken by name, as fitted


def _steps(columns: tuple[str, ...], markers: tuple[str, ...]) -> Pipeline:
    """The tier as the pipeline of its separate steps, each with pandas output: what LinearTier stands for."""
    steps: list = [("select", SelectColumns(columns)), ("winsorize", Winsorizer())]
    if markers:
        steps.append(("inflammation", ZScoreComposite(list(markers), name="inflammation_composite")))
    steps += [("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
              ("interact", ActiveArmInteractions()), ("scale", StandardScaler())]
    return Pipeline(steps).set_output(transform="pandas")


@pytest.mark.parametrize("markers", [(), ("log_il6", "log_crp")])
def test_the_linear_tier_is_its_steps_in_one(markers):
    rng = np.random.default_rng(3)
    n = 200
    X = pd.DataFrame({"arm_ketamine_iv": rng.integers(0, 2, n).astype(float), "age": rng.normal(45, 12, n),
                      "log_il6": rng.normal(size=n), "log_crp": rng.normal(size=n), "flag": rng.integers(0, 2, n) * 1.0,
                      "empty": np.nan, "unused": rng.normal(size=n)}, index=np.arange(100, 100 + n))
    for column, share in (("log_il6", 0.3), ("log_crp", 0.1), ("age", 0.05)):
        X.loc[rng.random(n) < share, column] = np.nan
    columns = ("arm_ketamine_iv", "age", "log_il6", "log_crp", "flag", "empty")
    train, test = X.iloc[:150], X.iloc[150:]
    tier = LinearTier(columns, markers, "inflammation_composite").set_output(transform="pandas")
    expected, got = _steps(columns, markers).fit_transform(train), tier.fit_transform(train)
    assert list(got.columns) == list(expected.columns) and (got.index == train.index).all()
    assert "missingindicator_log_il6:active" in got.columns and ("inflammation_composite" in got) == bool(markers)
    sources = dict(zip(got.columns, tier.sources_out_, strict=True))
    assert sources["missingindicator_log_il6:active"] == sources["log_il6:active"] == "log_il6"
    assert all(sources[c] == c for c in columns)
    if markers:  # made from the markers, but none of them alone: dropping one remakes it from the others
        assert sources["inflammation_composite"] == "inflammation_composite"
    np.testing.assert_array_equal(got.to_numpy(), expected.to_numpy())
    np.testing.assert_array_equal(tier.transform(test).to_numpy(), _steps(columns, markers).fit(train).transform(test).to_numpy())
    with pytest.raises(ValueError, match=r"columns \['age'\] are not in the feature table"):
        tier.transform(test.drop(columns="age"))
    with pytest.raises(ValueError, match=r"composite markers \['log_tnf_alpha'\] are not in its columns"):
        LinearTier(columns, ("log_il6", "log_tnf_alpha")).fit(train)
