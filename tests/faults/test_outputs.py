"""Outputs that cannot be written: the path is a folder, the folder is read-only, missing, or on a full disk.

Every command that writes a file must stop with exit 2 naming the output, with no traceback and nothing
finished-looking (nor a hidden partial file) left behind. A missing folder may instead be created, if
the output then is complete, except for ``score``, whose README promises exit 2.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.faults.probes import DATASET, TARGET, Probe, first_patient, run_probes

PLAIN = ("synth", "oracle", "validate", "features", "ingest")
WITH_MODEL = ("score", "explain", "report")
NAMES = {"explain": "waterfall.png", "report": "report_folder"}
FAULTS = ("out_is_folder", "missing_folder") + (() if os.geteuid() == 0 else ("read_only",))
ROOT_SKIP = "root ignores folder permissions (the out_is_folder probes cover an unwritable output as root)"


def output_args(command: str, out: Path, side: Path, cohort: Path, model=None) -> list[object]:
    """Arguments of *command* writing *out*; *side* is a private folder for anything else it needs."""
    if command == "ingest":
        dataset = shutil.copytree(DATASET, side / "ds005917")
    return {
        "synth": lambda: ["synth", "--n", 50, "--out", out],
        "oracle": lambda: ["synth", "--n", 50, "--out", side / "cohort.csv", "--oracle", out],
        "validate": lambda: ["validate", cohort, "--problems", out],
        "features": lambda: ["features", cohort, "--target", TARGET, "--out", out],
        "ingest": lambda: ["ingest", "bids", dataset, "--out", out],
        "score": lambda: ["score", cohort, "--out", out, "--model", model.uri],
        "explain": lambda: ["explain", cohort, "--model", model.uri, "--patient", first_patient(cohort), "--out", out],
        "report": lambda: ["report", model.run_id, "--out", out],
    }[command]()


def extra_outputs(command: str, out: Path) -> tuple[Path, ...]:
    # score's rejected rows and its model sidecar (``<out>.model.md``)
    return (out.with_name(f"{out.stem}.rejected.csv"), out.with_name(f"{out.name}.model.md")) if command == "score" else ()


def output_probes(commands, faults, tmp: Path, cohort: Path, model=None) -> dict[str, Probe]:
    probes = {}
    for command in commands:
        for fault in faults:
            side, folder = tmp / f"{command}-{fault}" / "side", tmp / f"{command}-{fault}" / "out"
            side.mkdir(parents=True)
            folder.mkdir()
            out = folder / NAMES.get(command, f"{command}.csv")
            if fault == "missing_folder":
                out = folder / "no" / "such" / out.name
            elif fault == "out_is_folder" and command == "report":  # report writes a folder: give it a file
                out.write_text("a file, not a folder\n")
            elif fault == "out_is_folder":
                out.mkdir()
            args = output_args(command, out, side, cohort, model)
            left = extra_outputs(command, out) if out.is_file() else (out, *extra_outputs(command, out))
            probes[f"{command}-{fault}"] = Probe(args, (out.name,), left, folder)
            if fault == "read_only":
                folder.chmod(0o500)
    return probes


def restore(probes: dict[str, Probe]) -> None:
    """Writable again, so the temporary folders can be removed."""
    for probe in probes.values():
        probe.folder.chmod(0o700)


def cases(commands) -> list[str]:
    return [f"{c}-{f}" for c in commands for f in ("out_is_folder", "missing_folder", "read_only")]


@pytest.fixture(scope="module")
def plain(cohort, tmp_path_factory):
    probes = run_probes(output_probes(PLAIN, FAULTS, tmp_path_factory.mktemp("outputs"), cohort))
    yield probes
    restore(probes)


@pytest.fixture(scope="module")
def scoring(cohort, model, tmp_path_factory):
    probes = run_probes(output_probes(WITH_MODEL, FAULTS, tmp_path_factory.mktemp("outputs-scoring"), cohort, model))
    yield probes
    restore(probes)


def check(probes: dict[str, Probe], case: str) -> None:
    if case.endswith("read_only") and case not in probes:
        pytest.skip(ROOT_SKIP)
    probe = probes[case]
    if case.endswith("missing_folder"):
        check_missing_folder(case.split("-")[0], probe)
        return
    probe.check()
    if case == "report-out_is_folder":
        assert (probe.folder / NAMES["report"]).read_text() == "a file, not a folder\n", "report replaced the file given as --out"
        assert probe.result is not None and "not a folder" in probe.result.stderr and "Errno" not in probe.result.stderr


def check_missing_folder(command: str, probe: Probe) -> None:
    """Exit 2 with nothing left, or (not for score) the folder created and the output complete."""
    out, result = probe.outputs[0], probe.result
    assert result is not None
    if command == "score" or result.returncode not in (0, 1):
        probe.check()
        return
    assert "Traceback" not in result.stderr and result.returncode == 0, result.stderr
    if command == "report":
        assert (out / "index.html").is_file() and not (out / "report").exists()
    elif command == "explain":
        assert out.read_bytes().startswith(b"\x89PNG")
    else:
        assert len(pd.read_csv(out).columns) > 0
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".partial")]


@pytest.mark.parametrize("case", cases(PLAIN))
def test_unwritable_output(plain, case):
    check(plain, case)


@pytest.mark.parametrize("case", cases(WITH_MODEL))
def test_unwritable_output_of_scoring(scoring, case):
    check(scoring, case)


# -- a full disk: a 2 MB tmpfs filled to the last byte ------------------------------------------------

@pytest.fixture(scope="module")
def full(cohort, model, full_disk, tmp_path_factory) -> dict[str, Probe]:
    tmp = tmp_path_factory.mktemp("outputs-full")
    probes = {}
    for command in PLAIN + WITH_MODEL:
        side = tmp / command
        side.mkdir()
        stem = f"{command}-on-full-disk"
        out = full_disk / (stem + {"report": "", "explain": ".png"}.get(command, ".csv"))
        args = output_args(command, out, side, cohort, model)
        probes[command] = Probe(args, (out.name,), (out, *extra_outputs(command, out)), full_disk, only=stem)
    return run_probes(probes)


@pytest.mark.parametrize("command", PLAIN + WITH_MODEL)
def test_full_disk(full, command):
    full[command].check()
