"""The durability estimators on a planted exponential hazard: what they predict, their curves, their SHAP."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sksurv.nonparametric import kaplan_meier_estimator
from sksurv.util import Surv

from ketamine_response.features.tasks import TaskKind
from ketamine_response.models.explain import explain
from ketamine_response.models.families import FAMILIES, family_names
from ketamine_response.models.survival import KaplanMeierRelapse, median_days, relapse_free


@pytest.fixture(scope="module")
def planted() -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """600 courses, log hazard 0.7 x1 - 0.7 x2, censored at 84 days: features, label, true log hazard."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(600, 5)), columns=[f"x{i}" for i in range(5)])
    lp = 0.7 * X["x0"] - 0.7 * X["x1"]
    X.loc[::10, "x4"] = np.nan  # imputed inside the pipeline, as cohort features are
    X["arm_ketamine_iv"] = (rng.random(600) < 0.6).astype(float)  # the linear families' arm interactions read it
    time = rng.exponential(30 * np.exp(-lp))
    censor = np.minimum(84, rng.exponential(150, 600))
    return X, Surv.from_arrays(time <= censor, np.minimum(time, censor)), lp.to_numpy()


@pytest.mark.parametrize("family", family_names(TaskKind.SURVIVAL))
def test_every_family_predicts_a_28_day_risk_its_curves_agree_with(family, planted):
    X, y, lp = planted
    spec = FAMILIES[family]
    model = spec.pipeline(tuple(X.columns), dict.fromkeys(X.columns, "clinical"), spec.candidates(1, 0)[0], 0).fit(X, y)
    risk = model.predict(X)
    curves = relapse_free(model, X, (28, 56))
    np.testing.assert_allclose(risk, 1 - curves[:, 0])
    assert ((risk >= 0) & (risk <= 1)).all() and (curves[:, 1] <= curves[:, 0] + 1e-12).all()
    if spec.explainer == "constant":
        assert np.ptp(risk) == 0
        return
    # ranks like the planted hazard, and SHAP adds up to the log hazard it explains
    assert np.corrcoef(risk, lp)[0, 1] > 0.7
    explained = explain(model, family, X, X)
    np.testing.assert_allclose(explained.values.sum(axis=1) + explained.base, explained.raw, atol=1e-8)


def test_kaplan_meier_floor_is_the_kaplan_meier_curve(planted):
    X, y, _ = planted
    times, curve = kaplan_meier_estimator(y["event"], y["time"])
    model = KaplanMeierRelapse().fit(X, y)
    at_28 = curve[np.searchsorted(times, 28, side="right") - 1]
    np.testing.assert_allclose(model.predict(X.head(3)), 1 - at_28)


def test_median_is_empty_when_not_reached_in_follow_up():
    rng = np.random.default_rng(1)
    X = pd.DataFrame({"x0": rng.normal(size=200)})
    time = rng.exponential(1000, 200)  # hardly anyone relapses within 84 days
    y = Surv.from_arrays(time <= 84, np.minimum(time, 84))
    spec = FAMILIES["kaplan_meier"]
    model = spec.pipeline(("x0",), {"x0": "clinical"}, {}, 0).fit(X, y)
    assert np.isnan(median_days(model, X.head(2))).all()
    short = Surv.from_arrays(np.ones(200, bool), rng.exponential(10, 200))
    fitted = spec.pipeline(("x0",), {"x0": "clinical"}, {}, 0).fit(X, short)
    assert 3 < median_days(fitted, X.head(1))[0] < 12  # exponential with mean 10: median about 7


def test_a_course_as_if_given_another_arm_takes_its_route_and_standard_dose():
    from ketamine_response.models.benefit import with_arm

    X = pd.DataFrame({"arm_ketamine_iv": [1.0, 0.0, 0.0], "arm_esketamine_in": [0.0, 1.0, 0.0],
                      "route_intranasal": [0.0, 1.0, 0.0], "dose_mg_per_kg": [1.0, np.nan, np.nan],
                      "dose_mg": [np.nan, 84.0, np.nan], "age": [30.0, 40.0, 50.0]})
    iv = with_arm(X, "ketamine_iv")
    assert iv["dose_mg_per_kg"].tolist() == [1.0, 0.5, 0.5] and iv["dose_mg"].isna().all()  # own dose kept
    assert iv["route_intranasal"].tolist() == [0.0, 0.0, 0.0] and iv["arm_ketamine_iv"].tolist() == [1.0, 1.0, 1.0]
    placebo = with_arm(X, None)
    assert placebo[["dose_mg_per_kg", "dose_mg"]].isna().all().all()
    assert placebo["route_intranasal"].tolist() == [0.0, 1.0, 0.0]  # placebo keeps the course's route
    nasal = with_arm(X, "esketamine_in")
    assert nasal["dose_mg"].tolist() == [56.0, 84.0, 56.0] and nasal["route_intranasal"].tolist() == [1.0, 1.0, 1.0]
    assert (nasal["age"] == X["age"]).all()


def test_coxnet_curves_are_scikit_survivals_own_and_an_older_pickle_still_scores(planted):
    """The one Breslow baseline fitted at the chosen penalty gives the curves scikit-survival's
    ``fit_baseline_model`` gives there; a model pickled when ``model_`` carried those baselines still scores."""
    import pickle

    from sksurv.linear_model import CoxnetSurvivalAnalysis

    from ketamine_response.models.survival import CoxnetRelapse

    X, y, _ = planted
    X = X.fillna(0.0).to_numpy()
    model = CoxnetRelapse(alpha=0.02).fit(X, y)
    stock = CoxnetSurvivalAnalysis(alphas=model.model_.alphas_, l1_ratio=model.l1_ratio, fit_baseline_model=True,
                                   max_iter=100_000).fit(X, y)
    expected = stock.predict_survival_function(X, alpha=model.alpha_, return_array=True)
    np.testing.assert_array_equal(model.times_, stock.unique_times_)
    np.testing.assert_allclose(model.survival(X, tuple(model.times_)), expected, rtol=0, atol=1e-12)
    old = {k: v for k, v in model.__dict__.items() if k != "baseline_"} | {"model_": stock}
    older = CoxnetRelapse.__new__(CoxnetRelapse)
    older.__dict__.update(old)
    revived = pickle.loads(pickle.dumps(older))
    np.testing.assert_allclose(revived.survival(X, tuple(model.times_)), expected, rtol=0, atol=1e-12)
