import numpy as np
import pytest
from scipy.special import expit
from sklearn.metrics import average_precision_score, roc_auc_score

from ketamine_response.pipelines.evaluation.metrics import bootstrap_ci, calibration_slope_intercept, decision_curve, point_metrics


@pytest.fixture
def calibrated():
    rng = np.random.default_rng(3)
    lp = rng.normal(-0.5, 1.2, 4000)
    p = expit(lp)
    y = (rng.random(4000) < p).astype(float)
    return y, p


def test_discrimination_matches_sklearn(calibrated):
    y, p = calibrated
    m = point_metrics(y, p, 0.4)
    assert m["auroc"] == pytest.approx(roc_auc_score(y, p))
    assert m["auprc"] == pytest.approx(average_precision_score(y, p))
    assert m["balanced_accuracy"] == pytest.approx((m["sensitivity"] + m["specificity"]) / 2)


def test_calibration_slope_and_intercept(calibrated):
    y, p = calibrated
    slope, intercept = calibration_slope_intercept(y, p)
    assert slope == pytest.approx(1.0, abs=0.1) and intercept == pytest.approx(0.0, abs=0.1)
    over = expit(2 * (np.log(p / (1 - p))))  # overconfident: slope ~ 0.5
    assert calibration_slope_intercept(y, over)[0] == pytest.approx(0.5, abs=0.07)


def test_bootstrap_ci_brackets_the_estimate(calibrated):
    y, p = calibrated
    ci = bootstrap_ci(y, p, np.arange(len(y)).astype(str), 0.4, 200, 1)
    auc = roc_auc_score(y, p)
    assert ci["auroc"][0] < auc < ci["auroc"][1]
    assert ci["auroc"][1] - ci["auroc"][0] < 0.05


def test_decision_curve_reference_lines():
    y = np.array([1, 0, 0, 1, 0.0])
    curve = decision_curve(y, np.array([0.9, 0.1, 0.2, 0.8, 0.3]), np.array([0.5]))
    assert curve["treat_all"].iloc[0] == pytest.approx(0.4 - 0.6)
    assert curve["model"].iloc[0] == pytest.approx(0.4)
