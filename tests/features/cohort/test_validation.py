import re

import pandas as pd
import pytest

from ketamine_response.features.cohort.validation import PROBLEM_COLUMNS, format_problem, load_cohort, validate_table
from ketamine_response.features.errors import CohortFileError


def problems_of(raw: pd.DataFrame) -> list[tuple[int, str, str]]:
    report = validate_table(raw, "cohort.csv")
    return [(p.row, p.column, p.problem) for p in report.problems.itertuples()]


def test_valid_cohort_is_clean_and_typed(raw_cohort):
    report = validate_table(raw_cohort, "cohort.csv")
    assert report.problems.empty
    assert list(report.problems.columns) == PROBLEM_COLUMNS
    t = report.table
    assert list(t.index) == [1, 2, 3] and t.index.name == "row"
    assert t["madrs_baseline"].dtype == "float64"
    assert t.loc[3, "madrs_24h"] != t.loc[3, "madrs_24h"]  # blank cell is NaN
    assert report.valid_table().shape[0] == 3


@pytest.mark.parametrize("column, value, message", [
    ("madrs_baseline", "70", r"value 70 is above 60; expected ≤ 60"),
    ("madrs_24h", "-4", r"value -4 is below 0; expected ≥ 0"),
    ("madrs_baseline", "abc", r"value 'abc' is not a number$"),
    ("madrs_baseline", "3,5", r"is not a number; use '\.' as the decimal separator"),
    ("madrs_baseline", "inf", r"value 'inf' is infinite or too large to store"),
    ("age", "1e400", r"value '1e400' is infinite or too large to store"),
    ("madrs_baseline", "", r"missing value; 'madrs_baseline' is required"),
    ("patient_id", " ", r"missing value; 'patient_id' is required"),
    ("site", "NA", r"missing value; 'site' is required"),
    ("treatment", "iv", r"unknown category 'iv'; expected one of ketamine_iv, esketamine_in, placebo"),
])
def test_required_and_outcome_rules(raw_cohort, column, value, message):
    raw_cohort.loc[1, column] = value
    found = problems_of(raw_cohort)
    assert len(found) == 1
    row, col, text = found[0]
    assert (row, col) == (2, column)
    assert re.search(message, text)


@pytest.mark.parametrize("column, value, message", [
    ("crp_mg_l", "-4.0", r"value -4 is below 0; expected ≥ 0"),
    ("age", "17", r"below 18; expected ≥ 18"),
    ("sex", "X", r"unknown category 'X'; expected one of F, M"),
    ("bipolar", "2", r"value 2 is not 0 or 1"),
    ("bipolar", "yes", r"value 'yes' is not a number"),
    ("n_failed_treatments", "2.5", r"not a whole number"),
    ("bdnf_rs6265", "CC", r"unknown category 'CC'; expected one of GG, GA, AA"),
    ("sbp_change_mmhg", "130", r"above 120"),
])
def test_optional_column_rules(raw_cohort, column, value, message):
    raw_cohort[column] = ""
    raw_cohort.loc[0, column] = value
    report = validate_table(raw_cohort, "cohort.csv")
    assert len(report.problems) == 1
    problem = report.problems.iloc[0]
    assert (problem["row"], problem["column"], problem["patient_id"], problem["value"]) == (1, column, "P1", value)
    assert re.search(message, problem["problem"])


def test_message_shape(raw_cohort):
    raw_cohort["crp_mg_l"] = ["1", "2", "-4"]
    problem = validate_table(raw_cohort, "c.csv").problems.iloc[0]
    assert format_problem(problem) == "column 'crp_mg_l', row 3: value -4 is below 0; expected ≥ 0"


def test_category_spellings_are_normalised(raw_cohort):
    raw_cohort["sex"] = ["f", "M ", ""]
    raw_cohort["bdnf_rs6265"] = ["Val/Met", "met/met", "AG"]
    raw_cohort["treatment"] = ["Ketamine_IV", "placebo", "esketamine_in"]
    report = validate_table(raw_cohort, "c.csv")
    assert report.problems.empty
    assert report.table["bdnf_rs6265"].tolist() == ["GA", "AA", "GA"]
    assert report.table["sex"].iloc[:2].tolist() == ["F", "M"]
    assert report.table["treatment"].iloc[0] == "ketamine_iv"


def test_duplicate_key_rejects_both_rows(raw_cohort):
    raw_cohort.loc[2] = raw_cohort.loc[0]
    found = problems_of(raw_cohort)
    assert [(r, c) for r, c, _ in found] == [(1, "patient_id, treatment"), (3, "patient_id, treatment")]
    assert "also at row 3" in found[0][2] and "also at row 1" in found[1][2]


