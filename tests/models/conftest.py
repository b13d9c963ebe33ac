"""One drug-versus-placebo comparison of the benefit scenario, shared by the benefit-learner and benefit-SHAP tests."""

from __future__ import annotations

import numpy as np
import pytest


def E(treated: np.ndarray) -> np.ndarray:
    """The allocation ratio as every course's propensity."""
    return np.full(len(treated), treated.mean())


@pytest.fixture(scope="module")
def comparison():
    """The IV-versus-placebo courses of 800 benefit-scenario courses, their drug indicator and the true benefit."""
    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.flows.train import build_training_data
    from ketamine_response.pipelines.training.benefit import comparisons

    cohort, oracle = build_cohort(800, 11, "benefit")
    data = build_training_data(validate_table(cohort, "benefit"), "response_24h", load_config(), False)[0]
    found, notes = comparisons(data)
    assert [c.arm for c in found] == ["ketamine_iv"] and notes == []  # no esketamine course has a 24 h visit
    c = found[0]
    truth = oracle.iloc[data.X.index - 1]["benefit_24h_ketamine_iv"].to_numpy()[c.rows]
    return data.take(c.rows), c.treated, truth
