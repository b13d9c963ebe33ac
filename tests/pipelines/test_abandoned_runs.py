"""A run whose process ended without closing it (SIGKILL, the OOM killer) is marked KILLED, with why, by the
next command that opens the store; a run whose process still runs, or ran on another host, is left alone.

A real SQLite MLflow store under tmp_path; the ended process is a real one that has exited and been reaped."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from ketamine_response.pipelines import store, tracking


@pytest.fixture
def db(tmp_path, monkeypatch):
    """A store's path under tmp_path, MLFLOW_TRACKING_URI pointing at it (MLflow pointed back afterwards)."""
    import mlflow

    before = os.environ.get("MLFLOW_TRACKING_URI")
    path = tmp_path / "mlruns" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{path}")
    yield path
    monkeypatch.undo()
    if before:
        mlflow.set_tracking_uri(before)


@pytest.fixture
def experiment(db):
    """The id of an experiment in a fresh store."""
    return store.open_experiment("sweep")


def ended_pid() -> int:
    """The pid of a process that has run, exited and been reaped."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def open_run(experiment: str, **process: str) -> str:
    from mlflow import MlflowClient

    run = MlflowClient().create_run(experiment, tags={"progress": "3/15 fits", "mlflow.note.content": "running",
                                                      **{f"process.{k}": v for k, v in process.items()}})
    return str(run.info.run_id)


def state(run_id: str) -> tuple[str, str, str]:
    from mlflow import MlflowClient

    run = MlflowClient().get_run(run_id)
    return run.info.status, run.data.tags.get("mlflow.note.content", ""), run.data.tags.get("progress", "")


def test_the_next_command_closes_only_runs_whose_process_ended(experiment):
    host, own = socket.gethostname(), store.process_tags()
    gone = ended_pid()
    runs = {"ended": open_run(experiment, host=host, pid=str(gone), start=own["process.start"]),
            "reused pid": open_run(experiment, host=host, pid=str(os.getpid()), start="another-boot/12345"),
            "this process": open_run(experiment, **{k.removeprefix("process."): v for k, v in own.items()}),
            "other host": open_run(experiment, host=f"not-{host}", pid=str(gone), start=""),
            "untagged": open_run(experiment)}
    store.open_store()  # what every command does first (runs, train, score, compare, ...)
    after = {name: state(run_id) for name, run_id in runs.items()}
    for name in ("ended", "reused pid"):
        status, note, progress = after[name]
        pid = gone if name == "ended" else os.getpid()
        assert status == "KILLED" and progress == "killed (process ended)", (name, after[name])
        assert note == (f"**Training killed**: the training process (pid {pid} on {host}) ended without closing "
                        "the run: killed or crashed."), note
    for name in ("this process", "other host", "untagged"):
        assert after[name] == ("RUNNING", "running", "3/15 fits"), (name, after[name])


def test_a_training_run_records_its_process_and_ends_finished(experiment):
    from mlflow import MlflowClient

    with tracking.training_run(experiment, "recorded", {"seed": "1"}, {"target": "response_24h"}) as run_id:
        tags = MlflowClient().get_run(run_id).data.tags
        assert tags["process.pid"] == str(os.getpid()) and tags["process.host"] == socket.gethostname()
        assert tags["process.start"] == store.process_tags()["process.start"] != ""
        store.open_store()  # its own process runs: left RUNNING
        assert MlflowClient().get_run(run_id).info.status == "RUNNING"
    assert MlflowClient().get_run(run_id).info.status == "FINISHED"


def test_a_store_the_sweep_cannot_read_fails_as_the_command_would(db):
    from ketamine_response.features.errors import TrackingError

    db.parent.mkdir()
    db.write_text("not a database")
    store.open_store()  # housekeeping only: nothing raised here ...
    with pytest.raises(TrackingError, match="cannot be opened"):  # ... the command's own step reports it
        store.open_experiment("sweep", create=False)
