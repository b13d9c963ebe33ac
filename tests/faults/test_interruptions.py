"""SIGKILL mid-run and two runs at once.

A killed ``score`` leaves nothing at --out or its rejected-rows path (hidden ``.NAME.*.partial`` files may
stay: they do not look finished), and the rerun's files are byte-identical to an uninterrupted run's.
A killed ``train`` registers no model version, leaves no worker process running, and its run is marked KILLED
(with why) by the next command to open the store; its rerun succeeds. Two ``score`` runs to one --out
end with the output of one run, never an interleaving.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.faults.probes import MODEL_NAME, cli, describe, kill, start
from tests.limits import HANG_S

ROWS, CHUNK = 12_000, 500


def outputs(out: Path) -> tuple[Path, Path, Path]:
    """The scores, the rejected rows and the model sidecar."""
    return out, out.with_name(f"{out.stem}.rejected.csv"), out.with_name(f"{out.name}.model.md")


def score_args(cohort: Path, out: Path, model) -> list[object]:
    return ["score", cohort, "--out", out, "--model", model.uri, "--chunk-rows", CHUNK]


def partials(folder: Path, out: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.startswith(f".{out.name}.") and p.name.endswith(".partial")]


def assert_only_hidden_partials(folder: Path) -> None:
    unfinished = [p.name for p in folder.iterdir() if not (p.name.startswith(".") and p.name.endswith(".partial"))]
    assert not unfinished, f"a killed run left files that look finished: {unfinished}"


@pytest.fixture(scope="module")
def big(cohort, tmp_path_factory) -> Path:
    """12,000 courses: scoring them in chunks of 500 takes seconds, time enough to kill it part-way."""
    path = tmp_path_factory.mktemp("big") / "big.csv"
    done = cli("synth", "--n", ROWS, "--seed", 11, "--out", path)
    assert done.returncode == 0, describe(done)
    return path


@pytest.fixture(scope="module")
def reference(big, model, tmp_path_factory) -> Path:
    """An uninterrupted run's scores (its rejected rows beside them)."""
    out = tmp_path_factory.mktemp("reference") / "scores.csv"
    done = cli(*score_args(big, out, model), timeout=HANG_S)
    assert done.returncode == 0, describe(done)
    return out


def same_bytes(out: Path, reference: Path) -> None:
    for got, want in zip(outputs(out), outputs(reference), strict=True):
        assert got.read_bytes() == want.read_bytes(), f"{got} differs from an uninterrupted run's {want}"


def test_kill_9_mid_score_leaves_nothing_finished_and_rerun_is_identical(big, model, reference, tmp_path):
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "scores.csv"
    proc = start(*score_args(big, out, model), log=tmp_path / "killed")
    deadline = time.monotonic() + 120
    while proc.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(FileNotFoundError):  # renamed into place meanwhile
            if any(p.stat().st_size for p in partials(out.parent, out)):  # writing its first chunks
                break
        time.sleep(0.05)
    time.sleep(0.3)
    kill(proc)
    if proc.returncode != -signal.SIGKILL:
        assert proc.returncode == 0, (tmp_path / "killed.err").read_text()
        pytest.skip(f"score of {ROWS} rows finished before it could be killed")
    assert [p.exists() for p in outputs(out)] == [False] * 3, "the killed run left a finished-looking output"
    assert partials(out.parent, out), "killed mid-write, yet no partial file: was it killed while writing?"
    assert_only_hidden_partials(out.parent)

    rerun = cli(*score_args(big, out, model), timeout=HANG_S)
    assert rerun.returncode == 0, describe(rerun)
    same_bytes(out, reference)


def test_kill_9_mid_train_registers_nothing_and_rerun_succeeds(training, model):
    from mlflow import MlflowClient

    if training.killed is False:
        pytest.skip("the first training finished before it could be killed")
    assert training.killed, training.killed_stderr
    assert training.versions_after_kill == training.versions_before, "the killed training registered a version"
    left = {run: status for run, status in training.runs_after_kill.items() if run not in training.runs_before}
    assert "FINISHED" not in left.values(), f"the killed training left a run marked finished: {left}"
    # the rerun (the suite's model) registered exactly one new version
    versions = {int(v.version) for v in MlflowClient(os.environ["MLFLOW_TRACKING_URI"]).search_model_versions(
        f"name = '{MODEL_NAME}'")}
    assert model.version not in training.versions_before
    assert versions == training.versions_before | {model.version}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the parent-death signal is Linux's")
def test_kill_9_mid_train_leaves_no_worker_and_the_next_command_closes_its_run(training, model):
    # `model` waits for the background training: its killed attempt, the `runs` after it, then the rerun
    if training.killed is False:
        pytest.skip("the first training finished before it could be killed")
    assert training.killed, training.killed_stderr
    # its two loky workers (and loky's resource tracker) were running when `kill -9 PID` hit the train process
    assert len(training.workers) >= 2, f"no worker processes under the killed train: {training.workers}"
    assert not training.orphans, f"worker processes outlived the killed train by 30 s: {sorted(training.orphans)}"
    # the next command to open the store (`runs`) marked the killed run KILLED, saying why
    listed = training.listed
    assert listed is not None and listed.returncode == 0, describe(listed)
    parents = {r: n for r, n in training.notes_after_listing.items() if r[:8] in listed.stdout}
    assert len(parents) == 1, (training.notes_after_listing, listed.stdout)
    (run_id, (status, note)), = parents.items()
    assert status == "KILLED", (run_id, status, note)
    assert re.fullmatch(r"\*\*Training killed\*\*: the training process \(pid \d+ on \S+\) ended without closing "
                        r"the run: killed or crashed\.", note), note
    # ... and shows it in its status column
    header, row = listed.stdout.splitlines()[0], next(ln for ln in listed.stdout.splitlines() if ln.startswith(run_id[:8]))
    assert header.split()[:4] == ["run", "age", "kind", "status"] and row.split()[3] == "KILLED", listed.stdout


def test_two_scores_to_one_output(big, model, reference, tmp_path):
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "scores.csv"
    procs = [start(*score_args(big, out, model), log=tmp_path / f"run{i}") for i in (1, 2)]
    try:
        codes = [proc.wait(timeout=HANG_S) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                kill(proc)
    errors = [(tmp_path / f"run{i}.err").read_text() for i in (1, 2)]
    for code, err in zip(codes, errors):
        assert code != 70 and "Traceback" not in err, err
        assert code == 0 or (code == 2 and str(out.name) in err), f"exit {code}: {err}"
    assert 0 in codes, errors
    same_bytes(out, reference)
    assert not partials(out.parent, out), "a finished run left its partial file"
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(p.name for p in outputs(out))
