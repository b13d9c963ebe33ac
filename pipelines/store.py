"""The store itself: where it is, opening it (a new local store created finished, under a lock), its
experiments, and closing the runs of processes that ended without closing them.

One of the modules that import MLflow (with :mod:`.tracking`, :mod:`.registry`, :mod:`.listing` and
:mod:`ketamine_response.models.wrapper`). Nothing patient-level passes here.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from ketamine_response.features.errors import Terminated, TrackingError

log = logging.getLogger(__name__)


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
    is a TrackingError that creates nothing (scoring, listing and reports need a trained model); with it, the
    store is created finished (:func:`_create_store`)."""
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
            with contextlib.suppress(OSError):
                stale.unlink(missing_ok=True)
        partial = local.with_name(f".{local.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")
        try:
            _migrate(partial)
            _publish(partial, local)
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


def _publish(partial: Path, local: Path) -> None:
    """Put the finished store in place: a hard link, which fails if a store is there already; where the file system
    has no hard links (FAT, some network shares), a rename, which only MLflow's own server could race."""
    try:
        os.link(partial, local)
    except FileExistsError:
        raise
    except OSError:
        if local.exists():
            raise FileExistsError(local) from None
        os.replace(partial, local)


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
