"""``ingest bids`` on a dataset whose files cannot be opened or parsed: symlink loops (a file, a folder, the
dataset itself, the mapping, the output), a dataset description that is nested 100,000 levels deep, is
not a JSON object, is not valid JSON or cannot be read.

Each is exit 2 naming the file, without a traceback, never 70, and leaves no output. Each probe works on
its own copy of the shipped OpenNeuro ds005917 dataset; the probes run concurrently (one module fixture).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.faults.probes import DATASET, Probe, cli, snapshot
from tests.limits import HANG_S

TIMEOUT = HANG_S  # catches a hang, not a busy machine (tests/limits.py)
DESCRIPTION = "dataset_description.json"


def _loop(path: Path) -> Path:
    """Replace *path* (file or folder) by a symbolic link to itself."""
    shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    path.symlink_to(path.name)
    return path


def _write(name: str, text: str) -> Callable[[Path], Path]:
    def make(root: Path) -> Path:
        (root / name).write_text(text)
        return root / name
    return make


def _unreadable(name: str) -> Callable[[Path], Path]:
    """*name* made unreadable: mode 000, or, as root (whom permissions do not stop), a folder in its place."""
    def make(root: Path) -> Path:
        path = root / name
        if os.geteuid() == 0:
            path.unlink()
            path.mkdir()
        else:
            path.chmod(0)
        return path
    return make


# fault -> what it does to the dataset copy at root, returning the path stderr must name
FAULTS: dict[str, Callable[[Path], Path]] = {
    "phenotype_loop": lambda root: _loop(root / "phenotype" / "phenotype.tsv"),
    "participants_loop": lambda root: _loop(root / "participants.tsv"),
    "description_loop": lambda root: _loop(root / DESCRIPTION),
    "phenotype_folder_loop": lambda root: _loop(root / "phenotype"),
    "local_mapping_loop": lambda root: _loop(root / "bids_mapping.yaml"),
    "description_deep": _write(DESCRIPTION, "[" * 100_000 + "]" * 100_000),
    "description_list": _write(DESCRIPTION, '[{"DatasetDOI": "doi:10.18112/openneuro.ds005917.v1.0.1"}]'),
    "description_number": _write(DESCRIPTION, "42\n"),
    "description_string": _write(DESCRIPTION, '"doi:10.18112/openneuro.ds005917"\n'),
    "description_null": _write(DESCRIPTION, "null\n"),
    "description_invalid": _write(DESCRIPTION, '{\n  "Name": "NIMH Ketamine",\n  "BIDSVersion": 1.9.0\n}\n'),
    "description_unreadable": _unreadable(DESCRIPTION),
    "participants_unreadable": _unreadable("participants.tsv"),
}
# faults outside the dataset's own files: (the dataset, its extra arguments, the path stderr names)
OUTSIDE = ("dataset_loop", "mapping_option_loop", "out_loop")


def outside(fault: str, root: Path, tmp: Path) -> tuple[Path, list[object], Path]:
    if fault == "dataset_loop":
        return _loop(tmp / "dataset"), [], tmp / "dataset"
    if fault == "mapping_option_loop":
        return root, ["--mapping", _loop(tmp / "mapping.yaml")], tmp / "mapping.yaml"
    return root, [], _loop(tmp / "out" / "cohort.csv")  # the --out itself


@pytest.fixture(scope="module")
def probes(store, tmp_path_factory) -> dict[str, Probe]:
    made = {}
    for fault in (*FAULTS, *OUTSIDE):
        tmp = tmp_path_factory.mktemp(f"ingest-{fault}")
        root = Path(shutil.copytree(DATASET, tmp / "ds005917"))
        (tmp / "out").mkdir()
        given, extra, named = (root, [], FAULTS[fault](root)) if fault in FAULTS else outside(fault, root, tmp)
        made[fault] = Probe(["ingest", "bids", given, "--out", tmp / "out" / "cohort.csv", *extra], (named,),
                            outputs=(tmp / "out" / "cohort.csv",), folder=tmp / "out")
        made[fault].before = snapshot(tmp / "out")
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        results = pool.map(lambda p: cli(*p.args, timeout=TIMEOUT), made.values())
        for probe, result in zip(made.values(), results):
            probe.result = result
    return made


def _stderr(probe: Probe) -> str:
    assert isinstance(probe.result, subprocess.CompletedProcess)
    return probe.result.stderr


@pytest.mark.parametrize("fault", [*FAULTS, *OUTSIDE])
def test_unopenable_dataset_file_is_exit_2_naming_it(probes, fault):
    probes[fault].check()


@pytest.mark.parametrize("fault", [f for f in (*FAULTS, *OUTSIDE) if f.endswith("loop")])
def test_symlink_loop_is_called_one(probes, fault):
    assert "symlink loop" in _stderr(probes[fault])


def test_invalid_description_is_invalid_json_at_its_line_not_an_unknown_dataset(probes):
    stderr = _stderr(probes["description_invalid"])
    assert "not valid JSON" in stderr and "line 3, column" in stderr
    assert "unknown" not in stderr


@pytest.mark.parametrize("kind", ["list", "number", "string", "null"])
def test_description_that_is_not_an_object_says_what_it_is(probes, kind):
    stderr = _stderr(probes[f"description_{kind}"])
    assert "must be a JSON object" in stderr and f"not {'a ' if kind != 'null' else ''}{kind}" in stderr


def test_deep_description_is_too_deep_not_a_recursion_error(probes):
    stderr = _stderr(probes["description_deep"])
    assert "too deeply" in stderr and "RecursionError" not in stderr and "internal error" not in stderr
