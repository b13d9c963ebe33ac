"""Riley et al. 2020 minimum sample size, and the parameters a model really estimates."""

import numpy as np
import pytest

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.models.families import get_family
from ketamine_response.pipelines.config import load_config
from ketamine_response.pipelines.evaluation.sample_size import assess, count_parameters, max_r2_cs, r2_cox_snell, riley_minimum
from ketamine_response.pipelines.flows.train import build_training_data
from tests.pipelines.conftest import FAST_CONFIG


def test_riley_worked_example():
    # Riley et al. 2020 (Stat Med), binary example as pmsampsize reports it:
    # Cox-Snell R2 0.288, 24 parameters, prevalence 0.174 -> 623 (shrinkage), 662 (optimism), 221 (risk)
    assert riley_minimum(24, 0.174, 0.288) == {"shrinkage": 623, "optimism": 662, "overall_risk": 221}
    assert max_r2_cs(0.5) == pytest.approx(0.75)


def test_cox_snell_r2_is_zero_for_the_prevalence_and_positive_with_signal():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.3).astype(float)
    assert r2_cox_snell(y, np.full(len(y), y.mean())) == pytest.approx(0.0, abs=1e-12)
    informative = np.clip(0.3 + 0.4 * (y - 0.3) + rng.normal(0, 0.05, len(y)), 0.01, 0.99)
    assert r2_cox_snell(y, informative) > 0.05


@pytest.fixture(scope="module")
def data():
    cohort, _ = build_cohort(400, 2, "literature")
    config = load_config(FAST_CONFIG)
    return build_training_data(validate_table(cohort, "c"), "response_24h", config, False)[0]


def test_parameters_count_the_fitted_tier(data):
    families = ("prevalence", "elastic_net", "lightgbm")
    counted = count_parameters(data, families)
    head = get_family("elastic_net").pipeline(tuple(data.X.columns), data.domains, {}, 0)[:-1]
    matrix = np.asarray(head.fit_transform(data.X), dtype=float)
    assert counted >= int((np.nanstd(matrix, axis=0) > 0).sum())
    assert counted > data.X.shape[1]  # indicators, interactions and the composite count too


def test_small_cohort_is_flagged(data):
    size = assess(data, ("prevalence", "elastic_net"), np.full(len(data.y), data.y.mean()), "auto")
    assert size.below_minimum and size.note().startswith("WARNING") and "Riley" in size.note()
    assert size.metrics()["min_courses_riley"] > len(data.y)
    assert "fallback" in size.r2_source  # no signal in the nested estimate: Riley's conservative default
