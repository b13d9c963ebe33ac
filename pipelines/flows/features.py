"""The ``features`` flow: load → validate → derive → write."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ketamine_response.features.build import FeatureTable, build_feature_table, feature_dictionary
from ketamine_response.features.cohort.reader import refuse_overwriting, write_table
from ketamine_response.features.cohort.validation import ValidatedCohort, load_cohort
from ketamine_response.features.errors import CohortRowsError
from ketamine_response.features.registry import STATIC_FEATURES, early_course_features
from ketamine_response.features.tasks import parse_target

log = logging.getLogger(__name__)


def usable_rows(cohort: ValidatedCohort, drop_invalid: bool) -> tuple[pd.DataFrame, int]:
    """The rows a pipeline may use, and how many invalid rows were left out.

    Raises
    ------
    CohortRowsError
        If rows have problems and *drop_invalid* is False.
    """
    bad = cohort.invalid_rows
    if len(bad) and not drop_invalid:
        shown = ", ".join(map(str, bad[:10])) + (" …" if len(bad) > 10 else "")
        raise CohortRowsError(
            f"{cohort.source}: {len(bad)} rows have problems (rows {shown}). Run "
            f"'ketamine-response validate {cohort.source} --problems problems.csv' to list them; fix them, "
            "or pass --drop-invalid to leave those rows out."
        )
    if len(bad):
        log.warning("%s: left out %d invalid rows (--drop-invalid)", cohort.source, len(bad))
    return cohort.valid_table(), len(bad)


def run_features(cohort_path: str | Path, target: str, out: str | Path | None = None,
                 mapping_path: str | Path | None = None, drop_invalid: bool = False) -> tuple[FeatureTable, int]:
    """Build the feature table for *target*; write it to *out* (CSV or Parquet) when given.

    Returns the table and the number of invalid rows left out.
    """
    refuse_overwriting({"--out": out}, [cohort_path, mapping_path])
    parsed = parse_target(target)
    cohort = load_cohort(cohort_path, mapping_path)
    table, dropped = usable_rows(cohort, drop_invalid)
    built = build_feature_table(table, parsed, cohort.extra_features, source=str(cohort_path))
    if out is not None:
        write_table(built.frame, out)
    for note in built.notes:
        log.info(note)
    return built, dropped


def full_dictionary() -> pd.DataFrame:
    """The dictionary of every registered feature (early-course shown for a generic timepoint)."""
    return feature_dictionary(STATIC_FEATURES + early_course_features(["<tp>"]))
