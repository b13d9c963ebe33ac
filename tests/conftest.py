"""Shared fixtures: small real cohorts written to tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

TESTS = Path(__file__).resolve().parent
SHARED = ("strong_run", "spark")  # session fixtures that cost a training or a JVM: built once, in one worker
WIDER = {"module", "class", "package"}  # fixtures a worker would build again for its share of the tests


def worker_group(item: pytest.Item) -> str | None:
    """The xdist group *item* runs in under ``make test`` (``-n 2 --dist loadgroup``): the fault suite as one
    (its package fixtures train in the background while its probes run), then the first shared session
    fixture it uses, then its module when it uses a module or class fixture (built once, not once per
    worker). None: the test is scheduled on its own, wherever a worker is free."""
    if TESTS / "faults" in Path(str(item.path)).parents:
        return "faults"
    names = getattr(item, "fixturenames", ())
    shared = next((name for name in SHARED if name in names), None)
    if shared is not None:
        return shared
    # pytest has no public accessor for the scopes of an item's fixtures
    definitions = getattr(item, "_fixtureinfo", None)
    scopes = {d[-1].scope for d in definitions.name2fixturedefs.values()} if definitions is not None else set()
    return item.nodeid.split("::", 1)[0] if scopes & WIDER else None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks into the test ids
def pytest_collection_modifyitems(config, items):
    for item in items:
        group = worker_group(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))

VALID_ROWS = [
    {"patient_id": "P1", "site": "A", "treatment": "ketamine_iv", "madrs_baseline": "32", "madrs_24h": "12"},
    {"patient_id": "P1", "site": "A", "treatment": "placebo", "madrs_baseline": "30", "madrs_24h": "28"},
    {"patient_id": "P2", "site": "B", "treatment": "esketamine_in", "madrs_baseline": "40", "madrs_24h": ""},
]


@pytest.fixture
def raw_cohort() -> pd.DataFrame:
    """A valid three-course cohort as the CSV reader returns it (all text)."""
    return pd.DataFrame(VALID_ROWS, dtype="str")


@pytest.fixture
def write_csv(tmp_path: Path):
    """Write text to a CSV file under tmp_path and return its path."""
    def _write(text: str | bytes, name: str = "cohort.csv") -> Path:
        path = tmp_path / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path
    return _write


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    """A migrated SQLite tracking store under a session tmp dir; MLFLOW_TRACKING_URI points at it."""
    root = tmp_path_factory.mktemp("store")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{root / 'mlflow.db'}")
    from ketamine_response.pipelines import tracking

    tracking.open_experiment("warm-up")
    yield root
    mp.undo()


@pytest.fixture(scope="session")
def spark():
    """One local[2] SparkSession for every Spark test (about 12 s to start). Skipped where pyspark or
    Java is missing, except in CI, where `make test` installs both and a skip would hide a failure."""
    import shutil

    try:
        import pyspark  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("pyspark is not installed (make test installs the spark extra)")
    if shutil.which("java") is None and not os.environ.get("CI"):
        pytest.skip("Java is not installed (make test installs it)")
    from ketamine_response.pipelines.spark import session

    spark = session("local[2]")
    yield spark
    spark.stop()
