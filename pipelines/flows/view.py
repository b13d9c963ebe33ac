"""The ``view`` flow: a scores file (``score`` with one or more ``--model``) as a per-patient benefit-and-harm page."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ketamine_response.features.cohort.reader import write_aside
from ketamine_response.features.errors import CohortFileError, UsageError
from ketamine_response.pipelines.reporting.patient_view import render, sections

MAX_CARDS = 500  # a page a clinician reads; pick patients with --patient for a bigger file


def run_view(scores_path: str | Path, out: str | Path, patients: tuple[str, ...] = ()) -> int:
    """Write the view of *scores_path* (only *patients*' courses when given) to *out*; returns the courses shown."""
    scores_path, out = Path(scores_path), Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise UsageError(f"{out}: the view is an HTML page; give --out a .html name.")
    try:
        scores = pd.read_csv(scores_path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise CohortFileError(f"{scores_path}: cannot be read as a scores file ({exc}). Give the CSV that "
                              "'ketamine-response score' wrote.") from None
    if "patient_id" not in scores or scores.empty or not any(sections(scores.iloc[0])):
        raise UsageError(f"{scores_path}: no patient_id column or no prediction columns (probability, relapse_free_28d, "
                         "probability_<harm>); give a file written by 'ketamine-response score'.")
    if patients:
        unknown = sorted(set(patients) - set(scores["patient_id"]))
        if unknown:
            raise UsageError(f"{scores_path}: no course of patient(s) {', '.join(unknown)} in the file.")
        scores = scores[scores["patient_id"].isin(patients)]
    if len(scores) > MAX_CARDS:
        raise UsageError(f"{scores_path}: {len(scores)} courses; the view shows at most {MAX_CARDS}. Pick patients "
                         "with --patient ID (repeatable).")
    page = render(scores, scores_path.name)
    write_aside(out, lambda partial: partial.write_text(page, encoding="utf-8"))
    return len(scores)
