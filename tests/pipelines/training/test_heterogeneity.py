"""Benefit on the absolute scale where the truth is known: DRTester's BLP finds planted heterogeneity and
not a constant risk difference, and the roles table calls the planted modifiers (and nothing under a
constant risk difference) on the absolute scale."""

from __future__ import annotations

import numpy as np
import pytest
from joblib import Parallel

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.pipelines.config import load_config
from ketamine_response.pipelines.flows.train import build_training_data
from ketamine_response.pipelines.training.benefit import comparisons
from ketamine_response.pipelines.training.heterogeneity import assess_heterogeneity
from ketamine_response.pipelines.training.nested import run_nested
from ketamine_response.pipelines.training.procedure import estimate_benefit
from ketamine_response.pipelines.training.progress import Progress
from tests.pipelines.conftest import FAST_CONFIG

MODIFIERS = {"family_history_aud", "bmi_kg_m2", "benzodiazepine", "bdnf_met_carrier"}
PROXIES = {"bdnf_met_alleles", "obese"}  # share a modifier's source column: tested with it as one group


def _comparison(scenario: str, seed: int):
    cohort, oracle = build_cohort(1400, seed, scenario)
    data = build_training_data(validate_table(cohort, scenario), "response_24h", load_config(FAST_CONFIG), False)[0]
    c = comparisons(data)[0][0]
    truth = oracle.iloc[data.X.index - 1]["benefit_24h_ketamine_iv"].to_numpy()[c.rows]
    return data.take(c.rows), c.treated, truth


def test_blp_recovers_the_true_benefit_and_gives_nothing_for_a_constant_one():
    data, treated, truth = _comparison("benefit", 3)
    e = np.full(len(treated), treated.mean())
    one_fold = np.zeros((1, len(truth)), int)
    found = assess_heterogeneity(data, treated, e, truth[None, :], one_fold, 1)
    assert found.blp_p < 0.001 and 0.7 < found.blp_slope < 1.3  # the oracle's benefit is calibrated
    assert found.qini - 1.96 * found.qini_se > 0
    assert abs(found.scores.mean() - truth.mean()) < 0.06  # DR scores average to the average benefit
    flat = assess_heterogeneity(data, treated, e, np.full((1, len(treated)), truth.mean()), one_fold, 1)
    assert np.isnan(flat.blp_p) and np.isnan(flat.qini)  # nothing to test: no number


@pytest.mark.parametrize(("scenario", "seed"), [("benefit", 3), ("constant_risk_difference", 4)])
def test_absolute_roles_where_the_truth_is_known(scenario, seed):
    config = load_config(FAST_CONFIG)
    cohort, _ = build_cohort(1400, seed, scenario)
    data, built, _ = build_training_data(validate_table(cohort, scenario), "response_24h", config, False)
    with Parallel(n_jobs=1) as parallel:
        folds = run_nested(data, config, parallel, explain=False)
    benefit, _ = estimate_benefit(data, folds, built, config, None, Progress())
    roles = benefit.roles.set_index("feature")
    called = set(roles.index[roles["role_absolute"] == "predictive"])
    if scenario == "benefit":
        assert len(called & MODIFIERS) >= 2 and not called - MODIFIERS - PROXIES
        assert benefit.primary.heterogeneity.blp_p < 0.05
    else:  # every patient gains +0.25: nothing modifies the absolute effect, however prognostic
        assert not called, roles.loc[sorted(called), ["absolute_interaction", "absolute_interaction_q"]]
        # the log-odds scale may call it an interaction ("both"): a constant risk difference is not a constant
        # odds ratio; the absolute scale, the one that says who gains more, does not
        assert roles.loc["n_failed_treatments", "role_absolute"] == "none"
    assert (roles["n_courses"] == roles["n_courses"].max()).all()  # every course counts for every feature
