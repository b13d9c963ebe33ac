"""Fault injection through the real command line (helpers in :mod:`tests.faults.probes`).

Shared here: a small cohort, a full disk (a 2 MB tmpfs; root only) and one trained model.

The model is trained in a background thread so the other probes overlap it: its first attempt is
killed with SIGKILL mid-fit (``test_interruptions`` checks what that left in the registry), its rerun
registers the model the scoring probes use. Tests that need it are moved after the others.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.faults.probes import EXPERIMENT, FIT_MARKER, LEAN_CONFIG, MODEL_NAME, TARGET, cli, descendants, describe, kill, start, survivors
from tests.limits import HANG_S

FAULTS = Path(__file__).resolve().parent

# -- shared inputs -------------------------------------------------------------------------------

@pytest.fixture(scope="package")
def cohort(store, tmp_path_factory) -> Path:
    """200 synthetic courses (valid); the training cohort and the good input of the output probes."""
    path = tmp_path_factory.mktemp("faults-cohort") / "cohort.csv"
    done = cli("synth", "--n", 200, "--seed", 5, "--out", path)
    assert done.returncode == 0, describe(done)
    return path


def _fill(path: Path) -> None:
    with open(path, "wb", buffering=0) as handle:
        for block in (1 << 16, 1 << 12, 1):
            try:
                while True:
                    handle.write(b"\0" * block)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise


@pytest.fixture(scope="package")
def full_disk(tmp_path_factory):
    """A 2 MB tmpfs filled to the last byte: any file written there hits ENOSPC. Needs root (mount)."""
    if os.geteuid() != 0:
        pytest.skip("a full disk needs a tmpfs mount, and mounting needs root")
    mount = tmp_path_factory.mktemp("full-disk")
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True)
    except OSError as exc:
        pytest.skip(f"cannot run mount: {exc}")
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip() or done.returncode}")
    try:
        _fill(mount / "filler.bin")
        assert os.statvfs(mount).f_bavail == 0
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(mount)], capture_output=True)


# -- the model: trained in the background, first attempt killed mid-fit -----------------------------

@dataclass
class Model:
    uri: str
    run_id: str
    version: int


@dataclass
class Training:
    """What the background training did: the killed attempt, then the rerun."""

    cohort: Path
    folder: Path
    done: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    proc: subprocess.Popen | None = None
    killed: bool | None = None  # False: the first attempt finished before the kill
    killed_stderr: str = ""
    versions_before: set[int] = field(default_factory=set)
    versions_after_kill: set[int] = field(default_factory=set)
    runs_before: dict[str, str] = field(default_factory=dict)  # run id -> status, in the suite's experiment
    runs_after_kill: dict[str, str] = field(default_factory=dict)
    workers: set[int] = field(default_factory=set)  # the killed attempt's worker processes, and what outlived it
    orphans: set[int] = field(default_factory=set)
    listed: subprocess.CompletedProcess | None = None  # the `runs` after the kill, and the runs' state after it
    notes_after_listing: dict[str, tuple[str, str]] = field(default_factory=dict)  # run id -> (status, description)
    rerun: subprocess.CompletedProcess | None = None
    error: BaseException | None = None

    def args(self, config: Path = LEAN_CONFIG) -> list[object]:
        return ["train", self.cohort, "--target", TARGET, "--config", config, "--permutations", 0,
                "--experiment", EXPERIMENT]

    def killed_args(self) -> list[object]:
        """The killed attempt runs two worker processes (the suite's config runs none), to see them die with it."""
        config = self.folder / "two_workers.yaml"
        config.write_text(LEAN_CONFIG.read_text().replace("n_jobs: 1", "n_jobs: 2"))
        return self.args(config)


def registry_state(client) -> tuple[set[int], dict[str, str]]:
    """(registered versions of the model, {run id: status} of the runs in the suite's experiment)."""
    versions = {int(v.version) for v in client.search_model_versions(f"name = '{MODEL_NAME}'")}
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], max_results=1000) if experiment else []
    return versions, {r.info.run_id: r.info.status for r in runs}


