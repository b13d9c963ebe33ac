"""Riley et al. 2020 minimum sample size, and the parameters a model really estimates."""

import dataclasses
import math
from statistics import NormalDist

import numpy as np
import pytest

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.models.families import get_family
from ketamine_response.pipelines.config import ConfigError, EvaluationConfig, load_config
from ketamine_response.pipelines.evaluation.sample_size import (
    assess,
    c_to_r2_cs,
    count_parameters,
    interaction_sample_size,
    max_r2_cs,
    r2_cox_snell,
    riley_minimum,
    riley_minimum_continuous,
)
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
    size = assess(data, ("prevalence", "elastic_net"), np.full(len(data.y), data.y.mean()), EvaluationConfig())
    assert size.below_minimum and size.note().startswith("WARNING") and "Riley" in size.note()
    assert size.metrics()["min_courses_riley"] > len(data.y)
    assert "C statistic 0.65" in size.r2_source and "nested cross-validated" in size.note()


def test_c_statistic_converts_as_pmsampsize_does():
    # pmsampsize's worked example (R docs; Python port RebeccaWhittle/pmsampsize tests/test_pmsampsize.py, test 2):
    # cstatistic = 0.89, 24 parameters, prevalence 0.174 -> 615 (shrinkage), 660 (optimism), 221 (overall risk)
    assert riley_minimum(24, 0.174, c_to_r2_cs(0.89, 0.174)) == {"shrinkage": 615, "optimism": 660, "overall_risk": 221}
    # a published pmsampsize run (cstatistic = 0.81, prevalence 0.18, seed 123) printed Cox-Snell R2 0.1818 and
    # n = 266; its simulation noise is about 0.001, so within 0.002
    assert c_to_r2_cs(0.81, 0.18) == pytest.approx(0.1818, abs=0.002)
    assert c_to_r2_cs(0.81, 0.18) == pytest.approx(c_to_r2_cs(0.81, 0.82), abs=1e-9)  # labels can be swapped
    assert c_to_r2_cs(0.5 + 1e-9, 0.3) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("c, prevalence", [(0.65, 0.4), (0.81, 0.77)])
def test_quadrature_is_the_limit_of_pmsampsizes_simulation(c, prevalence):
    """Riley, Van Calster & Collins 2021 as pmsampsize codes it: simulate, fit the calibration model, LR."""
    from sklearn.linear_model import LogisticRegression

    n, rng = 200_000, np.random.default_rng(123456)
    mu, events = math.sqrt(2) * NormalDist().inv_cdf(c), int(prevalence * n)
    lp = np.r_[rng.normal(mu, 1, events), rng.normal(0, 1, n - events)][:, None]
    y = np.r_[np.ones(events), np.zeros(n - events)]
    q = LogisticRegression(C=1e12).fit(lp, y).predict_proba(lp)[:, 1]
    gain = np.sum(y * np.log(q) + (1 - y) * np.log(1 - q)) - (events * math.log(prevalence) + (n - events) * math.log(1 - prevalence))
    assert c_to_r2_cs(c, prevalence) == pytest.approx(1 - math.exp(-2 * gain / n), abs=0.005)


def test_minimum_is_monotone_in_the_anticipated_c_and_ignores_the_cohorts_fit(data):
    grid = np.round(np.arange(0.52, 0.99, 0.01), 2)
    for prevalence in (0.1, 0.4, 0.77):
        minima = [max(riley_minimum(20, prevalence, c_to_r2_cs(c, prevalence)).values()) for c in grid]
        assert np.all(np.diff(minima) <= 0), prevalence
    families, config = ("prevalence", "elastic_net"), EvaluationConfig()
    flat = assess(data, families, np.full(len(data.y), data.y.mean()), config)
    perfect = assess(data, families, np.clip(data.y, 0.01, 0.99), config)
    assert flat.criteria == perfect.criteria and flat.r2_cs == perfect.r2_cs
    assert perfect.metrics()["nested_r2_cs"] > 0.5 > flat.metrics()["nested_r2_cs"]
    better = assess(data, families, np.full(len(data.y), data.y.mean()), dataclasses.replace(config, anticipated_c_statistic=0.75))
    assert better.minimum <= flat.minimum
    assert flat.metrics()["anticipated_c_statistic"] == 0.65
    assert flat.metrics()["anticipated_r2_cs"] == pytest.approx(c_to_r2_cs(0.65, float(data.y.mean())))


