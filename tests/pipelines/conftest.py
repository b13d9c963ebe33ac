"""A shared MLflow SQLite store (migrations cost seconds) and a small training config."""

from __future__ import annotations

from pathlib import Path

import pytest

FAST_CONFIG = Path(__file__).parent / "fast_train.yaml"


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    """A migrated SQLite tracking store under a session tmp dir; MLFLOW_TRACKING_URI points at it."""
    root = tmp_path_factory.mktemp("store")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    from pipelines import tracking

    tracking.open_experiment("warm-up")
    yield root
    mp.undo()


@pytest.fixture(scope="session")
def fast_config():
    from pipelines.config import load_config

    return load_config(FAST_CONFIG)
