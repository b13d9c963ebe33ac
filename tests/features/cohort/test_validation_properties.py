"""Property tests: generated cohorts validate clean; any one corrupted cell is reported where it is."""

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketamine_response.features.cohort.reader import write_table
from ketamine_response.features.cohort.schema import SPECS
from ketamine_response.features.cohort.validation import load_cohort, validate_table
from ketamine_response.features.synthetic.cohort import build_cohort

SCENARIOS = st.sampled_from(["literature", "strong", "null", "high_placebo"])
CORRUPTIBLE = sorted(n for n, s in SPECS.items() if s.role != "key" and s.kind in ("number", "binary", "category"))
FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(n=st.integers(2, 120), seed=st.integers(0, 2**32 - 1), scenario=SCENARIOS,
       suffix=st.sampled_from([".csv", ".parquet"]))
def test_generated_cohort_validates_clean(n, seed, scenario, suffix):
    cohort, _ = build_cohort(n, seed, scenario)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"cohort{suffix}"
        write_table(cohort, path)
        report = load_cohort(path)
    assert report.problems.empty, report.problems.head().to_string()
    assert len(report.table) == n


def _corrupt(column: str, kind: int) -> str:
    spec = SPECS[column]
    if spec.kind == "category":
        return "ZZ"
    if spec.kind == "binary":
        return ["7", "maybe"][kind % 2]
    options = ["not-a-number"]
    if spec.high is not None:
        options.append(str(spec.high + 1))
    if spec.low is not None:
        options.append(str(spec.low - 1))
    return options[kind % len(options)]


@FAST
@given(seed=st.integers(0, 10_000), row=st.integers(0, 29), column=st.sampled_from(CORRUPTIBLE),
       kind=st.integers(0, 5))
def test_single_corrupted_cell_is_reported_at_its_row_and_column(seed, row, column, kind):
    cohort, _ = build_cohort(30, seed)
    raw = cohort.astype("str").replace({"<NA>": "", "nan": ""})
    raw.loc[row, column] = _corrupt(column, kind)
    report = validate_table(raw, "cohort.csv")
    found = set(zip(report.problems["row"], report.problems["column"]))
    assert found == {(row + 1, column)}
    assert report.problems["value"].iloc[0] == raw.loc[row, column]


@FAST
@given(seed=st.integers(0, 10_000), row=st.integers(0, 29),
       column=st.sampled_from(["patient_id", "site", "treatment", "madrs_baseline"]))
def test_blanked_required_cell_is_reported(seed, row, column):
    cohort, _ = build_cohort(30, seed)
    raw = cohort.astype("str").replace({"<NA>": "", "nan": ""})
    raw.loc[row, column] = ""
    problems = validate_table(raw, "cohort.csv").problems
    assert set(zip(problems["row"], problems["column"])) == {(row + 1, column)}
    assert problems["problem"].iloc[0] == f"missing value; '{column}' is required"

