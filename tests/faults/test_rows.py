"""Rows and headers through the real command line: a short or long row is never padded or cut but refused
(exit 2, the file and row named) by every command that reads a cohort, ``ingest bids`` included; a header
of any length that ``validate`` accepts, ``score`` accepts too; more than 20,000 columns gets the column-limit
message; an output path that is a device or has no known extension is named as such.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.faults.probes import DATASET, EXPERIMENT, LEAN_CONFIG, TARGET, Probe, assert_refused, cli, describe, snapshot
from tests.limits import HANG_S

LIMIT = "at most 20,000 are read"
TIMEOUT = HANG_S  # catches a hang, not a busy machine (tests/limits.py)


def run_probes(probes: dict[str, Probe]) -> dict[str, Probe]:
    """Every probe, two at a time, each with a timeout for hangs only."""
    for probe in probes.values():
        probe.before = snapshot(probe.folder) if probe.folder is not None else set()

    def one(probe: Probe) -> None:
        probe.result = cli(*probe.args, timeout=TIMEOUT)

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(one, probes.values()))
    return probes


def short_row(good: Path, folder: Path) -> tuple[Path, str]:
    """*good* with its last row missing its last cell: (the file, the message's row and column)."""
    lines = good.read_text().splitlines()
    last = len(lines) - 1
    lines[-1] = lines[-1].rsplit(",", 1)[0]
    (folder / "short.csv").write_text("\n".join(lines) + "\n")
    return folder / "short.csv", f"row {last} "  # counted from the first row after the header


def long_row(good: Path, folder: Path) -> Path:
    lines = good.read_text().splitlines()
    lines[3] += ",extra"
    (folder / "long.csv").write_text("\n".join(lines) + "\n")
    return folder / "long.csv"


def wide(good: Path, folder: Path, extra: int, name: str, prefix: str = "extra_measurement_") -> Path:
    """*good* with *extra* more columns (all "1"), so its header runs past 64 KiB."""
    lines = good.read_text().splitlines()
    names = ",".join(f"{prefix}{i:05d}" for i in range(extra))
    rows = [f"{lines[0]},{names}"] + [line + ",1" * extra for line in lines[1:]]
    (folder / name).write_text("\n".join(rows) + "\n")
    return folder / name


def across_65535(good: Path, folder: Path) -> Path:
    """*good* with one more column, whose name puts a 2-byte character across byte 65,535 of the header."""
    lines = good.read_text().splitlines()
    name = "x" * (65535 - len(lines[0]) - 2) + "é"
    assert f"{lines[0]},{name}".encode()[65534:65536] == "é".encode()
    rows = [f"{lines[0]},{name}"] + [line + ",1" for line in lines[1:]]
    (folder / "accent.csv").write_text("\n".join(rows) + "\n")
    return folder / "accent.csv"


def commands(cohort: Path, out: Path, model=None) -> dict[str, list[object]]:
    found = {
        "validate": ["validate", cohort, "--problems", out / "problems.csv"],
        "features": ["features", cohort, "--target", TARGET, "--out", out / "features.csv"],
        "train": ["train", cohort, "--target", TARGET, "--config", LEAN_CONFIG, "--permutations", 0,
                  "--experiment", f"{EXPERIMENT}-rows"],
    }
    if model is not None:
        found = {"score": ["score", cohort, "--out", out / "scores.csv", "--model", model.uri, "--chunk-rows", 50]}
    return found


def ragged_probes(good: Path, tmp: Path, model=None) -> dict[str, Probe]:
    probes = {}
    for kind in ("short", "long"):
        folder = tmp / kind
        (folder / "out").mkdir(parents=True)
        path, row = short_row(good, folder) if kind == "short" else (long_row(good, folder), "row 3 ")
        named = (path.name, row, "where the header has") + ((good.read_text().split("\n", 1)[0].split(",")[-1],)
                                                              if kind == "short" else ("cells",))
        for command, args in commands(path, folder / "out", model).items():
            probes[f"{command}-{kind}"] = Probe(args, named, folder=folder / "out")
    return probes


@pytest.fixture(scope="module")
def plain(cohort, tmp_path_factory) -> dict[str, Probe]:
    tmp = tmp_path_factory.mktemp("rows")
    probes = ragged_probes(cohort, tmp)
    root = Path(shutil.copytree(DATASET, tmp / "ds005917"))
    participants = root / "participants.tsv"
    lines = participants.read_text().splitlines()
    lines[1] = lines[1].rsplit("\t", 1)[0]  # the first participant's last cell (infusion_2) is gone
    participants.write_text("\n".join(lines) + "\n")
    (tmp / "bids-out").mkdir()
    probes["ingest-short"] = Probe(["ingest", "bids", root, "--out", tmp / "bids-out" / "cohort.csv"],
                                   ("participants.tsv", "row 1 ", "'infusion_2'"), folder=tmp / "bids-out")
    too_wide = wide(cohort, tmp, 20_001, "too_wide.csv", prefix="c")
    (tmp / "wide-out").mkdir()
    probes["validate-too-wide"] = Probe(["validate", too_wide, "--problems", tmp / "wide-out" / "p.csv"],
                                        (too_wide.name, LIMIT), folder=tmp / "wide-out")
    for out in (Path("/dev/full"), tmp / "cohort_without_extension"):
        probes[f"synth-{out.name}"] = Probe(["synth", "--n", 50, "--out", out], (out,))
    return run_probes(probes)


PLAIN = [f"{c}-{k}" for c in ("validate", "features", "train") for k in ("short", "long")] + ["ingest-short",
                                                                                           "validate-too-wide"]


@pytest.mark.parametrize("case", PLAIN)
def test_a_ragged_or_too_wide_file_is_exit_2_naming_file_and_row(plain, case):
    plain[case].check()


def _is_device(path: Path) -> bool:
    import stat

    return path.exists() and stat.S_ISCHR(path.stat().st_mode)


def test_an_output_that_is_a_device_or_has_no_extension_says_so(plain):
    if not _is_device(Path("/dev/full")):
        pytest.skip("no /dev/full device here")
    plain["synth-full"].check()
    assert "not a regular file" in plain["synth-full"].result.stderr
    plain["synth-cohort_without_extension"].check()
    assert "output files must end in .csv" in plain["synth-cohort_without_extension"].result.stderr


@pytest.fixture(scope="module")
def headers(cohort, tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("headers")
    return {"wide": wide(cohort, tmp, 3_000, "wide.csv"), "accent": across_65535(cohort, tmp),
            "too_wide": wide(cohort, tmp, 20_001, "too_wide.csv", prefix="c")}


@pytest.mark.parametrize("case", ["wide", "accent"])
def test_a_header_past_64_kib_is_accepted_by_validate(headers, case, tmp_path):
    path = headers[case]
    assert len(path.read_bytes().split(b"\n", 1)[0]) >= 1 << 16  # past the old 64 KiB window
    done = cli("validate", path, "--problems", tmp_path / "problems.csv", timeout=TIMEOUT)
    assert done.returncode == 0 and "Traceback" not in done.stderr, describe(done)


# -- score: with the suite's trained model ---------------------------------------------------------

@pytest.fixture(scope="module")
def scoring(cohort, model, tmp_path_factory) -> dict[str, Probe]:
    tmp = tmp_path_factory.mktemp("rows-scoring")
    probes = ragged_probes(cohort, tmp, model)
    (tmp / "device").mkdir()
    probes["score-full"] = Probe(["score", cohort, "--out", "/dev/full", "--model", model.uri], ("/dev/full",),
                                 folder=tmp / "device")
    return run_probes(probes)


@pytest.mark.parametrize("case", ["score-short", "score-long"])
def test_a_ragged_file_is_exit_2_when_scoring_and_leaves_nothing(scoring, model, case):
    scoring[case].check()  # nothing finished-looking, nor a hidden partial file, in the output folder


def test_scoring_to_a_device_says_it_is_not_a_regular_file(scoring, model):
    if not _is_device(Path("/dev/full")):
        pytest.skip("no /dev/full device here")
    scoring["score-full"].check()
    assert "not a regular file" in scoring["score-full"].result.stderr


@pytest.mark.parametrize("case", ["wide", "accent"])
def test_a_header_past_64_kib_is_accepted_by_score(headers, model, case, tmp_path):
    done = cli("score", headers[case], "--out", tmp_path / "scores.csv", "--model", model.uri, timeout=TIMEOUT)
    assert done.returncode in (0, 1) and "Traceback" not in done.stderr, describe(done)
    assert (tmp_path / "scores.csv").is_file(), describe(done)


def test_too_many_columns_gets_the_limit_message_when_scoring(headers, model, tmp_path):
    done = cli("score", headers["too_wide"], "--out", tmp_path / "scores.csv", "--model", model.uri, timeout=TIMEOUT)
    assert done.returncode == 2 and LIMIT in done.stderr and "Traceback" not in done.stderr, describe(done)
    assert not (tmp_path / "scores.csv").exists()


def test_validate_problems_onto_a_pipe_is_refused_and_the_pipe_kept(tmp_path):
    """`validate --problems` on a device, pipe or socket: exit 2 naming it, the node left as it was (renamed onto,
    it would be replaced: /dev/full was, as root)."""
    import stat

    bad = tmp_path / "bad.csv"
    bad.write_text("patient_id,site,treatment,madrs_baseline\nP1,s1,ketamine_iv,300\n")
    fifo = tmp_path / "problems.csv"
    os.mkfifo(fifo)
    result = cli("validate", bad, "--problems", fifo)
    assert_refused(result, fifo)
    assert "not a regular file" in result.stderr
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
