"""Flexible calibration (loess curve; ICI, E50, E90) on simulated probabilities, computed for real."""

import numpy as np
import pytest

from ketamine_response.pipelines.evaluation.evaluate import evaluate
from ketamine_response.pipelines.evaluation.metrics import averaged, flexible_calibration


def _simulated(n: int = 20000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.05, 0.95, n)
    return rng.binomial(1, p).astype(float), p


def test_calibrated_probabilities_have_small_ici():
    y, p = _simulated()
    m = flexible_calibration(y, p)
    assert m["calibration_ici"] < 0.01
    assert m["calibration_e50"] <= m["calibration_e90"] <= m["calibration_emax"]


def test_distorted_probabilities_recover_the_known_gap():
    y, p = _simulated()
    distorted = p**0.5
    m = flexible_calibration(y, distorted)
    known = float(np.mean(np.abs(p - distorted)))
    assert m["calibration_ici"] > 0.1
    assert m["calibration_ici"] == pytest.approx(known, abs=0.01)
    assert m["calibration_e90"] == pytest.approx(float(np.percentile(np.abs(p - distorted), 90)), abs=0.02)


def test_constant_predictions_or_one_class_give_nan():
    y, p = _simulated(500)
    assert all(np.isnan(v) for v in flexible_calibration(y, np.full_like(p, 0.4)).values())
    assert all(np.isnan(v) for v in flexible_calibration(np.ones_like(y), p).values())


def test_repeats_are_averaged():
    y, p = _simulated(2000, seed=1)
    rows = np.vstack([p, np.clip(p * 1.2, 0.01, 0.99)])
    both = averaged(flexible_calibration, y, rows)
    singles = [flexible_calibration(y, row) for row in rows]
    for key, value in both.items():
        assert value == pytest.approx((singles[0][key] + singles[1][key]) / 2, rel=1e-12)


def test_evaluation_carries_the_metrics():
    y, p = _simulated(400, seed=2)
    ev = evaluate(y, np.vstack([p, p**0.8]), np.arange(len(y)).astype(str), {}, 0.5, 20, 0)
    assert ev.metrics["calibration_ici"] == pytest.approx(averaged(flexible_calibration, y, np.vstack([p, p**0.8]))["calibration_ici"])
    assert "calibration_ici" not in ev.ci
