"""Contract tests over the whole registry, and the leakage guard over every feature x target."""

import numpy as np
import pandas as pd
import pytest

from ketamine_response.features.build import build_feature_table, registry_for, select_features
from ketamine_response.features.cohort.schema import SPECS, timepoint_minutes
from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.registry import STATIC_FEATURES, early_course_features
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.features.tasks import parse_target

ALL_TIMEPOINTS = ["40min", "80min", "4h", "24h", "day2", "day3", "day7", "day10", "day14", "day28"]
TARGETS = [f"{kind}_{tp}" for kind in ("response", "remission") for tp in ALL_TIMEPOINTS]


# the durability scenario writes every column the other scenarios write, and the course columns
# (doses, hypertension, follow-up) besides: so every registry entry has its inputs
SCENARIO = "durability"


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    table, _ = build_cohort(400, 8, SCENARIO)
    return validate_table(table, "synthetic").table


def _full_registry(cohort):
    return registry_for(list(cohort.columns)) + early_course_features(ALL_TIMEPOINTS)


def test_every_registry_entry_is_covered_by_the_fixture_cohort(cohort):
    assert {f.name for f in registry_for(list(cohort.columns))} >= {f.name for f in STATIC_FEATURES}


def test_registry_entries_are_complete_and_unique(cohort):
    outputs = [o for f in STATIC_FEATURES for o in f.outputs]
    assert len(outputs) == len(set(outputs))
    assert len({f.name for f in STATIC_FEATURES}) == len(STATIC_FEATURES)
    for feature in STATIC_FEATURES:
        assert feature.unit and feature.domain and len(feature.rationale) > 20, feature.name
        assert all(c in SPECS for c in feature.inputs), feature.name
        assert feature.func.__name__ == feature.outputs[0] or len(feature.outputs) > 1, feature.name


@pytest.mark.parametrize("feature", registry_for(list(build_cohort(20, 1, SCENARIO)[0].columns)), ids=lambda f: f.name)
def test_derivation_contract(feature, cohort):
    before = cohort.copy()
    out = feature.func(cohort)
    pd.testing.assert_frame_equal(cohort, before)  # input unchanged
    assert list(out.columns) == list(feature.outputs)
    assert out.index.equals(cohort.index)  # rows kept, same order
    assert all(out[c].dtype == "float64" for c in out.columns)
    assert np.isfinite(out.to_numpy()[~np.isnan(out.to_numpy())]).all()
    # per course: a subset of rows gives the same values (nothing computed across rows)
    rows = cohort.sample(37, random_state=1).index
    pd.testing.assert_frame_equal(feature.func(cohort.loc[rows]), out.loc[rows])


@pytest.mark.parametrize("target", TARGETS)
def test_no_feature_reads_the_target_timepoint_or_later(target, cohort):
    t = parse_target(target)
    columns = list(cohort.columns) + [f"madrs_{tp}" for tp in ALL_TIMEPOINTS]
    chosen, _ = select_features(columns, t)
    for feature in chosen:
        for column in feature.inputs:
            spec = SPECS.get(column)
            assert not (spec and spec.role == "safety"), (feature.name, column)
            if column.startswith("madrs_") and column != "madrs_baseline":
                assert timepoint_minutes(column.removeprefix("madrs_")) < t.minutes, (feature.name, column)
            if column == "cadss_40min":
                assert t.minutes > 40
    # and the guard is not vacuous: every early timepoint strictly before the target is used
    early = {f.name for f in chosen if f.domain == "early_course" and f.name.startswith("madrs_pct")}
    expected = {f"madrs_pct_change_{tp}" for tp in ALL_TIMEPOINTS if timepoint_minutes(tp) < t.minutes}
    assert early == expected


@pytest.mark.parametrize("target", ["response_24h", "remission_day7", "response_40min"])
def test_scrambling_target_and_later_outcomes_changes_no_feature(target, cohort):
    t = parse_target(target)
    built = build_feature_table(cohort, t)
    scrambled = cohort.copy()
    rng = np.random.default_rng(0)
    for column in scrambled.columns:
        spec = SPECS.get(column)
        late = column.startswith("madrs_") and column != "madrs_baseline" and \
            timepoint_minutes(column.removeprefix("madrs_")) >= t.minutes
        if late or (spec and spec.role == "safety"):
            scrambled[column] = rng.permutation(scrambled[column].to_numpy())
    again = build_feature_table(scrambled, t)
    pd.testing.assert_frame_equal(built.frame[list(built.features)], again.frame[list(again.features)])


