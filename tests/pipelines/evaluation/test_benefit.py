"""c-for-benefit, calibration-for-benefit and crossover summaries on hand-made data with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from ketamine_response.pipelines.evaluation.benefit import (
    c_for_benefit,
    c_for_benefit_ci,
    calibration_for_benefit,
    matched_pairs,
)
from ketamine_response.pipelines.evaluation.crossover import crossover, newcombe_paired


def _trial(n: int, seed: int, informative: bool):
    rng = np.random.default_rng(seed)
    benefit = rng.uniform(-0.2, 0.6, n)
    treated = (rng.random(n) < 0.6).astype(float)
    p = 0.2 + treated * benefit
    y = (rng.random(n) < p).astype(float)
    predicted = benefit if informative else rng.uniform(-0.2, 0.6, n)
    return predicted, y, treated


def test_matched_pairs_pair_every_course_of_the_smaller_arm():
    predicted, y, treated = _trial(300, 1, True)
    pair_predicted, observed = matched_pairs(predicted, y, treated)
    assert len(pair_predicted) == min(treated.sum(), (1 - treated).sum())
    assert set(np.unique(observed)) <= {-1.0, 0.0, 1.0}


def test_c_for_benefit_is_high_for_true_benefit_and_chance_for_noise():
    informative = [c_for_benefit(*_trial(2000, s, True)) for s in range(5)]
    noise = [c_for_benefit(*_trial(2000, s, False)) for s in range(5)]
    assert min(informative) > 0.6
    assert abs(np.mean(noise) - 0.5) < 0.03


def test_c_for_benefit_interval_covers_its_point():
    predicted, y, treated = _trial(400, 2, True)
    c, low, high = c_for_benefit_ci(predicted, y, treated, np.arange(len(y)).astype(str), 100, 0)
    assert low <= c <= high and high - low < 0.3


def test_calibration_for_benefit_tracks_the_truth():
    predicted, y, treated = _trial(20_000, 3, True)
    table = calibration_for_benefit(predicted, y, treated, groups=5)
    assert list(table["group"]) == [1, 2, 3, 4, 5]
    assert table["n_drug"].sum() + table["n_placebo"].sum() == len(y)
    np.testing.assert_allclose(table["observed_benefit"], table["predicted_benefit"], atol=0.05)
    assert (table["observed_ci_low"] < table["observed_benefit"]).all()


def test_crossover_counts_within_patient_differences():
    patients = np.array(["a", "a", "b", "b", "c", "c", "d"])
    treated = np.array([1, 0, 1, 0, 0, 1, 1], dtype=float)
    y = np.array([1, 0, 1, 1, 1, 0, 1], dtype=float)
    benefit = np.array([0.5, 0.5, 0.1, 0.1, -0.2, -0.2, 0.3])
    x = crossover(benefit, y, treated, patients)
    assert x.patients == 3  # d had one course only
    assert (x.better_on_drug, x.same, x.better_on_placebo) == (1, 1, 1)
    assert x.mean_difference == pytest.approx(0.0)
    assert np.isnan(x.c_for_benefit)  # 3 patients rank nothing worth showing
    many = crossover(np.tile(benefit[:6], 4), np.tile(y[:6], 4), np.tile(treated[:6], 4),
                     np.array([f"{p}{k}" for k in range(4) for p in patients[:6]]))
    assert many.patients == 12 and many.c_for_benefit == pytest.approx(1.0)  # a > b > c, predicted and observed


def test_crossover_without_pairs_reports_zero_patients():
    x = crossover(np.zeros(3), np.ones(3), np.array([1.0, 0.0, 1.0]), np.array(["a", "b", "c"]))
    assert x.patients == 0 and np.isnan(x.mean_difference)


def test_crossover_period_effect_is_tested_exactly():
    """Mainland-Gart: a pure period effect (everyone better in period 2) is no drug effect."""
    patients = np.repeat([f"p{i}" for i in range(8)], 2)
    drug_first = np.arange(8) < 4
    period = np.tile([1, 2], 8)
    treated = np.where(np.repeat(drug_first, 2), period == 1, period == 2).astype(float)
    y = np.where(period == 2, 1.0, 0.0)  # pure period effect, no drug effect
    x = crossover(np.zeros(16), y, treated, patients, period.astype(float))
    assert (x.drug_first, x.placebo_first) == (4, 4) and x.mean_difference == pytest.approx(0.0)
    assert x.period_adjusted_p == pytest.approx(1.0)  # the second period better in both sequences: no drug effect
    drug_better = np.where(treated == 1, 1.0, 0.0)  # a pure drug effect: the drug's period better in both sequences
    assert crossover(np.zeros(16), drug_better, treated, patients, period.astype(float)).period_adjusted_p == (
        pytest.approx(0.02857, abs=1e-4))  # Fisher exact of [[4, 0], [0, 4]]
    assert np.isnan(crossover(np.zeros(16), y, treated, patients).period_adjusted_p)  # periods unknown: no such test


def test_crossover_few_discordant_patients_get_exact_figures():
    """ds005917's day-2 response: 4 patients better on the drug, none on placebo, 27 the same."""
    patients = np.repeat([f"p{i}" for i in range(31)], 2)
    treated = np.tile([1.0, 0.0], 31)
    y = np.zeros(62)
    y[0:8:2] = 1  # four drug courses respond, their placebo courses do not
    x = crossover(np.zeros(62), y, treated, patients)
    assert (x.better_on_drug, x.same, x.better_on_placebo) == (4, 27, 0)
    assert x.p_exact == pytest.approx(0.125)  # 2 x 0.5^4: a Wald interval excluding 0 overclaimed
    assert x.ci_low < 0 < x.ci_high and x.mean_difference == pytest.approx(4 / 31)


def test_newcombe_paired_interval_matches_the_published_example():
    # Bentur et al. 2009 (Fagerland, Lydersen & Laake, chapter 8): -0.286 (-0.507 to -0.026)
    diff, low, high = newcombe_paired(1, 1, 7, 12)
    assert (round(diff, 3), round(low, 3), round(high, 3)) == (-0.286, -0.507, -0.026)


def test_calibration_interval_is_not_degenerate_at_zero_or_one():
    table = calibration_for_benefit(np.linspace(0, 1, 40), np.r_[np.ones(20), np.zeros(20)],
                                    np.tile([1.0, 0.0], 20), groups=2)
    assert (table["observed_ci_high"] > table["observed_ci_low"]).all()
    assert (table["observed_ci_low"] >= -1).all() and (table["observed_ci_high"] <= 1).all()
