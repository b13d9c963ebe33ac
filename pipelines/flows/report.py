"""The ``report`` flow: copy a training run's HTML report and SHAP tables out of the tracking store."""

from __future__ import annotations

from pathlib import Path

from ketamine_response.pipelines import tracking

REPORT_FOLDERS = ("report", "shap")
OPTIONAL_FOLDERS = ("benefit", "durability")  # runs with a placebo arm; a time to relapse


def run_report(run_id: str, out: str | Path) -> Path:
    """Write *run_id*'s report/, shap/ and benefit/ artifacts into *out*; returns the report's index.html."""
    tracking.open_store()
    out = Path(out)
    tracking.download_artifacts(run_id, REPORT_FOLDERS, out, OPTIONAL_FOLDERS)
    return out / "report" / "index.html"
