"""Where MLflow runs are written: store, experiments, runs, tags, artifacts, the UI's shared view.

The registry (:mod:`.registry`), what the store holds read back (:mod:`.listing`) and the logged model
(:mod:`ketamine_response.models.wrapper`) are the only other modules that import MLflow.
Nothing patient-level is passed here: only aggregate metrics, the config, column names,
feature metadata and a synthetic input example.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ketamine_response.features.errors import Terminated, TrackingError, termination_in

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


def store_uri(root: str | Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite store at ``<root>/mlruns/mlflow.db``."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    root = Path(root or Path.cwd()).resolve()
    return f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"


# MLflow 3 opens an experiment on its GenAI overview unless it is marked as model training
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}


def redact(uri: str) -> str:
    """*uri* with any password replaced by ``***``: for messages and output, never for connecting.

    SQLAlchemy's parser reads the URI as the database drivers do (a password may hold ``/`` or ``#``;
    ``@ : % ?`` percent-encoded), and ``password`` in the query string is masked too. A URI it cannot
    parse, or whose host still holds an ``@`` (an unencoded ``@`` in the password), is shown as
    ``SCHEME://***``: never print what might be a secret. A URI with nothing to hide comes back as given.
    """
    import re

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(uri)
    except (ArgumentError, ValueError):
        url = None
    if url is None or "@" in (url.host or ""):
        if "://" not in uri and "@" not in uri and "password" not in uri.lower():
            return uri  # a local path or a bare word such as 'databricks': no userinfo to hide
        scheme = uri.split("://", 1)[0] if "://" in uri else ""
        return f"{scheme}://***" if re.fullmatch(r"[A-Za-z][\w+.-]*", scheme) else "***"
    hidden = {key: "***" for key in url.query if "password" in key.lower()}
    if url.password is None and not hidden:
        return uri
    shown = url.set(query={**url.query, **hidden}).render_as_string(hide_password=True)
    return shown.replace("%2A%2A%2A", "***")  # the query's mask, percent-encoded by the renderer


@contextlib.contextmanager
def _store_lock(local: Path | None) -> Iterator[None]:
    """Serialise opening a local SQLite store across processes. Two processes creating a fresh store at
    once race on MLflow's schema migration and can leave it half-migrated; an exclusive lock on a file
    beside it (fcntl, held only while the store is opened and the experiment found or created) lets
    the first one migrate and the others find it ready. Servers (PostgreSQL) need no lock."""
    if local is None:
        yield
        return
    import fcntl

    try:
        handle = open(local.with_name(local.name + ".lock"), "a+b")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise TrackingError(f"tracking store {local} cannot be opened ({exc.strerror or exc}). Check that its "
                            "folder is writable, or set MLFLOW_TRACKING_URI.") from None
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def open_store(create: bool = False) -> str:
    """Point MLflow at the store and return its URI. Without *create*, a local store that does not exist
    is a TrackingError that creates nothing (scoring, listing and reports need a trained model)."""
    import mlflow

    # MLflow's own INFO chatter (migrations, pickling notices) would drown the CLI's output.
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # no download bars in the CLI's output
    uri = store_uri()
    local = _local_path(uri)
    existed = local is None or local.is_file()
    if local is not None and not create and not existed:
        raise TrackingError(f"no tracking store at {local}. Train a model first, cd to the project folder that "
                            "holds mlruns/, or set MLFLOW_TRACKING_URI to your store or server.")
    try:
        if local is not None:
            local.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TrackingError(f"tracking store {local} cannot be opened: its folder cannot be created "
                            f"({exc.strerror or exc}). Check that it is writable, or set MLFLOW_TRACKING_URI.") from None
    mlflow.set_tracking_uri(uri)
    if local is None or local.is_file():
        _sweep(local)
    else:  # created now: it holds no run yet
        _create_store(local)
    return uri


def _local_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def open_experiment(name: str, create: bool = True) -> str:
    """Point MLflow at the store and return the id of experiment *name*.

    With *create* (training) a missing store or experiment is created, the experiment tagged as model
    training; without it (listing) a missing one is a TrackingError listing the known experiments.
    """
    uri = open_store(create)
    with _store_lock(_local_path(uri)):
        return _get_or_create(name, uri, create)


def _create_store(local: Path) -> None:
    """Create the local store *local* if it does not exist: migrated under a hidden name beside it, then linked
    into place finished.

    MLflow builds a new store in dozens of alembic steps that are not one transaction: a stop part-way
    (SIGTERM, Ctrl-C, a full disk) left a half-migrated file that every later command refused ("table
    _alembic_tmp_experiments already exists"). Under the store's lock, so no other process of ours builds one
    meanwhile and any partial file there is a killed process's leftover. Linked, not renamed: a store that MLflow's
    own server made meanwhile, outside our lock, stays the store.
    """
    import secrets

    with _store_lock(local):
        if local.is_file():  # another command made it while this one waited for the lock
            return
        for stale in local.parent.glob(f".{local.name}.*.partial*"):
            stale.unlink(missing_ok=True)
        partial = local.with_name(f".{local.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
        try:
            _migrate(partial)
            os.link(partial, local)
        except FileExistsError:
            pass
        except Exception as exc:  # a stop is not an Exception: it goes on as it came
            raise TrackingError(f"tracking store {local} cannot be opened: it cannot be created ({type(exc).__name__}: "
                                f"{exc}). Check that its folder is writable with free space, or set "
                                "MLFLOW_TRACKING_URI.") from None
        finally:
            for leftover in (partial, *(partial.with_name(partial.name + s) for s in ("-journal", "-wal", "-shm"))):
                with contextlib.suppress(OSError):
                    leftover.unlink(missing_ok=True)


def _migrate(path: Path) -> None:
    """An MLflow store at *path*, its schema at MLflow's head, with every connection to it closed."""
    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{path}"
    try:
        # the artifact root MLflow gives a store it creates outside a server (only its Default experiment uses it)
        SqlAlchemyStore(uri, DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH)
    finally:  # MLflow caches one engine per URI: this one's file is renamed away, so its engine goes too
        engine = getattr(SqlAlchemyStore, "_engine_map", {}).pop(uri, None)
        if engine is not None:
            engine.dispose()


def _get_or_create(name: str, uri: str, create: bool) -> str:
    import mlflow

    try:
        found = mlflow.get_experiment_by_name(name)
        if found is not None:
            if create and found.tags.get("mlflow.experimentKind") is None:  # made by an older version
                for key, value in EXPERIMENT_KIND.items():
                    mlflow.MlflowClient().set_experiment_tag(found.experiment_id, key, value)
            return found.experiment_id
        if not create:
            known = ", ".join(sorted(e.name for e in mlflow.search_experiments())) or "none"
            raise TrackingError(f"no experiment '{name}' in {redact(uri)} (experiments: {known}). Check the name.")
        local = _local_path(uri)
        location = (local.parent / "artifacts").as_uri() if local is not None else None
        try:
            return mlflow.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
        except mlflow.exceptions.MlflowException as exc:
            # two members training at once on a server (no file lock there): the other one created it first
            again = mlflow.get_experiment_by_name(name) if exc.error_code == "RESOURCE_ALREADY_EXISTS" else None
            if again is None:
                raise
            return str(again.experiment_id)
    except (TrackingError, Terminated):
        raise
    except Exception as exc:  # MLflow raises many types for an unusable store
        raise TrackingError(f"tracking store {redact(uri)} cannot be opened ({type(exc).__name__}: "
                            f"{str(exc).replace(uri, redact(uri))}). Check MLFLOW_TRACKING_URI, or that mlruns/ "
                            "is writable.") from None


# Where a run's process runs, as tags of the run: the next command to open the store closes the run
# if that process has ended without closing it (SIGKILL, the OOM killer, a power cut). No patient data.
PROCESS_TAGS = ("process.host", "process.pid", "process.start")


def process_tags() -> dict[str, str]:
    """This process's host name, pid and start (``<boot id>/<start in clock ticks>``, "" where there is
    no /proc): the start tells this process from a later one given the same pid, or one after a reboot."""
    import socket

    return dict(zip(PROCESS_TAGS, (socket.gethostname(), str(os.getpid()), _running_as(os.getpid()) or ""), strict=True))


def _running_as(pid: int) -> str | None:
    """The start of process *pid* as :func:`process_tags` records it; "" where it runs but its start cannot be
    read (no /proc), None when it has ended (a zombie has ended too: only its exit status is left)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        if Path("/proc/self/stat").exists():  # Linux: no such process
            return None
        try:
            os.kill(pid, 0)  # signal 0: only asks whether it exists
        except ProcessLookupError:
            return None
        except PermissionError:  # another user's process
            pass
        return ""
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces and ")"
    return None if fields[0] in ("Z", "X") else f"{boot}/{fields[19]}"


def _ended(tags: dict[str, str], host: str) -> bool:
    """Whether the process a run's tags name ran on *host* and has ended. Runs from another host, and runs
    without the tags (evaluations and trainings before they were recorded), are left alone: we cannot tell."""
    pid = tags.get("process.pid", "")
    if tags.get("process.host") != host or not pid.isdigit():
        return False
    now, then = _running_as(int(pid)), tags.get("process.start", "")
    return now is None or bool(now and then and now != then)  # a different start: the pid was reused


def close_abandoned_runs() -> list[str]:
    """Mark KILLED, with a description saying why, the RUNNING runs of this store whose process has ended
    without closing them; return their ids. One search for the RUNNING runs of every experiment."""
    import socket

    import mlflow

    client = mlflow.MlflowClient()
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    host, closed = socket.gethostname(), []
    for run in client.search_runs(experiments, "attributes.status = 'RUNNING'", max_results=1000):
        tags = run.data.tags
        # the process is gone, so it cannot close the run any more: re-read in case it did just before it ended
        if not _ended(tags, host) or client.get_run(run.info.run_id).info.status != "RUNNING":
            continue
        what = "evaluation" if tags.get("run_kind") == "evaluation" else "training"
        note = (f"**{what.capitalize()} killed**: the {what} process (pid {tags['process.pid']} on {host}) ended "
                "without closing the run: killed or crashed.")
        client.set_tag(run.info.run_id, "mlflow.note.content", note)
        if "progress" in tags:  # not the last stage it reached, which reads as still running
            client.set_tag(run.info.run_id, "progress", "killed (process ended)")
        client.set_terminated(run.info.run_id, "KILLED")
        closed.append(run.info.run_id)
    return closed


def _sweep(local: Path | None) -> None:
    """:func:`close_abandoned_runs` under the store's lock (a store being created is not read half-made).
    Housekeeping only: a store it cannot read or write is the command's own to report, so nothing is raised."""
    try:
        with _store_lock(local):
            closed = close_abandoned_runs()
    except Terminated:  # a stop, not an unusable store
        raise
    except Exception as exc:  # MLflow raises many types for an unusable store
        log.debug("runs left RUNNING by ended processes were not checked: %s: %s", type(exc).__name__, exc)
        return
    for run_id in closed:
        log.info("run %s: its process ended without closing it; marked KILLED", run_id)


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
