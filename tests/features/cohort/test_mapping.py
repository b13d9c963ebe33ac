import pytest

from ketamine_response.features.cohort.mapping import load_mapping
from ketamine_response.features.cohort.validation import load_cohort
from ketamine_response.features.errors import CohortFileError

COHORT = "ID,Centre,Arm,MADRS0,CRP,Weight,hair_cortisol,notes\nP1,A,placebo,30,0.5,220,3.1,x\nP2,A,ketamine_iv,31,0.2,150,abc,y\n"
MAPPING = """
columns: {ID: patient_id, Centre: site, Arm: treatment, MADRS0: madrs_baseline, CRP: crp_mg_l, Weight: weight_kg}
units: {crp_mg_l: mg/dL, weight_kg: lb}
extra_features: [hair_cortisol]
"""


def test_mapping_renames_converts_and_declares_extras(write_csv):
    cohort = load_cohort(write_csv(COHORT), write_csv(MAPPING, "m.yaml"))
    t = cohort.table
    assert t["crp_mg_l"].tolist() == pytest.approx([5.0, 2.0])
    assert t["weight_kg"].tolist() == pytest.approx([99.79, 68.04], abs=0.01)
    assert cohort.extra_features == ("hair_cortisol",)
    assert cohort.unknown_columns == ("notes",)
    problem = cohort.problems.iloc[0]
    assert (problem["row"], problem["column"], problem["problem"]) == (2, "hair_cortisol", "value 'abc' is not a number")


def test_converted_range_message_names_the_unit(write_csv):
    text = COHORT.replace("220", "900")
    cohort = load_cohort(write_csv(text), write_csv(MAPPING, "m.yaml"))
    assert "value 408.233 (converted from lb) is above 300" in cohort.problems["problem"].tolist()[0]


@pytest.mark.parametrize("mapping, message", [
    ("colums: {}", r"unknown key 'colums'"),
    ("columns: {ID: patient_key}", r"'ID' is mapped to 'patient_key', which is not a canonical column"),
    ("units: {crp_mg_l: g/L}", r"cannot convert column 'crp_mg_l' from unit 'g/L'; supported units: mg/L, mg/dL"),
    ("units: {age: months}", r"no conversions"),
    ("extra_features: age", r"'extra_features' must be a list"),
    ("extra_features: [age]", r"extra feature 'age' is already a canonical column"),
    ("columns: [a, b]", r"'columns' must be a mapping"),
    ("- just a list", r"must be a YAML mapping"),
    ("columns: {a: [", r"not valid YAML"),
])
def test_bad_mapping_files(write_csv, mapping, message):
    path = write_csv(mapping, "m.yaml")
    with pytest.raises(CohortFileError, match=message):
        load_mapping(path)


def test_mapping_naming_absent_column(write_csv):
    mapping = write_csv("columns: {PatientNumber: patient_id}", "m.yaml")
    with pytest.raises(CohortFileError, match=r"renames column 'PatientNumber', which the file does not have"):
        load_cohort(write_csv(COHORT), mapping)
    extras = write_csv(MAPPING.replace("hair_cortisol]", "hair_cortisol, saliva]"), "m2.yaml")
    with pytest.raises(CohortFileError, match=r"names column 'saliva', which the file does not have"):
        load_cohort(write_csv(COHORT), extras)


def test_missing_mapping_file(tmp_path):
    with pytest.raises(CohortFileError, match="mapping file does not exist"):
        load_mapping(tmp_path / "none.yaml")
