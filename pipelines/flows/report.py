"""The ``report`` flow: copy a training run's HTML report and SHAP tables out of the tracking store."""

from __future__ import annotations

from pathlib import Path

from pipelines import tracking

REPORT_FOLDERS = ("report", "shap")


def run_report(run_id: str, out: str | Path, experiment: str = tracking.DEFAULT_EXPERIMENT) -> Path:
    """Write *run_id*'s report/ and shap/ artifacts into *out*; returns the report's index.html."""
    tracking.open_experiment(experiment)
    out = Path(out)
    tracking.download_artifacts(run_id, REPORT_FOLDERS, out)
    return out / "report" / "index.html"