def test_every_domain_appears_on_the_synthetic_cohort(cohort):
    built = build_feature_table(cohort, parse_target("response_day7"))
    domains = set(built.dictionary["domain"])
    assert domains >= {"clinical", "pharmacological", "inflammatory", "neurotrophic_genetic", "kynurenine",
                       "neurophysiology_imaging", "early_course"}
    assert built.notes == ()
    assert list(built.frame.columns[:4]) == ["patient_id", "treatment", "site", "period"]
    assert built.frame.columns[-1] == "response_day7"
    assert len(built.frame) == len(cohort)


def test_absent_inputs_are_skipped_with_one_note(cohort):
    slim = cohort.drop(columns=["il6_pg_ml", "bmi", "weight_kg"])
    built = build_feature_table(slim, parse_target("response_24h"))
    assert "log_il6" not in built.features and "bmi_kg_m2" not in built.features
    # one note names every skipped derivation with the inputs it needs
    skipped = [n for n in built.notes if n.startswith("skipped ")]
    assert len(skipped) == 1 and skipped[0].count("log_il6 (needs il6_pg_ml)") == 1
    assert "bmi_kg_m2 (needs bmi)" in skipped[0] and "whose inputs are absent from the cohort" in skipped[0]
    with_height_weight = cohort.drop(columns=["bmi"])
    assert "bmi_kg_m2" in build_feature_table(with_height_weight, parse_target("response_24h")).features


def test_bmi_falls_back_to_weight_and_height():
    df = pd.DataFrame({"bmi": [np.nan, 22.0, np.nan], "weight_kg": [81.0, 50.0, np.nan], "height_cm": [180.0, 160.0, 170.0]})
    from ketamine_response.features.derivations.clinical import bmi_kg_m2, obese
    assert bmi_kg_m2(df)["bmi_kg_m2"].tolist()[:2] == pytest.approx([25.0, 22.0])
    assert np.isnan(obese(df)["obese"].iloc[2])


def test_maudsley_staging_score_follows_fekadu_2009():
    from ketamine_response.features.derivations.clinical import maudsley_staging_score
    df = pd.DataFrame({"n_failed_treatments": [2, 5, 12], "episode_duration_months": [6, 18, 30],
                       "madrs_baseline": [15, 25, 40], "lithium": [0, 1, np.nan], "prior_ect": [0, 1, 1]})
    # duration 1/2/3 + severity 2/3/4 + failures 1/3/5 + augmentation + ECT
    assert maudsley_staging_score(df)["maudsley_staging_score"].tolist()[:2] == [4.0, 10.0]
    assert np.isnan(maudsley_staging_score(df)["maudsley_staging_score"].iloc[2])
    without = maudsley_staging_score(df.drop(columns=["lithium", "prior_ect"]))
    assert without["maudsley_staging_score"].tolist() == [4.0, 8.0, 12.0]


def test_genotype_and_ratio_coding():
    from ketamine_response.features.derivations.kynurenine import kyn_trp_ratio
    from ketamine_response.features.derivations.neurotrophic import bdnf_met_alleles, bdnf_met_carrier
    g = pd.DataFrame({"bdnf_rs6265": ["GG", "GA", "AA", np.nan]})
    assert bdnf_met_alleles(g)["bdnf_met_alleles"].tolist()[:3] == [0.0, 1.0, 2.0]
    assert bdnf_met_carrier(g)["bdnf_met_carrier"].tolist()[:3] == [0.0, 1.0, 1.0]
    k = pd.DataFrame({"kynurenine_umol_l": [2.0, 1.0], "tryptophan_umol_l": [50.0, 0.0]})
    out = kyn_trp_ratio(k)["kyn_trp_ratio"]
    assert out.iloc[0] == pytest.approx(40.0) and np.isnan(out.iloc[1])
