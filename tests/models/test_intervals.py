"""The interval and percentile arithmetic of models/intervals.py, on numbers whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from ketamine_response.models.intervals import (
    grids_by_arm,
    percentile,
    probability_bounds,
    quantile_grid,
    value_bounds,
    z_of,
)


def test_probability_bounds_are_the_logit_normal_interval_and_always_hold_p():
    rng = np.random.default_rng(0)
    p = np.array([0.5, 0.1, 0.97, 1.0, 0.0, np.nan])
    replicates = np.clip(p + rng.normal(0, 0.03, (20, len(p))), 0, 1)
    low, high = probability_bounds(p, replicates, 0.90)
    finite = ~np.isnan(p)
    assert (low[finite] <= p[finite]).all() and (p[finite] <= high[finite]).all()
    assert np.isnan(low[~finite]).all() and np.isnan(high[~finite]).all()
    # the first course by hand: logit(0.5) = 0, so the bounds are expit(-/+ z * SD of the replicates' logits)
    logits = np.log(replicates[:, 0] / (1 - replicates[:, 0]))
    half = z_of(0.90, 20) * logits.std(ddof=1)
    assert low[0] == pytest.approx(1 / (1 + np.exp(half))) and high[0] == pytest.approx(1 / (1 + np.exp(-half)))
    assert z_of(0.90) == pytest.approx(1.6449, abs=1e-4) and z_of(0.90, 20) == pytest.approx(1.7291, abs=1e-4)


def test_more_spread_gives_a_wider_interval_and_value_bounds_are_symmetric():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, (30, 1))
    p = np.array([0.3])
    narrow = probability_bounds(p, 0.3 + 0.01 * noise, 0.9)
    wide = probability_bounds(p, 0.3 + 0.05 * noise, 0.9)
    assert wide[1] - wide[0] > 4 * (narrow[1] - narrow[0])
    low, high = value_bounds(np.array([0.1]), 0.1 + 0.02 * noise, 0.9)
    half = z_of(0.9, 30) * 0.02 * noise.std(ddof=1)
    assert (0.1 - low[0]) == pytest.approx(half) and (high[0] - 0.1) == pytest.approx(half)


def test_percentiles_run_1_to_99_and_never_fall_as_the_probability_rises():
    rng = np.random.default_rng(2)
    values = rng.beta(2, 5, 1000)
    grid = quantile_grid(values)
    assert grid.shape == (99,)  # 1st to 99th: never the minimum or maximum course's own prediction
    assert values.min() < grid[0] and grid[-1] < values.max()
    scored = np.sort(np.concatenate([rng.uniform(0, 1, 500), [0.0, 1.0, grid[0], grid[49], grid[-1]]]))
    pct = percentile(scored, grid)
    assert (pct >= 1).all() and (pct <= 99).all() and (np.diff(pct) >= 0).all()
    assert percentile(np.array([grid[49]]), grid)[0] == pytest.approx(50)
    assert percentile(np.array([-1.0, 2.0, np.nan]), grid).tolist()[:2] == [1.0, 99.0]


def test_an_older_models_101_point_grid_still_reads_0_to_100():
    old = np.percentile(np.linspace(0, 1, 500), np.linspace(0, 100, 101))
    assert percentile(np.array([0.5, -1.0, 2.0]), old).tolist() == pytest.approx([50.0, 0.0, 100.0])


def test_a_run_of_equal_grid_points_gives_its_middle():
    """An arm-only model gives every course of an arm one probability: the percentile is the middle, 50."""
    grid = quantile_grid(np.full(200, 0.2))
    assert percentile(np.array([0.2, 0.1, 0.3]), grid).tolist() == [50.0, 1.0, 99.0]
    half = quantile_grid(np.r_[np.full(100, 0.2), np.full(100, 0.6)])
    below, tie, above = percentile(np.array([0.19, 0.2, 0.21]), half)
    assert below <= tie <= above and 0 < tie < 50


def test_an_arm_with_fewer_than_100_training_courses_gets_no_grid():
    values = np.linspace(0, 1, 200)
    arms = np.array(["placebo"] * 100 + ["ketamine_iv"] * 99 + ["esketamine_in"])
    grids = grids_by_arm(values, arms)
    assert set(grids) == {"placebo"} and grids["placebo"].shape == (99,)


def test_the_between_site_sd_finds_planted_site_shifts_and_none_without_them():
    from ketamine_response.models.intervals import between_site_sd

    rng = np.random.default_rng(4)
    sites = np.repeat(np.arange(12), 400)
    p = rng.uniform(0.1, 0.6, sites.size)
    shift = rng.normal(0, 0.4, 12)[sites]
    shifted = rng.random(sites.size) < 1 / (1 + np.exp(-(np.log(p / (1 - p)) + shift)))
    assert between_site_sd(p, shifted.astype(float), sites) == pytest.approx(0.4, abs=0.15)
    plain = (rng.random(sites.size) < p).astype(float)
    assert between_site_sd(p, plain, sites) < 0.1
    assert between_site_sd(p, plain, sites % 2) == 0.0  # two sites: no estimate


def test_fills_are_interior_quantiles_never_a_course_value():
    import pandas as pd

    from ketamine_response.models.intervals import replicate_fills

    X = pd.DataFrame({"crp": np.r_[np.arange(100.0), [np.nan] * 20], "rare": [1.0] * 10 + [np.nan] * 110})
    fills = replicate_fills(X, 20, np.random.default_rng(5))
    assert set(fills) == {"crp"}  # fewer than 50 observed values: no fills
    assert sorted(fills["crp"]) == pytest.approx(np.percentile(np.arange(100.0), 2.5 + 5 * np.arange(20)))
    assert fills["crp"].min() > 0 and fills["crp"].max() < 99