def notes(client, run_id: str) -> tuple[str, str]:
    """(status, description) of a run."""
    run = client.get_run(run_id)
    return run.info.status, run.data.tags.get("mlflow.note.content", "")


def _train_in_background(t: Training, client) -> None:
    try:
        t.versions_before, t.runs_before = registry_state(client)
        t.proc = start(*t.killed_args(), log=t.folder / "killed")
        err = t.folder / "killed.err"
        # the fit starts some seconds in (imports, validation: a minute on a loaded machine), and its progress
        # line says when; then its two workers start. The limit catches a hang, not a slow start.
        deadline = time.monotonic() + 600
        while t.proc.poll() is None and time.monotonic() < deadline and (
                FIT_MARKER not in err.read_text() or len(descendants(t.proc.pid)) < 2):
            if t.stop.wait(0.1):
                return
        time.sleep(1.5)  # well inside the nested cross-validation (tens of seconds)
        t.workers = descendants(t.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(t.proc.pid, signal.SIGKILL)  # the one process, as `kill -9 PID` or the OOM killer: not its group
        t.proc.wait(timeout=HANG_S)
        t.orphans = survivors(t.workers, within=30)
        kill(t.proc)  # then its group, so that nothing outlives the suite even if the workers did
        t.killed = t.proc.returncode == -signal.SIGKILL  # not if it had finished (or failed) by then
        t.killed_stderr = err.read_text()
        t.versions_after_kill, t.runs_after_kill = registry_state(client)
        t.listed = cli("runs", "--experiment", EXPERIMENT, timeout=HANG_S)  # the next command to open the store
        t.notes_after_listing = {r: notes(client, r) for r in t.runs_after_kill if r not in t.runs_before}
        if t.stop.is_set():
            return
        t.proc = start(*t.args(), log=t.folder / "rerun")
        while t.proc.poll() is None:
            if t.stop.wait(0.2):
                return
        t.rerun = subprocess.CompletedProcess(t.proc.args, t.proc.returncode, (t.folder / "rerun.out").read_text(),
                                              (t.folder / "rerun.err").read_text())
    except BaseException as exc:  # reported by the tests that need the model
        t.error = exc
    finally:
        t.done.set()


@pytest.fixture(scope="package", autouse=True)
def training(store, cohort, tmp_path_factory):
    """Start the training at the suite's first test; see the module docstring. Package scope: stopped
    when the suite's last test is done, so it never runs on into other tests of a session."""
    from mlflow import MlflowClient  # imported here, not in the thread (warning filters are per test)

    t = Training(cohort, tmp_path_factory.mktemp("faults-training"))
    worker = threading.Thread(target=_train_in_background, args=(t, MlflowClient(os.environ["MLFLOW_TRACKING_URI"])),
                              daemon=True)
    worker.start()
    yield t
    t.stop.set()
    if t.proc is not None and t.proc.poll() is None:
        kill(t.proc)
    worker.join(timeout=HANG_S)


@pytest.fixture(scope="package")
def model(training) -> Model:
    """The registered model of the rerun (it waits for the background training)."""
    assert training.done.wait(timeout=HANG_S), f"the background training did not finish in {HANG_S} s"
    if training.error is not None:
        raise training.error
    rerun = training.rerun
    assert rerun is not None, "the background training was stopped"
    assert rerun.returncode == 0, "training the suite's model failed:\n" + describe(rerun)
    found = re.search(r"MLflow run: (\w+)\s+registered: (\S+) version (\d+)", rerun.stdout)
    assert found, rerun.stdout
    return Model(f"models:/{found[2]}/{found[3]}", found[1], int(found[3]))


def pytest_collection_modifyitems(config, items):
    """Within this folder, tests that need the model run last, so the background training overlaps the rest."""
    slots = [i for i, item in enumerate(items) if FAULTS in Path(str(item.path)).parents]
    ordered = sorted((items[i] for i in slots), key=lambda item: "model" in getattr(item, "fixturenames", ()))
    for i, item in zip(slots, ordered):
        items[i] = item
