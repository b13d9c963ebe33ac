"""No command may destroy its input: an output path that is an input (same path, symlink or hard
link, or the derived rejected-rows file) is a usage error before anything is read or written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ketamine_response.features.cohort.reader import refuse_overwriting
from ketamine_response.features.errors import UsageError


@pytest.fixture
def cohort(tmp_path) -> Path:
    path = tmp_path / "c.csv"
    subprocess.run([sys.executable, "-m", "ketamine_response.pipelines.cli", "synth", "--n", "30", "--out", str(path)], check=True,
                   capture_output=True)
    return path


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ketamine_response.pipelines.cli", *args], capture_output=True, text=True)


@pytest.mark.parametrize("args", [
    ["validate", "{c}", "--problems", "{c}"],
    ["features", "{c}", "--target", "response_24h", "--out", "{c}"],
    ["score", "{c}", "--out", "{c}", "--model", "models:/none/1"],
    ["synth", "--n", "10", "--out", "{t}/a.csv", "--oracle", "{t}/a.csv"],
])
def test_cli_refuses_to_overwrite_an_input(cohort, args):
    before = cohort.read_bytes()
    result = _cli(*[a.format(c=cohort, t=cohort.parent) for a in args])
    assert result.returncode == 2, result.stderr
    assert "would overwrite" in result.stderr and "Traceback" not in result.stderr
    assert cohort.read_bytes() == before


def test_links_and_the_rejected_file_count(tmp_path):
    source = tmp_path / "c.csv"
    source.write_text("patient_id\nA\n")
    (tmp_path / "hard.csv").hardlink_to(source)
    os.symlink(source, tmp_path / "soft.csv")
    for out in ("hard.csv", "soft.csv"):
        with pytest.raises(UsageError, match="would overwrite the input file"):
            refuse_overwriting({"--out": tmp_path / out}, [source])
    with pytest.raises(UsageError, match="the rejected-rows file would overwrite the input"):
        refuse_overwriting({"--out": tmp_path / "s.csv", "the rejected-rows file": source}, [source])
    refuse_overwriting({"--out": tmp_path / "new.csv", "--oracle": None}, [source, None])  # fine
