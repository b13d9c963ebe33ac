"""Shared fixtures (small real cohorts under tmp_path, the session store, Spark) and how make test's two xdist workers share the work."""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

# Set before NumPy, SciPy or LightGBM load (they read these once), and inherited by every CLI subprocess: the
# two xdist workers already fill the two cores, so a second BLAS or OpenMP thread in each only spins against
# the other worker (the suite: 1,143 s of tests before, 1,055 s after; README, Development).
for _pool in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_pool, "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

TESTS = Path(__file__).resolve().parent
WIDER_FIXTURE = re.compile(r"scope=\"(module|class|package)\"")


def worker_group(nodeid: str) -> str:
    """Which tests ``make test``'s two xdist workers run together (one unit of work each): the fault suite as
    one (its package fixtures train a model in the background while its probes run), every module that uses
    the shared training run as one (it is trained once, in one worker), a module with a module or class
    fixture as one (built once, not once per worker), and any other test on its own, wherever a worker is free.

    Read from the test files' text, as xdist's controller schedules by test id and never imports the tests;
    naming a fixture it does not use only puts a module in a larger unit.
    """
    path = nodeid.split("::", 1)[0]
    if path.startswith("tests/faults/"):
        return "tests/faults/"
    shared, wider = _module_uses(path)
    if shared:
        return "strong_run"
    return path if wider else nodeid


@functools.cache  # once per module, not once per test id
def _module_uses(path: str) -> tuple[bool, bool]:
    """(the module names the shared training run, it has a module, class or package fixture)."""
    text = (TESTS.parent / path).read_text(encoding="utf-8") if path.endswith(".py") else ""
    return "strong_run" in text, WIDER_FIXTURE.search(text) is not None


try:  # the scheduler hook exists where pytest-xdist is installed (the test extra); plain pytest runs without it
    from xdist.scheduler import LoadScopeScheduling
except ImportError:  # pragma: no cover
    LoadScopeScheduling = None

if LoadScopeScheduling is not None:
    class _SharedFixtureScheduling(LoadScopeScheduling):
        """xdist's loadscope (largest unit first), its units from :func:`worker_group`. pytest-xdist's own
        ``--dist loadgroup`` marks cannot be used: it rewrites a private id pytest 9.2 no longer reads."""

        def _split_scope(self, nodeid: str) -> str:
            return worker_group(nodeid)

    def pytest_xdist_make_scheduler(config, log):
        return _SharedFixtureScheduling(config, log)

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
    from ketamine_response.pipelines.store import open_experiment

    open_experiment("warm-up")
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
