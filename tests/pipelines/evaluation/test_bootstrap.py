"""The fast patient bootstrap gives the numbers of the plain one: the same resamples, and each resample's metrics
bit-identical to computing them on the resampled arrays (so every CI is unchanged)."""

import numpy as np
import pandas as pd
import pytest

from ketamine_response.pipelines.evaluation.metrics import (
    CI_METRICS,
    averaged,
    bootstrap_ci,
    percentile_interval,
    resampled_metrics,
)
from ketamine_response.pipelines.evaluation.resampling import patient_resamples
from ketamine_response.pipelines.training.replicates import bootstrap_rows

RNG = np.random.default_rng(11)
N = 400
Y = (RNG.random(N) < 0.4).astype(float)
PATIENTS = RNG.integers(0, 260, N).astype(str)  # some patients with several courses
SPREAD = np.clip(RNG.beta(2, 3, (2, N)), 0.01, 0.99)


def _grouped_resamples(patients: np.ndarray, n_boot: int, seed: int) -> list[np.ndarray]:
    """The resamples as first written: pandas groups, one piece per drawn patient."""
    rng = np.random.default_rng(seed)
    codes = np.unique(patients, return_inverse=True)[1]
    rows_of = pd.Series(np.arange(len(patients))).groupby(codes).apply(np.asarray).to_list()
    return [np.concatenate([rows_of[i] for i in rng.integers(0, len(rows_of), len(rows_of))]) for _ in range(n_boot)]


def _plain_ci(y, p, patients, threshold, n_boot, seed):
    """Every metric computed on each resample's arrays, averaged over the repeats."""
    t = np.broadcast_to(np.asarray(threshold, dtype=float), y.shape)
    draws = {m: [] for m in CI_METRICS}
    for pick in patient_resamples(patients, n_boot, seed):
        values = averaged(resampled_metrics, y[pick], np.atleast_2d(p)[:, pick], t[pick])
        for m in CI_METRICS:
            draws[m].append(values[m])
    return {m: percentile_interval(np.asarray(v)) for m, v in draws.items()}


@pytest.mark.parametrize("patients", [PATIENTS, np.arange(N).astype(str)], ids=["repeated", "one_each"])
def test_resamples_are_the_grouped_ones(patients):
    for fast, grouped in zip(patient_resamples(patients, 30, 5), _grouped_resamples(patients, 30, 5)):
        assert np.array_equal(fast, grouped)


PREDICTIONS = {
    "two_repeats": (SPREAD, 0.4),
    "per_course_threshold": (SPREAD[0], RNG.random(N)),
    "ties_across_classes": (np.round(SPREAD, 2), 0.4),
    "few_values": (RNG.choice([0.2, 0.35, 0.5], (3, N)), 0.3),  # an arm-only model
    "ties_within_a_class": (np.where(Y == 1, 0.7, 0.3) + np.round(SPREAD[:1], 1) * 0.01, 0.5),
    "constant": (np.full((2, N), 0.4), 0.4),
    "missing": (np.where(np.arange(N) < 3, np.nan, SPREAD), 0.4),
}


@pytest.mark.parametrize("name", PREDICTIONS)
def test_bootstrap_ci_is_bit_identical_to_the_plain_one(name):
    p, threshold = PREDICTIONS[name]
    fast, plain = bootstrap_ci(Y, p, PATIENTS, threshold, 60, 3), _plain_ci(Y, p, PATIENTS, threshold, 60, 3)
    assert fast.keys() == plain.keys()
    for metric, interval in plain.items():
        np.testing.assert_array_equal(fast[metric], interval, err_msg=metric)  # NaN equals NaN here


def test_replicate_rows_unchanged():
    """The final fit's replicates draw the same courses as before (patients numbered by first appearance)."""
    def first_written(patients, rng):
        codes, uniques = pd.factorize(pd.Series(patients))
        order, counts = np.argsort(codes, kind="stable"), np.bincount(codes, minlength=len(uniques))
        starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
        return np.concatenate([order[starts[d]:starts[d] + counts[d]] for d in rng.integers(0, len(uniques), len(uniques))])

    for seed in range(5):
        assert np.array_equal(bootstrap_rows(PATIENTS, np.random.default_rng(seed)),
                              first_written(PATIENTS, np.random.default_rng(seed)))
