"""Drug arm first: the treatment-selection decision curve and the estimator table's interval rules, on hand-made data."""

import math

import numpy as np
import pytest

from ketamine_response.pipelines.evaluation.drug_arm import treatment_selection_curve
from ketamine_response.pipelines.evaluation.estimators import centred, honest


def _trial() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Half the patients gain 50 points from the drug (80% vs 30%), half gain nothing (30% vs 30%); 100 courses per
    arm and group, with the benefit model knowing who is who."""
    def rates(p: float) -> np.ndarray:
        return (np.arange(100) < 100 * p).astype(float)

    y = np.concatenate([rates(0.8), rates(0.3), rates(0.3), rates(0.3)])
    treated = np.repeat([1, 0, 1, 0], 100)
    benefit = np.repeat([0.5, 0.5, 0.0, 0.0], 100)
    return benefit, y, treated


def test_treating_by_predicted_benefit_gains_responses_per_100_patients():
    benefit, y, treated = _trial()
    curve = treatment_selection_curve(benefit, y, treated, thresholds=np.array([0.0, 0.1, 0.6])).set_index("benefit_threshold")
    # no DR scores: inverse-probability scores at the 1:1 allocation. At 10 points asked for: treat half, response
    # 0.5 x 80% + 0.5 x 30% = 55% vs 30% on placebo, minus 0.1 x 0.5
    assert curve.loc[0.1, "treat_by_benefit"] == pytest.approx(20.0)
    assert curve.loc[0.1, "treat_all"] == pytest.approx(15.0)  # 55% on the drug - 30% - 0.1 x everyone
    assert curve.loc[0.1, "share_treated"] == pytest.approx(0.5)
    assert curve.loc[0.6, "treat_by_benefit"] == pytest.approx(0.0)  # nobody's benefit is worth 60 points: treat none
    assert (curve["treat_none"] == 0).all()


def test_intervals_belong_to_the_point_shown():
    # the half-widths around the point and the per-fold mean both: the gap between them is uncertainty too
    assert centred(0.60, 0.65, 0.55, 0.75, (0.0, 1.0)) == pytest.approx((0.50, 0.75))
    assert centred(0.98, 0.90, 0.80, 1.0, (0.0, 1.0)) == pytest.approx((0.80, 1.0))  # cut to the statistic's range
    # an arm-only model: 0.5 in every fold, a pooled 0.472: never a zero-width "worse than chance"
    assert centred(0.472, 0.5, 0.5, 0.5, (0.0, 1.0)) == pytest.approx((0.472, 0.5))
    kept = honest({"brier": 0.2, "auprc": 0.5}, {"brier": (0.21, 0.3), "auprc": (0.4, 0.6)})
    assert all(math.isnan(v) for v in kept["brier"]) and kept["auprc"] == (0.4, 0.6)


def test_the_treatment_selection_curve_uses_the_doubly_robust_scores_and_has_a_band():
    """Given DR scores psi, the gain of treating by predicted benefit is mean(1{benefit > t} psi) - t x share: an
    imbalanced allocation (unadjusted arm rates would be biased) cannot move it, and no empty cell reads as 0."""
    benefit, y, treated = _trial()
    psi = np.repeat([0.5, 0.5, 0.0, 0.0], 100)  # the true benefit of each course, as ideal DR scores would give
    patients = np.arange(400).astype(str)
    curve = treatment_selection_curve(benefit, y, treated, patients, psi, np.array([0.1, 0.6]), n_boot=50)
    curve = curve.set_index("benefit_threshold")
    assert curve.loc[0.1, "treat_by_benefit"] == pytest.approx(100 * (0.25 - 0.1 * 0.5))
    assert curve.loc[0.1, "treat_all"] == pytest.approx(100 * (0.25 - 0.1))
    assert curve.loc[0.6, "treat_by_benefit"] == 0.0 and curve.loc[0.6, "treat_by_benefit_ci_high"] == 0.0
    low, high = curve.loc[0.1, ["treat_by_benefit_ci_low", "treat_by_benefit_ci_high"]]
    assert low <= curve.loc[0.1, "treat_by_benefit"] <= high and high - low > 1  # a band, around the point


def test_the_drug_weighted_auroc_is_one_estimator_for_point_fold_and_resample():
    from ketamine_response.pipelines.evaluation.repeats import drug_weighted_auroc

    # ranked perfectly within each drug, but esketamine's predictions sit below ketamine's and respond more:
    # pooled, the drug's identity would pass for (bad) prediction
    y = np.array([0, 1, 0, 1, 0, 1, 1, 1])
    p = np.array([0.6, 0.7, 0.6, 0.7, 0.1, 0.2, 0.2, 0.2])
    drugs = np.array(["ketamine_iv"] * 4 + ["esketamine_in"] * 4)
    assert drug_weighted_auroc(y, p, drugs, ["ketamine_iv", "esketamine_in"]) == pytest.approx(1.0)
    assert drug_weighted_auroc(y[:4], p[:4], drugs[:4], ["ketamine_iv", "esketamine_in"]) == 1.0  # one drug present


def test_a_skewed_bootstrap_interval_is_withheld_and_named():
    from ketamine_response.pipelines.evaluation.estimators import skewed

    assert skewed({"brier": 0.2, "auprc": 0.5}, {"brier": (0.21, 0.3), "auprc": (0.4, 0.6)}) == {"brier"}


def test_a_flat_model_keeps_its_calibration_in_the_large():
    from ketamine_response.pipelines.evaluation.metrics import calibration_slope_intercept

    slope, intercept = calibration_slope_intercept(np.array([0, 1, 1, 1]), np.full(4, 0.5))
    assert math.isnan(slope) and intercept == pytest.approx(np.log(3), abs=1e-6)  # observed odds 3:1 against 1:1
