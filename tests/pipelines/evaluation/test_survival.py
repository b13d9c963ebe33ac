"""Durability metrics against their definitions, and Riley part II against the paper's worked example."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.util import Surv

from ketamine_response.pipelines.evaluation.sample_size import riley_minimum_survival
from ketamine_response.pipelines.evaluation.survival import (
    calibration_28d,
    harrell_c,
    km_at,
    partial_log_likelihood,
    survival_metrics,
)


@pytest.fixture(scope="module")
def planted():
    rng = np.random.default_rng(3)
    x = rng.normal(size=800)
    time = rng.exponential(30 * np.exp(-0.8 * x))
    censor = np.minimum(84, rng.exponential(120, 800))
    return x, Surv.from_arrays(time <= censor, np.round(np.minimum(time, censor)))


def test_harrell_c_counts_pairs_by_hand():
    y = Surv.from_arrays([True, True, False, True], [2.0, 5.0, 3.0, 8.0])
    # comparable pairs: (2 vs 5, 3, 8), (5 vs 8); a censored 3 against 5 and 8 is not comparable
    risk = np.array([0.9, 0.5, 0.1, 0.5])
    # 2: beats 5 (0.9 > 0.5), 3 (0.9 > 0.1), 8 (0.9 > 0.5); 5 vs 8: tied risk, one half
    assert harrell_c(y, risk) == pytest.approx(3.5 / 4)


def test_partial_likelihood_matches_a_cox_fit_and_ignores_constants(planted):
    x, y = planted
    beta = CoxPHSurvivalAnalysis(ties="breslow").fit(x[:, None], y).coef_[0]
    lp = beta * x
    p = 1 - np.exp(-np.exp(lp))  # log(-log(1 - p)) == lp
    best = partial_log_likelihood(y, p)
    assert best == pytest.approx(partial_log_likelihood(y, 1 - np.exp(-np.exp(lp - 1.3))), abs=1e-9)
    for worse in (0.5 * beta, 1.5 * beta, 0.0):  # the fitted coefficient maximises it
        assert partial_log_likelihood(y, 1 - np.exp(-np.exp(worse * x))) < best


def test_calibration_by_fifths_and_metrics_on_a_planted_hazard(planted):
    x, y = planted
    p = 1 - np.exp(-28 / 30 * np.exp(0.8 * x))  # the true 28-day relapse risk
    table = calibration_28d(y, p)
    assert table["n"].sum() == len(y) and len(table) == 5
    assert np.abs(table["predicted_relapse_28d"] - table["observed_relapse_28d"]).max() < 0.08
    m = survival_metrics(y, p)
    assert 0.65 < m["c_index"] < 0.8 and abs(m["uno_c"] - m["c_index"]) < 0.05 and m["calibration_28d_gap"] < 0.05
    assert m["auroc_28d"] > 0.65 and m["relapses"] == y["event"].sum()
    assert km_at(y, -1.0) == 1.0 and km_at(y, 28.0) == pytest.approx(1 - table["observed_relapse_28d"].mean(), abs=0.1)


def test_riley_part_ii_worked_example():
    """Riley et al. 2020 (Part II) time-to-event example, as pmsampsize prints it: R2_CS 0.051, 30 parameters,
    rate 0.065 per person-year, mean follow-up 2.07 years; criterion 1 needs 5,143."""
    criteria = riley_minimum_survival(30, 0.065, 2.07, 0.051, day=2.0)
    assert criteria["shrinkage"] == 5143
    assert criteria["optimism"] < criteria["shrinkage"] and criteria["risk_at_28_days"] < criteria["shrinkage"]
    assert math.isfinite(criteria["risk_at_28_days"])


def test_riley_part_ii_maximum_does_not_depend_on_the_time_unit():
    in_days = riley_minimum_survival(20, 0.02, 40.0, 0.1, day=28.0)
    in_weeks = riley_minimum_survival(20, 0.14, 40.0 / 7, 0.1, day=4.0)
    assert in_days == in_weeks
