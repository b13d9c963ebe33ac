"""BIDS ingest: the shipped OpenNeuro ds005917 tables, and a hand-made dataset with other session names."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.errors import CohortFileError
from ketamine_response.features.sources.bids import dataset_doi, ingest_bids, ingest_dataset, inputs, load_bids_mapping, mapping_for, shipped_mapping
from ketamine_response.features.sources.registry import SOURCES

DS = Path(__file__).parents[3] / "data" / "public" / "openneuro-ds005917"
SHIPPED_TEXT = (Path(__file__).parents[3] / "features" / "sources" / "ds005917.yaml").read_text()
KNOWN = SOURCES["bids"].mappings


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    return ingest_bids(DS, load_bids_mapping(shipped_mapping(DS, KNOWN)))


def test_shipped_dataset_rows_arms_and_validity(cohort):
    assert len(cohort) == 60 and cohort["patient_id"].nunique() == 33
    assert cohort["treatment"].value_counts().to_dict() == {"ketamine_iv": 31, "placebo": 29}
    assert cohort["patient_id"].str.startswith("sub-").all()
    assert validate_table(cohort.astype("str").replace({"nan": ""}), "ds005917").problems.empty
    crossover = cohort.groupby("patient_id")["treatment"].nunique()
    assert (crossover == 2).sum() == 27  # both infusions recorded
    assert set(cohort["period"]) == {1, 2}
    per_patient = cohort.groupby("patient_id")["bipolar"].first()
    assert set(per_patient) == {0, 1} and per_patient.sum() == 2  # the BP participants with infusions


def test_published_figures_reproduce(cohort):
    baseline = cohort.groupby("patient_id")["madrs_baseline"].first()
    assert baseline.mean() == pytest.approx(33.2, abs=0.5)  # published ~33.5
    rates = {}
    for arm, rows in cohort.groupby("treatment"):
        seen = rows["madrs_day2"].notna()
        rates[arm] = (int(seen.sum()), int((rows["madrs_day2"] <= 0.5 * rows["madrs_baseline"])[seen].sum()))
    assert rates == {"ketamine_iv": (29, 6), "placebo": (28, 1)}
    missing = cohort[["madrs_day2", "madrs_day10"]].isna().sum().to_dict()
    assert missing == {"madrs_day2": 3, "madrs_day10": 6}


def test_controls_are_excluded_unless_asked(cohort):
    mapping = load_bids_mapping(shipped_mapping(DS, KNOWN))
    with_controls = ingest_bids(DS, mapping, include_controls=True)
    assert len(with_controls) >= len(cohort)
    assert with_controls["bipolar"].isna().sum() == len(with_controls) - len(cohort)


def test_other_session_names(tmp_path):
    (tmp_path / "phenotype").mkdir()
    (tmp_path / "participants.tsv").write_text(
        "participant_id\tage\tdx\tfirst\tsecond\nsub-1\t40\tdep\tK\tS\nsub-2\tn/a\tdep\tS\tn/a\nsub-3\t30\tctl\tK\tS\n")
    (tmp_path / "phenotype" / "scales.tsv").write_text(
        "participant_id\tsession_id\tmadrs\nsub-1\tses-pre\t30\nsub-1\tses-ket24\t12\nsub-1\tses-sal24\t29\n"
        "sub-2\tses-pre\t28\nsub-2\tses-sal24\tn/a\nsub-3\tses-pre\t2\n")
    (tmp_path / "map.yaml").write_text(
        "site: s\nparticipant_columns: {age: age}\ngroup_column: dx\ngroups: {dep: 0, ctl: control}\n"
        "arms: {K: ketamine_iv, S: placebo}\nperiod_columns: [first, second]\nscore_column: madrs\n"
        "baseline_session: ses-pre\nsessions: {ses-ket24: [K, 24h], ses-sal24: [S, 24h]}\n")
    cohort = ingest_bids(tmp_path, load_bids_mapping(tmp_path / "map.yaml"))
    assert cohort[["patient_id", "treatment", "period"]].to_dict("list") == {
        "patient_id": ["sub-1", "sub-1", "sub-2"], "treatment": ["ketamine_iv", "placebo", "placebo"],
        "period": [1, 2, 1]}
    np.testing.assert_array_equal(cohort["madrs_24h"].to_numpy(dtype=float), [12.0, 29.0, np.nan])
    assert pd.isna(cohort.loc[2, "age"])  # 'n/a' is missing


def test_bad_mapping_is_refused(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("site: s\n")
    with pytest.raises(CohortFileError, match="with exactly the keys"):
        load_bids_mapping(path)


@pytest.mark.parametrize("text, message", [
    ("site: [unclosed\n", "not valid YAML"),
    ("- a\n- b\n", "with exactly the keys"),
    ("!!python/object:os.system {}\n", "not valid YAML"),
    ("a: &x [1, 2]\nb: *x\n", "aliases"),
    ("site: s\nsite: t\n", "appears twice"),
])
def test_malformed_mapping_names_the_file(tmp_path, text, message):
    path = tmp_path / "m.yaml"
    path.write_text(text)
    with pytest.raises(CohortFileError, match=message) as info:
        load_bids_mapping(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("old, new, message", [
    ("BMI: bmi", "BMI: patient_id", "distinct canonical covariate"),
    ("age: age", "age: bmi", "distinct canonical covariate"),
    ("period_columns: [infusion_1, infusion_2]", "period_columns: []", "at least one period column"),
    ("score_column: MADRS_Total", "score_column: participant_id", "not an ID column"),
])
def test_mapping_that_would_overwrite_or_lose_data_is_refused(tmp_path, old, new, message):
    assert old in SHIPPED_TEXT
    path = tmp_path / "m.yaml"
    path.write_text(SHIPPED_TEXT.replace(old, new))
    with pytest.raises(CohortFileError, match=message):
        load_bids_mapping(path)


def test_scalar_where_a_mapping_is_expected(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text(SHIPPED_TEXT.replace("group_column: group", "group_column: [group]"))
    with pytest.raises(CohortFileError, match=r"group_column \(str expected\)"):
        load_bids_mapping(path)


def test_dataset_is_recognised_by_its_doi():
    assert dataset_doi(DS) == "10.18112/openneuro.ds005917"
    assert shipped_mapping(DS, KNOWN) is not None and shipped_mapping(DS, KNOWN).is_file()


def test_repeated_participant_rows_are_refused(tmp_path):
    (tmp_path / "phenotype").mkdir()
    (tmp_path / "participants.tsv").write_text(
        "participant_id\tage\tdx\tfirst\tsecond\nsub-1\t40\tdep\tK\tS\nsub-2\t30\tdep\tS\tK\nsub-1\t40\tdep\tK\tS\n")
    (tmp_path / "phenotype" / "scales.tsv").write_text("participant_id\tsession_id\tmadrs\nsub-1\tses-pre\t30\n")
    (tmp_path / "map.yaml").write_text(
        "site: s\nparticipant_columns: {age: age}\ngroup_column: dx\ngroups: {dep: 0}\n"
        "arms: {K: ketamine_iv, S: placebo}\nperiod_columns: [first, second]\nscore_column: madrs\n"
        "baseline_session: ses-pre\nsessions: {}\n")
    with pytest.raises(CohortFileError, match=r"participant_id 'sub-1' appears more than once \(lines 2, 4\)"):
        ingest_bids(tmp_path, load_bids_mapping(tmp_path / "map.yaml"))


def _copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(DS, tmp_path / "ds"))


def test_invalid_description_is_reported_as_invalid_json_not_as_unknown(tmp_path):
    root = _copy(tmp_path)
    (root / "dataset_description.json").write_text('{"Name": "x",\n "DatasetDOI": doi}\n')
    with pytest.raises(CohortFileError, match=r"dataset_description.json: the dataset description is not valid JSON "
                                              r"\(Expecting value at line 2, column 16\)"):
        dataset_doi(root)
    with pytest.raises(CohortFileError, match="not valid JSON"):
        mapping_for(root, None, KNOWN)


def test_description_without_a_doi_or_absent_is_an_unknown_dataset_saying_which(tmp_path):
    root = _copy(tmp_path)
    (root / "dataset_description.json").write_text('{"Name": "x", "DatasetDOI": 5}')
    assert dataset_doi(root) is None
    with pytest.raises(CohortFileError, match="names no dataset this tool ships a mapping for"):
        mapping_for(root, None, KNOWN)
    (root / "dataset_description.json").unlink()
    with pytest.raises(CohortFileError, match=r"unknown BIDS dataset \(it has no dataset_description.json\)"):
        mapping_for(root, None, KNOWN)


def test_a_local_mapping_needs_no_description_and_a_looping_one_is_not_skipped(tmp_path):
    root = _copy(tmp_path)
    (root / "dataset_description.json").write_text("[")  # not read: the dataset has its own mapping
    (root / "bids_mapping.yaml").write_text(SHIPPED_TEXT.replace("site: ", "site: local-"))
    assert mapping_for(root, None, KNOWN).site.startswith("local-")
    (root / "bids_mapping.yaml").unlink()
    (root / "bids_mapping.yaml").symlink_to("bids_mapping.yaml")
    with pytest.raises(CohortFileError, match=r"bids_mapping.yaml: the BIDS mapping file is a symbolic link .* loop"):
        mapping_for(root, None, KNOWN)  # not the shipped mapping in its place, silently


def test_inputs_are_the_tables_read_and_a_looping_table_is_refused(tmp_path):
    root = _copy(tmp_path)
    assert inputs(root) == [root / "participants.tsv", root / "phenotype" / "phenotype.tsv",
                            root / "dataset_description.json"]
    assert inputs(tmp_path / "absent") == []  # ingest_dataset says why
    (root / "phenotype" / "more.tsv").symlink_to("more.tsv")
    with pytest.raises(CohortFileError, match=r"phenotype/more.tsv: the phenotype table .* symlink loop"):
        inputs(root)


def test_a_looping_dataset_folder_is_named_as_one(tmp_path):
    (tmp_path / "ds").symlink_to("ds")
    with pytest.raises(CohortFileError, match=r"ds: the BIDS dataset folder is a symbolic link .* symlink loop"):
        ingest_dataset(tmp_path / "ds", None, KNOWN, {})
