"""What MLflow runs hold and how they are written: names, runs, tags, artifacts, the UI's shared view.

The store itself (opening and creating it, its experiments, closing abandoned runs: :mod:`.store`), the registry
(:mod:`.registry`), what the store holds read back (:mod:`.listing`) and the logged model
(:mod:`ketamine_response.models.wrapper`) are the only other modules that import MLflow.
Nothing patient-level is passed here: only aggregate metrics, the config, column names,
feature metadata and a synthetic input example.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ketamine_response.features.errors import Terminated, TrackingError, termination_in
from ketamine_response.pipelines.store import open_experiment, process_tags, redact, store_uri

if TYPE_CHECKING:  # pandas is not imported at run time, so the CLI can import this module quickly
    import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "ketamine-response"
REQUIRED_METRICS = ("auroc_active", "auroc_active_p", "auroc_active_permutations",
                    "auroc", "auroc_ci_low", "auroc_ci_high", "auprc", "brier", "calibration_slope",
                    "calibration_intercept", "balanced_accuracy", "n_courses", "n_events")
PIP_PACKAGES = ("scikit-learn", "lightgbm", "pandas", "numpy", "pyarrow", "mlflow", "scipy", "pyyaml", "econml")


def registered_name(experiment: str, target: str) -> str:
    """The registered model the runs of *target* in *experiment* are versions of: one per experiment and target,
    so versions trained in two experiments (synthetic trials, a real cohort) never share a champion.
    ``ketamine-response.<experiment>.<target>``; ``ketamine-response.<target>`` for the default experiment.

    The registry refuses ``/`` and ``:`` in a name, and ``@`` would read as an alias in ``models:/NAME@ALIAS``:
    any character of the experiment's name outside letters, digits, ``_``, ``.`` and ``-`` becomes ``-``."""
    import re

    parts = (DEFAULT_EXPERIMENT, target) if experiment == DEFAULT_EXPERIMENT else (
        DEFAULT_EXPERIMENT, re.sub(r"[^A-Za-z0-9_.-]", "-", experiment), target)
    return ".".join(parts)


# A run name is its identity in the UI's sorted table, which cuts long names at the right: what tells
# runs apart (target, data origin, data digest, when) comes in that order, children lead with the family.
NAME_SEPARATOR = " · "


def origin_label(table: pd.DataFrame, source: str | Path) -> str:
    """``synthetic:<scenario>`` for a cohort ``synth`` wrote (its ``synthetic`` marker column says
    "<scenario> seed <n>"), else ``real:<file stem>``: the source, never a patient-level value."""
    marks = sorted({str(m).split(" ")[0] for m in table["synthetic"].dropna().unique()}) if "synthetic" in table else []
    return "synthetic:" + "+".join(marks) if marks else f"real:{Path(source).stem}"


def run_name(target: str, origin: str, digest: str, when: datetime) -> str:
    """A parent run's name, e.g. ``response_24h · synthetic:strong · 3f9a1c · 2026-12-06 14:05``."""
    return NAME_SEPARATOR.join((target, origin, digest[:6], when.strftime("%Y-%m-%d %H:%M")))


def child_name(family: str, parent: str) -> str:
    """A family's child run name, family first, then its parent's name (``elastic_net · response_24h · synthetic:
    strong · 3f9a1c · 2026-12-06 14:05``): a table that cuts the end still shows the family, and no two runs'
    children share a name."""
    return f"{family}{NAME_SEPARATOR}{parent}"


def package_versions() -> dict[str, str]:
    """Installed versions of the stack, for tags and pip requirements."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in PIP_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def git_commit() -> str:
    """The commit of the code that ran, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _metric(value: float) -> float:
    # four decimals is what a reader compares; the UI shows every stored digit (0.70819680...)
    return float(round(float(value), 4))


