"""The ``validate`` flow: load → validate → summarise → write problems."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ketamine_response.features.cohort.reader import refuse_overwriting, spreadsheet_safe, write_aside
from ketamine_response.features.cohort.schema import TREATMENTS, outcome_timepoints
from ketamine_response.features.cohort.validation import ValidatedCohort, format_problem, load_cohort

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CohortSummary:
    """Counts a researcher checks first. Nothing patient-level is held here."""

    source: str
    rows: int
    valid_rows: int
    patients: int
    sites: int
    arms: dict[str, int]
    timepoints: tuple[str, ...]
    missing_share: dict[str, float]
    problems: int
    problem_rows: int
    problems_by_column: dict[str, int]
    unknown_columns: tuple[str, ...]


def summarise(cohort: ValidatedCohort) -> CohortSummary:
    """Counts, arms, timepoints and missingness of a validated cohort."""
    t = cohort.table
    arms = t["treatment"].value_counts()
    missing = t.isna().mean().round(3)
    return CohortSummary(
        source=cohort.source,
        rows=len(t),
        valid_rows=len(t) - len(cohort.invalid_rows),
        patients=int(t["patient_id"].nunique()),
        sites=int(t["site"].nunique()),
        arms={a: int(arms.get(a, 0)) for a in TREATMENTS},
        timepoints=tuple(outcome_timepoints(list(t.columns))),
        missing_share={str(c): float(v) for c, v in missing.items() if v > 0},
        problems=len(cohort.problems),
        problem_rows=len(cohort.invalid_rows),
        problems_by_column={str(k): int(v) for k, v in cohort.problems["column"].value_counts().items()},
        unknown_columns=cohort.unknown_columns,
    )


def render_summary(summary: CohortSummary, cohort: ValidatedCohort, max_problems: int = 20,
                   problems_file: str | Path | None = None) -> str:
    """Plain-text summary for the terminal, with the first *max_problems* problems spelled out; the rest are in
    *problems_file* where one is written."""
    s = summary
    lines = [
        f"{s.source}",
        f"  rows {s.rows}  valid {s.valid_rows}  patients {s.patients}  sites {s.sites}",
        "  arms " + "  ".join(f"{a} {n}" for a, n in s.arms.items()),
        "  outcome timepoints " + (", ".join(s.timepoints) or "none (scoring only)"),
    ]
    if s.missing_share:
        lines.append("  missing or invalid " + ", ".join(f"{c} {v:.0%}" for c, v in s.missing_share.items()))
    if s.unknown_columns:
        lines.append("  unknown columns kept, not used: " + ", ".join(s.unknown_columns)
                     + " (declare them under extra_features in a --mapping file to use them)")
    if not s.problems:
        lines.append("  no problems")
        return "\n".join(lines)
    lines.append(f"  {s.problems} problems in {s.problem_rows} rows: "
                 + ", ".join(f"{c} {n}" for c, n in s.problems_by_column.items()))
    lines += ["    " + format_problem(p) for _, p in cohort.problems.head(max_problems).iterrows()]
    if s.problems > max_problems:
        where = f"all of them in {problems_file}" if problems_file else "write them all with --problems FILE"
        lines.append(f"    … {s.problems - max_problems} more ({where})")
    return "\n".join(lines)


def write_problems(problems: pd.DataFrame, path: str | Path) -> None:
    """Write problems as CSV with columns ``row, patient_id, column, value, problem``."""
    safe = spreadsheet_safe(problems)
    write_aside(path, lambda tmp: safe.to_csv(tmp, index=False))


def run_validate(cohort_path: str | Path, mapping_path: str | Path | None = None,
                 problems_path: str | Path | None = None) -> tuple[ValidatedCohort, CohortSummary]:
    """Validate a cohort file, optionally writing its problems; see :func:`load_cohort` for errors."""
    refuse_overwriting({"--problems": problems_path}, [cohort_path, mapping_path])
    cohort = load_cohort(cohort_path, mapping_path)
    summary = summarise(cohort)
    if problems_path is not None:
        write_problems(cohort.problems, problems_path)
    log.info("validated %s: %d rows, %d problems", cohort_path, summary.rows, summary.problems)
    return cohort, summary
