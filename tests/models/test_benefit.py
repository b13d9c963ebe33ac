"""Contract suite of the benefit-learner registry: every learner fits, predicts a bounded benefit,
is deterministic for a seed, survives pickling (the logged model) and ranks true benefit."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.stats import spearmanr

from ketamine_response.models.benefit import LEARNERS, CalibratedBenefit, get_learner, with_arm
from ketamine_response.models.benefit_estimators import forget_fits
from tests.models.conftest import E


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
