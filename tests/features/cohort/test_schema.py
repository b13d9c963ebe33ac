import pytest

from ketamine_response.features.cohort.schema import COLUMNS, REQUIRED, outcome_spec, outcome_timepoints, spec_for, timepoint_minutes


@pytest.mark.parametrize("label, minutes", [("40min", 40), ("4h", 240), ("24h", 1440), ("day7", 10080),
                                            ("day28", 40320), ("230min", 230)])
def test_timepoint_minutes(label, minutes):
    assert timepoint_minutes(label) == minutes


@pytest.mark.parametrize("label", ["week4", "7d", "day", "h4", ""])
def test_bad_timepoint_is_rejected(label):
    with pytest.raises(ValueError, match="does not match"):
        timepoint_minutes(label)


def test_outcome_columns_are_recognised_by_pattern():
    spec = outcome_spec("madrs_day10")
    assert spec is not None and (spec.low, spec.high, spec.role) == (0, 60, "outcome")
    assert outcome_spec("madrs_week4") is None
    assert outcome_spec("madrs_baseline") is None
    assert spec_for("madrs_baseline").required


def test_timepoints_sorted_by_time():
    cols = ["madrs_day7", "madrs_baseline", "madrs_40min", "madrs_24h", "age", "madrs_4h"]
    assert outcome_timepoints(cols) == ["40min", "4h", "24h", "day7"]


def test_required_columns_and_unique_names():
    assert REQUIRED == ("patient_id", "site", "treatment", "madrs_baseline")
    names = [c.name for c in COLUMNS]
    assert len(names) == len(set(names))
    assert {c.name for c in COLUMNS if c.role == "safety"} == {"sbp_change_mmhg", "nausea"}
