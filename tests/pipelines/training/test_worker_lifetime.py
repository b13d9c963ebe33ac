"""The local backend's worker processes die with the process that started them, even one killed by SIGKILL
(``kill -9``, the OOM killer), which runs no cleanup of its own."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.faults.probes import descendants, survivors
from tests.limits import HANG_S

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")

# a driver that opens the backend as training does, starts its workers, then keeps them busy for minutes
DRIVER = """
import os, time
from joblib import delayed
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.training.backend import parallel

with parallel(TrainConfig(n_jobs=2)) as run:
    print(sorted(set(run(delayed(os.getpid)() for _ in range(8)))), flush=True)
    run(delayed(time.sleep)(600) for _ in range(2))
"""


def test_workers_die_when_their_parent_is_killed(tmp_path):
    driver = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, start_new_session=True)
    try:
        ran_on = set(json.loads(driver.stdout.readline()))  # the pids its first tasks ran in
        time.sleep(1)  # the workers are inside their 600 s tasks
        below = descendants(driver.pid)
        workers = {pid for pid in below if b"popen_loky" in Path(f"/proc/{pid}/cmdline").read_bytes()}
        assert len(workers) == 2 and ran_on <= workers, (ran_on, workers, below)
        os.kill(driver.pid, signal.SIGKILL)  # the one process, not its group
        driver.wait(timeout=HANG_S)
        assert not survivors(below, within=30), f"processes outlived the killed parent: {below}"
    finally:
        with contextlib.suppress(ProcessLookupError):  # this test's own group: nothing left behind if it failed
            os.killpg(driver.pid, signal.SIGKILL)
        driver.wait(timeout=HANG_S)
        driver.stdout.close()
