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
    curve = treatment_selection_curve(benefit, y, treated, np.array([0.0, 0.1, 0.6])).set_index("benefit_threshold")
    # at 10 points asked for: treat half, response 0.5 x 80% + 0.5 x 30% = 55% vs 30% on placebo, minus 0.1 x 0.5
    assert curve.loc[0.1, "treat_by_benefit"] == pytest.approx(20.0)
    assert curve.loc[0.1, "treat_all"] == pytest.approx(15.0)  # 55% on the drug - 30% - 0.1 x everyone
    assert curve.loc[0.1, "share_treated"] == pytest.approx(0.5)
    assert curve.loc[0.6, "treat_by_benefit"] == pytest.approx(0.0)  # nobody's benefit is worth 60 points: treat none
    assert (curve["treat_none"] == 0).all()


def test_intervals_belong_to_the_point_shown():
    assert centred(0.60, 0.65, 0.55, 0.75, (0.0, 1.0)) == pytest.approx((0.50, 0.70))
    assert centred(0.98, 0.90, 0.80, 1.0, (0.0, 1.0)) == pytest.approx((0.88, 1.0))  # cut to the statistic's range
    kept = honest({"brier": 0.2, "auprc": 0.5}, {"brier": (0.21, 0.3), "auprc": (0.4, 0.6)})
    assert all(math.isnan(v) for v in kept["brier"]) and kept["auprc"] == (0.4, 0.6)