def test_interaction_sample_size_by_hand():
    # (1.959964 + 0.841621)^2 = 7.84887; phi 0.4: 0.24; delta 0.1, 1:1 allocation: 0.01 * 0.25
    assert interaction_sample_size(0.4, 0.10) == math.ceil(7.84887 * 0.24 / 0.0025) == 754
    # 2:1 allocation (e = 2/3): Var(T) = 2/9, so 9/8 times the 1:1 number
    assert interaction_sample_size(0.4, 0.10, 2 / 3) == math.ceil(7.84887 * 0.24 / (0.01 * 2 / 9)) == 848
    assert interaction_sample_size(0.5, 0.20) == math.ceil(7.84887 * 0.25 / 0.01) == 197


def test_roles_power_is_in_the_assessment(data):
    size = assess(data, ("prevalence",), np.full(len(data.y), data.y.mean()), EvaluationConfig())
    treated = (data.treatments != "placebo").mean()
    allocation = treated if 0 < treated < 1 else 0.5
    assert size.roles_minimum == interaction_sample_size(float(data.y.mean()), 0.10, allocation)
    assert size.roles_exploratory(size.roles_minimum - 1) and not size.roles_exploratory(size.roles_minimum)
    assert f"needs {size.roles_minimum} patients" in size.note() and size.metrics()["min_patients_roles"] == size.roles_minimum


@pytest.mark.parametrize("text, message", [
    ("evaluation: {anticipated_r2_cs: auto}", r"unknown key 'evaluation\.anticipated_r2_cs'; renamed: use anticipated_c_statistic"),
    ("evaluation: {anticipated_c_statistic: 0.5}", r"anticipated_c_statistic must be a C statistic \(AUROC\) between 0\.5 and 1"),
    ("evaluation: {anticipated_c_statistic: 1}", r"anticipated_c_statistic must be"),
    ("evaluation: {anticipated_c_statistic: true}", r"anticipated_c_statistic must be"),
    ("evaluation: {anticipated_r2: 0}", r"anticipated_r2 must be an R2 between 0 and 1"),
    ("evaluation: {anticipated_r2: auto}", r"anticipated_r2 must be an R2 between 0 and 1"),
    ("evaluation: {roles_interaction: 1.5}", r"roles_interaction must be a risk difference per SD between 0 and 1"),
])
def test_anticipated_performance_is_checked(tmp_path, text, message):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_shipped_configs_prespecify_the_anticipated_performance():
    for name in ("train", "train_small"):
        e = load_config(name).evaluation
        assert (e.anticipated_c_statistic, e.anticipated_r2, e.roles_interaction) == (0.65, 0.10, 0.10)


def test_continuous_minimum_comes_from_the_configs_r2(data):
    from ketamine_response.features.tasks import TASKS, TaskKind

    rng = np.random.default_rng(1)
    y = rng.normal(-40, 30, len(data.y))
    continuous = dataclasses.replace(data, y=y, task=TASKS[TaskKind.CONTINUOUS])
    config = EvaluationConfig(anticipated_r2=0.2)
    flat, fitted = (assess(continuous, ("mean",), oof, config) for oof in (np.full(len(y), y.mean()), y + rng.normal(0, 5, len(y))))
    assert fitted.criteria == flat.criteria and fitted.r2_cs == 0.2  # the fit does not move the minimum
    # pmsampsize's continuous example (RebeccaWhittle/pmsampsize test 4: R2 0.2, 25 parameters): 918, 401, 259
    assert riley_minimum_continuous(25, 0.2) == {"shrinkage": 918, "optimism": 401, "residual_variance": 259}
    assert fitted.metrics()["nested_r2"] > 0.9 and "anticipated_c_statistic" not in fitted.metrics()
    assert fitted.roles_minimum == 0 and "interaction" not in fitted.note()