def log_run_content(metrics: dict[str, float], tables: dict[str, pd.DataFrame], figures: dict[str, Any],
                    texts: dict[str, str]) -> None:
    """Metrics (rounded), CSV tables, figures and texts into the active run.

    The files are written into one temporary folder and logged with one ``log_artifacts`` call: ``log_text`` and
    ``log_figure`` make a temporary folder and an upload per file (about 40 a training run). Each file is written
    as they write it (UTF-8 text; a figure by its own ``savefig``), or as given (PNG bytes).
    """
    import tempfile

    import mlflow

    mlflow.log_metrics({k: _metric(v) for k, v in metrics.items()})
    with tempfile.TemporaryDirectory() as folder:
        def place(name: str) -> Path:
            path = Path(folder, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            return path

        for name, table in tables.items():
            place(name).write_text(table.to_csv(index=False), encoding="utf-8")
        for name, fig in figures.items():  # a figure, or its PNG already rendered for the report
            if isinstance(fig, bytes):
                place(name).write_bytes(fig)
            else:
                fig.savefig(place(name))
        for name, text in texts.items():
            place(name).write_text(text, encoding="utf-8")
        if tables or figures or texts:
            mlflow.log_artifacts(folder)


@contextlib.contextmanager
def training_run(experiment_id: str, run_name: str, params: dict[str, str], tags: dict[str, str]) -> Iterator[str]:
    """The parent run of one training, RUNNING from the first fit, so the UI shows it while it trains.

    It ends FINISHED, or FAILED (KILLED on Ctrl-C) with the error as its description: a failed training
    leaves a record of what was tried. Its process is tagged (:func:`process_tags`): killed where it could
    not close the run (SIGKILL), the next command to open the store marks it KILLED. Yields the run id.
    """
    import mlflow

    # created with its tags and a first progress, so the UI never shows a RUNNING run without them
    run = mlflow.start_run(experiment_id=experiment_id, run_name=run_name,
                           tags={**tags, **process_tags(), "progress": "starting"},
                           description=f"Training `{tags.get('target', run_name)}`: running (see the tag `progress`).")
    try:
        mlflow.log_params(params)
        yield run.info.run_id
    except BaseException as raised:
        exc = termination_in(raised) or raised  # a SIGTERM a library wrapped in its own error
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) and not isinstance(exc, Terminated) else "FAILED"
        with contextlib.suppress(Exception):  # a store that broke mid-run must not hide the original error
            mlflow.set_tags({"mlflow.note.content": f"**Training {status.lower()}**: {type(exc).__name__}: "
                                                    f"{str(exc)[:1000]}",
                             "progress": f"{status.lower()} ({type(exc).__name__})"})  # not the last stage it reached
            mlflow.end_run(status)
        if isinstance(exc, OSError):  # a full or read-only store is the user's machine, not a bug (exit 2)
            raise TrackingError(f"tracking store {redact(store_uri())}: cannot be written ({exc.strerror or exc}). "
                                "Free space or fix permissions under mlruns/, or set MLFLOW_TRACKING_URI.") from None
        if exc is not raised:
            raise exc from None
        raise
    mlflow.set_tag("progress", "done")  # the last stage's message would read as still running
    mlflow.end_run("FINISHED")


def set_progress(message: str) -> None:
    """What the active run is doing now, as its ``progress`` tag (visible in the UI while it trains)."""
    import mlflow

    mlflow.set_tag("progress", message[:500])


def set_run_tags(tags: dict[str, str]) -> None:
    """Tags of the active run (``mlflow.note.content`` is its markdown description)."""
    import mlflow

    mlflow.set_tags(tags)


# The runs table's columns, in this order where the experiment's runs carry them (binary, continuous,
# durability targets); then the tags that say which registered version a run made and its alias.
RUNS_VIEW_METRICS = ("auroc_active", "auroc_active_ci_low", "auroc_active_ci_high", "auroc_active_p", "auroc",
                     "r2_pct_change", "c_index_active", "calibration_slope_active", "c_for_benefit", "n_courses")
RUNS_VIEW_TAGS = ("data_source", "registered_model", "alias")
RUNS_VIEW_KEY = "training-runs"