def test_all_problems_in_one_pass(raw_cohort):
    raw_cohort.loc[0, "madrs_baseline"] = "99"
    raw_cohort.loc[1, "treatment"] = "ketamine"
    raw_cohort.loc[2, "madrs_24h"] = "x"
    raw_cohort["age"] = ["10", "40", "200"]
    found = {(r, c) for r, c, _ in problems_of(raw_cohort)}
    assert found == {(1, "madrs_baseline"), (2, "treatment"), (3, "madrs_24h"), (1, "age"), (3, "age")}


def test_blank_row_is_reported_not_dropped(raw_cohort):
    raw_cohort.loc[1] = ""
    report = validate_table(raw_cohort, "c.csv")
    assert len(report.table) == 3
    assert "the row is blank; delete it" in report.problems["problem"].tolist()
    assert list(report.invalid_rows) == [2]


def test_unknown_columns_are_kept_and_reported(raw_cohort):
    raw_cohort["favourite_colour"] = "blue"
    raw_cohort["madrs_week4"] = "10"
    report = validate_table(raw_cohort, "c.csv")
    assert report.unknown_columns == ("favourite_colour", "madrs_week4")
    assert report.problems.empty


def test_missing_required_column_is_a_file_error(raw_cohort):
    with pytest.raises(CohortFileError, match=r"c\.csv: required column 'site' is absent.*column mapping file"):
        validate_table(raw_cohort.drop(columns="site"), "c.csv")
    with pytest.raises(CohortFileError, match=r"also absent: treatment, madrs_baseline"):
        validate_table(raw_cohort[["patient_id"]], "c.csv")


def test_parquet_typed_columns_validate(tmp_path):
    path = tmp_path / "c.parquet"
    pd.DataFrame({"patient_id": ["P1", "P2"], "site": ["A", "A"], "treatment": ["placebo", "ketamine_iv"],
                  "madrs_baseline": [30.0, 75.0], "bipolar": [1, 0], "age": [None, 40.0]}).to_parquet(path)
    report = load_cohort(path)
    assert [(p.row, p.column) for p in report.problems.itertuples()] == [(2, "madrs_baseline")]
    assert report.table.loc[1, "bipolar"] == 1.0


@pytest.mark.parametrize("days, event, column, message", [
    ("", "1", "relapse_observed", r"'relapse_observed' is filled but 'days_to_relapse' is empty; give the days from the "
                                  r"response to the relapse .* or leave both empty for a course not followed up"),
    ("30", "", "days_to_relapse", r"'days_to_relapse' is filled but 'relapse_observed' is empty; write 1 if the course "
                                  r"relapsed on that day, 0 if it was last seen relapse-free then, or leave both empty"),
    ("-3", "1", "days_to_relapse", r"^value -3 is below 0; expected ≥ 0$"),  # reported once, not also as 'no time'
    ("12", "0", "days_to_relapse", None),  # a complete pair
])
def test_follow_up_pair_rules(raw_cohort, days, event, column, message):
    raw_cohort["days_to_relapse"] = ["40", "", days]
    raw_cohort["relapse_observed"] = ["0", "", event]
    found = problems_of(raw_cohort)
    if message is None:
        assert found == []
        return
    assert len(found) == 1
    row, col, text = found[0]
    assert (row, col) == (3, column)
    assert re.search(message, text)
    assert format_problem(validate_table(raw_cohort, "c.csv").problems.iloc[0]).startswith(f"column '{column}', row 3: ")


def test_follow_up_column_alone_flags_every_filled_row(raw_cohort):
    raw_cohort["relapse_observed"] = ["1", "", "0"]
    found = problems_of(raw_cohort)
    assert [(r, c) for r, c, _ in found] == [(1, "relapse_observed"), (3, "relapse_observed")]
    assert all("'days_to_relapse' is empty" in text for _, _, text in found)


def test_follow_up_rows_are_numbered_within_their_file(raw_cohort):
    raw_cohort["days_to_relapse"] = ["", "5", ""]
    report = validate_table(raw_cohort, "c.csv", first_row=101)  # a later chunk of a streamed file
    assert [(p.row, p.column, p.value) for p in report.problems.itertuples()] == [(102, "days_to_relapse", "5")]


@pytest.mark.parametrize("value, message", [
    ("0", r"^value 0 is below 1; expected ≥ 1$"),
    ("41", r"^value 41 is above 40; expected ≤ 40$"),
    ("2.5", r"^value 2.5 is not a whole number; expected a count$"),
])
def test_n_doses_rules(raw_cohort, value, message):
    raw_cohort["n_doses"] = ["6", "8", value]
    found = problems_of(raw_cohort)
    assert [(r, c) for r, c, _ in found] == [(3, "n_doses")]
    assert re.search(message, found[0][2])
