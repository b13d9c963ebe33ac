"""Benefit on the absolute scale where the truth is known: DRTester's BLP finds planted heterogeneity and
not a constant risk difference. (The roles table's absolute scale on the same scenarios is checked in
``test_benefit_suite``, on the benefit model each of its scenarios estimates once.)"""

from __future__ import annotations

import numpy as np

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.pipelines.config import load_config
from ketamine_response.pipelines.flows.train import build_training_data
from ketamine_response.pipelines.training.benefit import comparisons
from ketamine_response.pipelines.training.heterogeneity import assess_heterogeneity
from tests.pipelines.conftest import FAST_CONFIG


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
