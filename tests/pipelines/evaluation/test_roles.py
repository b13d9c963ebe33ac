"""Biomarker roles on cohorts with a known truth: planted modifiers are found, prognostic and null
features are not called predictive, and a constant drug effect yields no predictive feature."""

from __future__ import annotations

import numpy as np
import pytest

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.features.synthetic.scenarios import NULL_FEATURES
from ketamine_response.pipelines.config import load_config
from ketamine_response.pipelines.evaluation.roles import ROLE_COLUMNS, biomarker_roles
from ketamine_response.pipelines.flows.train import build_training_data
from ketamine_response.pipelines.training.benefit import comparisons
from ketamine_response.pipelines.training.roles import others_indexes

PREDICTIVE = {"family_history_aud", "bmi_kg_m2", "benzodiazepine", "bdnf_met_carrier"}
PROGNOSTIC = {"n_failed_treatments", "madrs_baseline"}
# feature names of the planted nulls (derived names where the feature is derived from the column)
NULLS = {"age", "sex_female", "log_il6", "log_crp", "log_tnf_alpha", "kyn_trp_ratio", "eeg_gamma_power_db",
         "glx_acc_mmol", "anxious_depression", "lithium", "shaps_baseline"}


def _roles(scenario: str, seed: int, n: int = 800):
    cohort, _ = build_cohort(n, seed, scenario)
    data, built, _ = build_training_data(validate_table(cohort, scenario), "response_24h", load_config(), False)
    rows = np.unique(np.concatenate([c.rows for c in comparisons(data)[0]]))
    indexes = others_indexes(data, rows, built.dictionary)
    return biomarker_roles(data, rows, built.dictionary, True, 0.05, {"bmi_kg_m2": 0.2, "age": 0.1}, indexes)


def test_nulls_match_the_scenario_table():
    assert len(NULLS) == len(NULL_FEATURES)


@pytest.mark.parametrize("seed", [20, 21])
def test_benefit_scenario_roles(seed):
    # 1,200 courses: at 800 (the benchmark's size) three of four modifiers are found in most cohorts, not all
    roles = _roles("benefit", seed, 1200).set_index("feature")
    assert list(roles.reset_index().columns) == list(ROLE_COLUMNS)
    called = set(roles.index[roles["role_log_odds"].isin(["predictive", "both"])])
    assert len(called & PREDICTIVE) >= 3
    assert not called & (PROGNOSTIC | NULLS)
    for feature in PREDICTIVE & called:
        row = roles.loc[feature]
        assert row["interaction_ci_low"] > 0 or row["interaction_ci_high"] < 0
    assert roles.loc["bmi_kg_m2", "benefit_rank"] == 1 and roles.loc["age", "benefit_rank"] == 2


@pytest.mark.parametrize("seed", [20, 21])
def test_constant_effect_scenario_has_no_predictive_feature(seed):
    roles = _roles("constant_effect", seed)
    assert not roles["role_log_odds"].isin(["predictive", "both"]).any()
    assert (roles["interaction_q"].dropna() <= 1).all() and roles["interaction_q"].notna().sum() > 20


def test_null_scenario_finds_nothing():
    roles = _roles("null", 3)
    assert (roles["role_log_odds"] == "none").all()
