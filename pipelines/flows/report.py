"""The ``report`` flow: copy a training run's HTML report and SHAP tables out of the tracking store."""

from __future__ import annotations

import os
from pathlib import Path

from ketamine_response.features.errors import CohortFileError, UsageError
from ketamine_response.pipelines import listing, store, tracking

REPORT_FOLDERS = ("report", "shap")
OPTIONAL_FOLDERS = ("benefit", "durability")  # runs with a placebo arm; a time to relapse
PAGE = "index.html"


def run_report(run_id: str, out: str | Path) -> Path:
    """Write *run_id*'s report page to ``out/index.html`` and its shap/, benefit/ (and durability/) tables
    beside it; returns the page.

    The run keeps its page under the artifact folder ``report/``; ``report --out DIR`` is asked for DIR
    itself, so the page is lifted out of that folder (it is self-contained: nothing links back to it).

    Raises
    ------
    UsageError
        If *out* is a file.
    TrackingError
        If the run or its artifacts cannot be read.
    CohortFileError
        If the page cannot be moved into *out*.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: not a folder. The report is a folder (index.html and its tables); give a new "
                         "folder's path, or an existing folder's.")
    store.open_store()
    run_id = listing.find_runs([run_id])[0]["run_id"]  # a unique prefix, as `runs` prints and `compare` takes
    tracking.download_artifacts(run_id, REPORT_FOLDERS, out, OPTIONAL_FOLDERS)
    folder, page = out / "report", out / PAGE
    try:
        os.replace(folder / PAGE, page)
        if not any(folder.iterdir()):
            folder.rmdir()
    except OSError as exc:
        raise CohortFileError(f"{page}: the report page cannot be written there ({exc.strerror or exc}).") from None
    return page