def share_runs_view(experiment: str) -> str | None:
    """Store the runs table's headline columns as a shared view of *experiment* and return the experiment id
    (None when the store or the experiment does not exist yet: nothing is created).

    MLflow 3.17 keeps the table's columns in the browser (localStorage) and takes none from the URL, except
    through its "share view" feature: the view is an experiment tag ``mlflow.sharedViewState.<key>`` (JSON)
    that the page applies when opened with ``?viewStateShareKey=<key>``. A fresh browser profile then shows
    the metric columns without a plugin or a setting.
    """
    import json

    import mlflow

    try:
        experiment_id = open_experiment(experiment, create=False)
    except TrackingError:
        return None
    client = mlflow.MlflowClient()
    runs = client.search_runs([experiment_id], max_results=200)
    present = {k for r in runs for k in r.data.metrics}
    metrics = [m for m in RUNS_VIEW_METRICS if m in present] or list(RUNS_VIEW_METRICS[:3])
    columns = [f"metrics.`{m}`" for m in metrics] + [f"tags.`{t}`" for t in RUNS_VIEW_TAGS]
    client.set_experiment_tag(experiment_id, f"mlflow.sharedViewState.{RUNS_VIEW_KEY}",
                              json.dumps({"selectedColumns": columns}))
    return experiment_id


def log_children(experiment_id: str, params: dict[str, str], tags: dict[str, str],
                 children: dict[str, dict[str, Any]], descriptions: dict[str, str]) -> None:
    """One nested run per model family of the active (parent) run, named by :func:`child_name`."""
    import mlflow

    parent = mlflow.active_run()
    for family, content in children.items():
        name = child_name(family, parent.info.run_name if parent else tags["target"])
        # created with its tags (one store write fewer than setting them after)
        with mlflow.start_run(experiment_id=experiment_id, run_name=name, nested=True,
                              tags={**tags, **process_tags(), "family": family},
                              description=descriptions.get(family, "")):
            mlflow.log_params(params)
            log_run_content(**content)


def active_run() -> tuple[str, str]:
    """(run id, artifact URI) of the active run."""
    import mlflow

    run = mlflow.active_run()
    if run is None:
        raise RuntimeError("no active MLflow run")
    return run.info.run_id, run.info.artifact_uri


def download_artifacts(run_id: str, folders: tuple[str, ...], out: str | Path, optional: tuple[str, ...] = ()) -> None:
    """Copy artifact *folders* of run *run_id* into *out*, and the *optional* ones the run has. A failure or a stop
    removes what the copy added: *out* if it made it, else the entries it made in it."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    out = Path(out)
    before = set(out.iterdir()) if out.is_dir() else set() if out.exists() else None
    try:
        out.mkdir(parents=True, exist_ok=True)
        present = {a.path for a in mlflow.artifacts.list_artifacts(run_id=run_id)} if optional else set()
        for folder in (*folders, *(f for f in optional if f in present)):
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=folder, dst_path=str(out))
    except BaseException as exc:  # a stop (SIGTERM, Ctrl-C) too
        _remove_added(out, before)  # no half-filled folder that looks like a report
        if not isinstance(exc, MlflowException | OSError):
            raise
        raise TrackingError(f"run {run_id}: {', '.join(folders)} cannot be copied from {store_uri()} to {out} "
                            f"({getattr(exc, 'message', None) or exc}).") from None


def _remove_added(out: Path, before: set[Path] | None) -> None:
    """*out* if it did not exist (*before* None), else the entries added to it since *before* was listed."""
    if before is None:
        shutil.rmtree(out, ignore_errors=True)
        return
    for entry in set(out.iterdir()) - before if out.is_dir() else ():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):  # the error being reported is the copy's, not this one
                entry.unlink(missing_ok=True)


def evaluation_run(experiment_id: str, run_name: str, tags: dict[str, str], params: dict[str, str],
                   metrics: dict[str, float], tables: dict[str, pd.DataFrame]) -> str:
    """Log one finished evaluation run (aggregate metrics and tables only) and return its id."""
    import mlflow

    try:
        with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags={**tags, **process_tags()}):
            mlflow.log_params(params)
            log_run_content({k: v for k, v in metrics.items() if v == v}, tables, {}, {})  # NaN: omitted
            return active_run()[0]
    except OSError as exc:  # a full or read-only store is the user's machine, not a bug (exit 2)
        raise TrackingError(f"tracking store {redact(store_uri())}: cannot be written ({exc.strerror or exc}). "
                            "Free space or fix permissions under mlruns/, or set MLFLOW_TRACKING_URI.") from None
