"""Contract suite of the benefit-learner registry: every learner fits, predicts a bounded benefit,
is deterministic for a seed, survives pickling (the logged model) and ranks true benefit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.stats import spearmanr

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.models.benefit import LEARNERS, CalibratedBenefit, get_learner, with_arm
from ketamine_response.models.benefit_estimators import forget_fits
from ketamine_response.models.benefit_explain import benefit_shap
from ketamine_response.pipelines.config import load_config
from ketamine_response.pipelines.flows.train import build_training_data
from ketamine_response.pipelines.training.benefit import comparisons


def E(treated: np.ndarray) -> np.ndarray:
    """The allocation ratio as every course's propensity."""
    return np.full(len(treated), treated.mean())


@pytest.fixture(scope="module")
def comparison():
    cohort, oracle = build_cohort(800, 11, "benefit")
    data = build_training_data(validate_table(cohort, "benefit"), "response_24h", load_config(), False)[0]
    found, notes = comparisons(data)
    assert [c.arm for c in found] == ["ketamine_iv"] and notes == []  # no esketamine course has a 24 h visit
    c = found[0]
    truth = oracle.iloc[data.X.index - 1]["benefit_24h_ketamine_iv"].to_numpy()[c.rows]
    return data.take(c.rows), c.treated, truth


@pytest.mark.parametrize("name", list(LEARNERS))
def test_learner_contract(name, comparison):
    data, treated, truth = comparison
    learner = get_learner(name)
    model = learner.fit(data.X, data.y, treated, "ketamine_iv", 3, E(treated), **learner.space[0])
    effect = model.effect(data.X)
    assert effect.shape == (len(data.y),) and np.all(np.isfinite(effect))
    assert np.all(np.abs(effect) <= 1)  # a difference of probabilities
    forget_fits()  # a refit, not the reused fit of the same inputs
    again = learner.fit(data.X, data.y, treated, "ketamine_iv", 3, E(treated), **learner.space[0]).effect(data.X)
    np.testing.assert_allclose(effect, again)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(model)).effect(data.X), effect)
    assert spearmanr(effect, truth)[0] > 0.4  # in-sample ranking of the planted truth
    both = model.probabilities(data.X)
    if both is not None:
        np.testing.assert_allclose(both[0] - both[1], effect)
        assert np.all((both[0] >= 0) & (both[0] <= 1) & (both[1] >= 0) & (both[1] <= 1))


def test_with_arm_sets_only_the_named_arm(comparison):
    data, _, _ = comparison
    drug, placebo = with_arm(data.X, "ketamine_iv"), with_arm(data.X, None)
    assert (drug["arm_ketamine_iv"] == 1).all() and (drug["arm_esketamine_in"] == 0).all()
    assert (placebo[["arm_ketamine_iv", "arm_esketamine_in"]] == 0).all().all()
    assert drug.drop(columns=["arm_ketamine_iv"]).equals(data.X.drop(columns=["arm_ketamine_iv"]))


def test_benefit_shap_ranks_the_planted_modifiers_first(comparison):
    data, treated, _ = comparison
    model = get_learner("s_learner").fit(data.X, data.y, treated, "ketamine_iv", 3, E(treated))
    importance = benefit_shap(model, data.X, seed=1)
    assert "arm_ketamine_iv" not in importance.index
    top = set(importance.sort_values(ascending=False).index[:4])
    assert len(top & {"family_history_aud", "bmi_kg_m2", "benzodiazepine", "bdnf_met_carrier"}) >= 3


def test_unknown_learner_is_named():
    with pytest.raises(ValueError, match="known: s_learner"):
        get_learner("r_forest")


def test_calibrated_benefit_rescales_and_keeps_the_ranking(comparison):
    data, treated, _ = comparison
    model = get_learner("t_learner").fit(data.X, data.y, treated, "ketamine_iv", 3, E(treated))
    raw = model.effect(data.X)
    half = CalibratedBenefit("ketamine_iv", model, 0.5, float(raw.mean()), 0.3)
    np.testing.assert_allclose(half.effect(data.X), 0.3 + 0.5 * (raw - raw.mean()))
    assert half.learner == "t_learner x 0.50" and half.probabilities(data.X) is None
    assert spearmanr(half.effect(data.X), raw)[0] == 1
