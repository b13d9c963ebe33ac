"""Running the command line as a user does, and the checks every fault probe makes: the exit code,
the offending path named in stderr, no traceback, no exit 70 (an internal error), and nothing
finished-looking left behind."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.limits import HANG_S

REPO = Path(__file__).resolve().parents[2]
LEAN_CONFIG = REPO / "tests" / "pipelines" / "lean_train.yaml"  # the suite checks commands, not the benefit model
DATASET = REPO / "data" / "public" / "openneuro-ds005917"
TARGET = "response_24h"
EXPERIMENT = "faults"
MODEL_NAME = f"ketamine-response.{EXPERIMENT}.{TARGET}"
FIT_MARKER = "nested cross-validation"  # train's progress line when fitting starts


# -- running the CLI and checking what it did ------------------------------------------------------

def command(*args: object) -> list[str]:
    return [sys.executable, "-m", "ketamine_response.pipelines.cli", *map(str, args)]


def cli_env() -> dict[str, str]:
    assert os.environ.get("MLFLOW_TRACKING_URI"), "the session 'store' fixture points MLflow at a test store"
    return {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}


def cli(*args: object, timeout: float = HANG_S) -> subprocess.CompletedProcess[str]:
    """Run ``python -m ketamine_response.pipelines.cli ARGS`` from the repository root and capture its output."""
    return subprocess.run(command(*args), cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=timeout)


def start(*args: object, log: Path) -> subprocess.Popen:
    """Start the CLI in its own process group, stdout/stderr to ``log.out`` / ``log.err``."""
    with open(log.with_suffix(".out"), "w") as out, open(log.with_suffix(".err"), "w") as err:
        return subprocess.Popen(command(*args), cwd=REPO, env=cli_env(), stdout=out, stderr=err, start_new_session=True)


def kill(proc: subprocess.Popen) -> None:
    """SIGKILL the process group this suite started (by its id) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=HANG_S)


def describe(result: subprocess.CompletedProcess) -> str:
    shown = " ".join(str(a) for a in result.args[3:])
    return f"$ ketamine-response {shown}\nexit {result.returncode}\nstderr: {result.stderr[-2000:]}"


def assert_refused(result: subprocess.CompletedProcess, *names: object, code: int = 2) -> None:
    """Exit *code* (2: a file or usage problem), no internal error, no traceback, stderr naming every *names*."""
    assert result.returncode != 70, "internal error (a bug):\n" + describe(result)
    assert "Traceback" not in result.stderr, describe(result)
    assert result.returncode == code, describe(result)
    unnamed = [str(n) for n in names if str(n) not in result.stderr]
    assert not unnamed, f"stderr does not name {unnamed}:\n" + describe(result)


def snapshot(folder: Path) -> set[str]:
    return set(os.listdir(folder)) if folder.is_dir() else set()


def assert_nothing_left(folder: Path, before: set[str], *outputs: Path, only: str | None = None) -> None:
    """No file at any of *outputs* and no new entry in *folder* (whose name contains *only*, if given),
    not even a hidden partial file."""
    for out in outputs:
        assert not out.is_file(), f"a failed run left {out}"
        if out.is_dir():
            assert not any(out.iterdir()), f"a failed run wrote into the folder {out}: {os.listdir(out)}"
    new = {name for name in snapshot(folder) - before if only is None or only in name}
    assert not new, f"a failed run left {sorted(new)} in {folder}"


@dataclass
class Probe:
    """One CLI run expected to fail cleanly: what stderr must name, where nothing may be left."""

    args: list[object]
    named: tuple[object, ...]
    outputs: tuple[Path, ...] = ()
    folder: Path | None = None  # no new entry here after the failure...
    only: str | None = None     # ...of those whose name contains this (a folder shared by several probes)
    before: set[str] = field(default_factory=set)
    result: subprocess.CompletedProcess | None = None

    def __repr__(self) -> str:  # short in failure reports
        return f"Probe({' '.join(map(str, self.args[:2]))} …)"

    def check(self, code: int = 2) -> None:
        assert self.result is not None
        assert_refused(self.result, *self.named, code=code)
        if self.folder is not None:
            assert_nothing_left(self.folder, self.before, *self.outputs, only=self.only)


PROBE_TIMEOUT = HANG_S  # catches a hang, not a busy machine (tests/limits.py)


def run_probes(probes: dict[str, Probe]) -> dict[str, Probe]:
    """Run every probe, as many at once as there are cores (each is one mostly single-threaded process)."""
    for probe in probes.values():
        probe.before = snapshot(probe.folder) if probe.folder is not None else set()

    def one(probe: Probe) -> None:
        try:
            probe.result = cli(*probe.args, timeout=PROBE_TIMEOUT)
        except subprocess.TimeoutExpired:
            probe.result = subprocess.CompletedProcess(command(*probe.args), -9, "", f"timed out after {PROBE_TIMEOUT} s")

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        list(pool.map(one, probes.values()))
    return probes


def random_bytes(path: Path, size: int = 8192, seed: int = 0, nul: bool = True) -> Path:
    """*size* random bytes (with NULs like a binary file, or without: text in no known encoding)."""
    import random

    data = random.Random(seed).randbytes(size)
    path.write_bytes(data if nul else data.replace(b"\0", b"\xff"))
    return path


def first_patient(cohort: Path) -> str:
    """The first patient with one course (explain writes one waterfall per course, named after --out)."""
    with cohort.open(newline="") as handle:
        ids = [row["patient_id"] for row in csv.DictReader(handle)]
    return next(p for p in ids if ids.count(p) == 1)


# -- processes a command leaves behind -------------------------------------------------------------

def descendants(pid: int) -> set[int]:
    """Every process below *pid* (Linux), from /proc's children lists (one per thread)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found |= {int(c) for c in (task / "children").read_text().split()}
    return found | {grand for child in found for grand in descendants(child)}


def running(pid: int) -> bool:
    """Running, not a zombie waiting for init to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def survivors(pids: set[int], within: float = 30) -> set[int]:
    """Those of *pids* still running after waiting up to *within* seconds for them to end."""
    deadline = time.monotonic() + within
    while any(map(running, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return {pid for pid in pids if running(pid)}
