"""The built wheel works outside the repository: synth → train → score, and a pristine BIDS ingest.

The wheel is built from this checkout and installed (without dependencies) into a fresh virtual
environment under tmp_path. Its dependencies come from the test environment through a ``.pth``
line, so the test needs no network; the repository itself is never on the fresh environment's
path (commands run from tmp_path, and the test environment's editable-install hook is not
processed because a ``.pth``-added folder is not a site folder).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest

from tests.limits import HANG_S

REPO = Path(__file__).resolve().parents[1]
SMALL = """seed: 3
cv: {design: kfold, outer_folds: 3, outer_repeats: 1, inner_folds: 2}
search: {budget: 1, selection_metric: log_loss}
families: [prevalence, elastic_net, lightgbm]
evaluation: {bootstrap: 50, permutations: 0}
benefit: {enabled: false}
n_jobs: 1
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("wheel")
    build = root / "src"
    # build from a copy so the checkout gains no build/ or egg-info folders
    shutil.copytree(REPO, build, ignore=shutil.ignore_patterns(".venv", ".git", "mlruns", "demo-out", "build",
                                                                "*.egg-info", "__pycache__", ".*cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(root / "dist"), str(build)], check=True, capture_output=True, text=True, timeout=HANG_S)
    wheel = next((root / "dist").glob("ketamine_response-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=HANG_S)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "-q",
                    "--no-deps", str(wheel)], check=True, capture_output=True, text=True, timeout=HANG_S)
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env |= {"OMP_WAIT_POLICY": "PASSIVE", "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'store' / 'mlflow.db'}"}
    return venv, env


def _run(venv: Path, env: dict[str, str], cwd: Path, *args: object) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "ketamine-response"), *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=HANG_S)


def test_installed_package_is_not_the_checkout(installed, tmp_path):
    venv, env = installed
    code = ("from ketamine_response import pipelines; import ketamine_response.features.sources; "
            "from ketamine_response.pipelines.config import load_config, resolve_config; "
            "load_config(); print(pipelines.__file__); print(resolve_config('train_small'))")
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, env=env,
                         cwd=tmp_path, check=True).stdout.splitlines()
    assert all(str(venv) in line and str(REPO) not in line for line in out)


def test_the_wheel_claims_only_its_own_name(installed):
    venv, _ = installed
    site = next((venv / "lib").glob("python3*/site-packages"))
    ours = {p.name for p in site.iterdir() if not p.name.endswith((".dist-info", ".pth"))}
    assert ours == {"ketamine_response"}
    package = site / "ketamine_response"
    assert {p.name for p in package.iterdir() if p.is_dir()} >= {"features", "models", "pipelines"}
    assert not any(p.is_symlink() for p in package.rglob("*"))  # real files, not links back to a checkout


def test_synth_train_score_from_the_wheel(installed, tmp_path):
    venv, env = installed
    (tmp_path / "small.yaml").write_text(SMALL)
    steps = [("synth", "--n", 240, "--seed", 5, "--scenario", "strong", "--out", "c.csv"),
             ("train", "c.csv", "--target", "response_24h", "--config", "small.yaml"),
             # 240 courses are below the minimum sample size: the version has no alias, so name it
             ("score", "c.csv", "--out", "s.csv", "--model", "models:/ketamine-response.response_24h/1")]
    for step in steps:
        result = _run(venv, env, tmp_path, *step)
        assert result.returncode == 0, (step, result.stderr[-2000:])
    scores = pd.read_csv(tmp_path / "s.csv")
    seen = ~scores["warnings"].fillna("").str.contains("treatment not seen")  # esketamine: no 24 h visit
    assert len(scores) == 240 and seen.any() and scores.loc[seen, "probability"].between(0, 1).all()
    assert scores.loc[~seen, "probability"].isna().all()


def test_default_config_error_never_blames_a_flag_not_given(installed, tmp_path):
    venv, env = installed
    result = _run(venv, env, tmp_path, "train", "missing.csv", "--target", "response_24h")
    assert result.returncode == 2 and "--config" not in result.stderr


def test_pristine_ds005917_ingests_from_the_wheel(installed, tmp_path):
    venv, env = installed
    pristine = tmp_path / "ds005917"
    shutil.copytree(REPO / "data" / "public" / "openneuro-ds005917", pristine)
    result = _run(venv, env, tmp_path, "ingest", "bids", pristine, "--out", "c.csv")
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "c.csv")) == 60
