"""The import rules of docs/architecture.md: the import-linter contracts ([tool.importlinter] in pyproject.toml)
hold on the real tree and catch a wrong import, and, what they cannot express, no module of ours uses
another module's private (``_``) names: what is shared is public and documented."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.limits import HANG_S

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "ketamine_response"
FOLDERS = ("features", "models", "pipelines")  # ketamine_response/ links these
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _modules() -> dict[str, Path]:
    """Every module of ours by its dotted name (as imported through the namespace)."""
    out = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join((PACKAGE, *parts)).removesuffix(".__init__")] = path
    return out


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The module an ``import from`` names, relative ones resolved against *module*'s package."""
    if not node.level:
        return node.module or ""
    base = module.split(".")[: -node.level]
    return ".".join(base + ([node.module] if node.module else []))


def private_uses(module: str, tree: ast.Module) -> list[str]:
    """Names starting with ``_`` that *module* takes from another module of ours: imported by name, or
    read as an attribute of one of our modules it imported (``registry._digest``)."""
    found, aliases = [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = _absolute(module, node)
            if source.split(".")[0] != PACKAGE or source == module:
                continue  # __future__, the standard library and third-party packages keep their own rules
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"{module}:{node.lineno} imports {alias.name} from {source}")
                aliases[alias.asname or alias.name] = f"{source}.{alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == PACKAGE and alias.asname:
                    aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and _private(node.attr)):
            found.append(f"{module}:{node.lineno} uses {node.attr} of {aliases[node.value.id]}")
    return found


def test_the_checker_sees_both_kinds_of_private_use():
    code = ("from ketamine_response.pipelines import registry\n"
            "from ketamine_response.features.cohort.reader import _csv_header, file_kind\n"
            "from collections import _chain\n"
            "from __future__ import annotations\n"
            "x = registry._recorded_digest\ny = registry.__name__\n")
    found = private_uses("ketamine_response.pipelines.flows.x", ast.parse(code))
    assert [f.split(" ", 1)[1] for f in found] == [
        "imports _csv_header from ketamine_response.features.cohort.reader",
        "uses _recorded_digest of ketamine_response.pipelines.registry",
    ]


def test_no_module_uses_another_modules_private_names():
    found = [use for module, path in _modules().items()
             for use in private_uses(module, ast.parse(path.read_text(encoding="utf-8")))]
    assert not found, "private names used across modules (make them public, or move the code):\n" + "\n".join(found)


def _lint_imports(cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess[str]:
    # wide output: import-linter wraps long lines at the terminal width, which would split the names asserted on
    return subprocess.run([str(LINT_IMPORTS), "--config", str(ROOT / "pyproject.toml"), "--no-cache"], cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(pythonpath), "COLUMNS": "400"}, capture_output=True, text=True,
                          timeout=HANG_S, check=False)


def test_the_contracts_hold_on_the_real_tree():
    run = _lint_imports(ROOT, ROOT)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize(("module", "bad_line", "contract", "shown"), [
    ("features/errors.py", "from ketamine_response.pipelines import config",
     "packages: pipelines above models above features", "ketamine_response.features.errors -> ketamine_response.pipelines.config"),
    ("pipelines/evaluation/metrics.py", "from ketamine_response.pipelines.training import nested",
     "pipelines rooms:", "ketamine_response.pipelines.evaluation.metrics -> ketamine_response.pipelines.training.nested"),
    ("pipelines/training/cv.py", "from ketamine_response.pipelines import tracking",
     "the store (store, tracking, registry, listing, integrity) only from",
     "ketamine_response.pipelines.training.cv -> ketamine_response.pipelines.tracking"),
    ("pipelines/evaluation/metrics.py", "import mlflow",
     "MLflow only in", "ketamine_response.pipelines.evaluation.metrics -> mlflow"),
    ("pipelines/training/nested.py", "from pyspark.sql import SparkSession",
     "pyspark and joblibspark only in", "ketamine_response.pipelines.training.nested -> pyspark"),
])
def test_a_wrong_import_breaks_its_contract(tmp_path, module, bad_line, contract, shown):
    copy = tmp_path / "src" / PACKAGE
    copy.mkdir(parents=True)
    shutil.copy(ROOT / PACKAGE / "__init__.py", copy)
    for folder in FOLDERS:  # real files: the copy must not lead back into the working tree
        shutil.copytree(ROOT / folder, copy / folder, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / module).open("a") as f:
        f.write(f"\n{bad_line}  # deliberately wrong\n")
    run = _lint_imports(tmp_path, tmp_path / "src")
    assert run.returncode == 1, run.stdout + run.stderr
    broken = run.stdout.split("Broken contracts", 1)[-1]
    assert contract in broken and shown in broken, run.stdout
