"""Targets from outcome columns: response and remission (0/1), percentage change (continuous)."""

import numpy as np
import pandas as pd
import pytest

from ketamine_response.features.cohort.targets import make_target, parse_target
from ketamine_response.features.errors import CohortFileError

TABLE = pd.DataFrame({"madrs_baseline": [30.0, 30.0, 0.0, 40.0], "madrs_24h": [12.0, 20.0, 5.0, np.nan]})


def test_kinds_and_tasks():
    assert parse_target("response_24h").task == "classification"
    assert parse_target("pct_change_day2").continuous and parse_target("pct_change_day2").task == "regression"
    with pytest.raises(ValueError, match="pct_change_<tp>"):
        parse_target("change_24h")


def test_values():
    np.testing.assert_array_equal(make_target(TABLE, parse_target("response_24h")), [1.0, 0.0, 0.0, np.nan])
    np.testing.assert_array_equal(make_target(TABLE, parse_target("remission_24h")), [0.0, 0.0, 1.0, np.nan])
    change = make_target(TABLE, parse_target("pct_change_24h"))
    np.testing.assert_allclose(change[:2], [-60.0, -100 / 3])
    assert change[2:].isna().all()  # a baseline of 0 has no percentage change; a missing outcome is missing


def test_missing_outcome_column_lists_every_supported_target():
    with pytest.raises(CohortFileError, match="pct_change_24h"):
        make_target(TABLE, parse_target("pct_change_day7"))
