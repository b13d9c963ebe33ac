"""The docs hold: architecture.md's exit-code table covers every error class, and the README's layout
table names only what exists and every package folder that does."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ketamine_response.features import errors

ROOT = Path(__file__).resolve().parents[1]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
PACKAGES = ("features", "models", "pipelines")


def _error_classes() -> list[type[errors.KetamineResponseError | errors.Terminated]]:
    return [c for c in vars(errors).values() if isinstance(c, type)
            and issubclass(c, errors.KetamineResponseError | errors.Terminated) and c is not errors.KetamineResponseError]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_class_is_in_the_exit_code_table(cls):
    assert re.search(rf"^\| `{cls.__name__}` \| {cls.exit_code} \|", ARCHITECTURE, re.M), cls.__name__


def test_interrupt_and_internal_codes_are_documented():
    for code in ("130", "143", "70"):
        assert re.search(rf"^\|[^|]*\| {code} \|", ARCHITECTURE, re.M), code


def _layout() -> dict[str, str]:
    section = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1:3] for line in section.splitlines() if line.startswith("| `")]
    return {path.strip().strip("`"): holds for path, holds in rows}


def test_layout_rows_exist_and_cover_the_top_level():
    layout = _layout()
    assert all((ROOT / path).exists() for path in layout if path != "mlruns/"), layout
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    top = {f"{path.split('/')[0]}/" for path in tracked if "/" in path and not path.startswith(".")}
    assert top <= set(layout), sorted(top - set(layout))


@pytest.mark.parametrize("package", PACKAGES)
def test_layout_names_real_parts_and_every_subpackage(package):
    holds = _layout()[f"{package}/"]
    named = re.findall(r"`([^`]+)`", holds)
    missing = [n for n in named if n.endswith((".py", "/")) and not list((ROOT / package).rglob(n.rstrip("/")))]
    assert not missing, missing
    subpackages = [p.name for p in (ROOT / package).iterdir() if (p / "__init__.py").is_file()]
    unnamed = [p for p in subpackages if f"`{p}/`" not in holds]
    assert not unnamed, unnamed
