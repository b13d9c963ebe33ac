"""Creating a local store: a stop part-way through MLflow's schema migration leaves no half-made store.

A real SIGTERM handled by the CLI's own handler, sent from inside MLflow's migration; a real SQLite store.
"""

from __future__ import annotations

import os
import subprocess
import sys

from ketamine_response.features.synthetic.cohort import build_cohort
from tests.limits import HANG_S
from tests.pipelines.conftest import LEAN_CONFIG

# train, with a SIGTERM sent from inside MLflow's migration of the new store: at its first batch step (SQLite
# alters a table by copying it to _alembic_tmp_<table>), dozens of steps in and dozens before the end
STOPPED_IN_MIGRATION = """
import os, signal, sys
import sqlalchemy
from ketamine_response.pipelines import cli

sent = []

@sqlalchemy.event.listens_for(sqlalchemy.engine.Engine, "before_cursor_execute")
def stop_part_way(conn, cursor, statement, *rest):
    if "_alembic_tmp_" in statement and not sent:
        sent.append(statement)
        os.kill(os.getpid(), signal.SIGTERM)

code = cli.main(sys.argv[1:])
print("signal sent in the migration" if sent else "no signal sent")
sys.exit(code)
"""


def test_a_stop_while_the_store_is_created_leaves_no_half_made_store(tmp_path):
    cohort = tmp_path / "cohort.csv"
    build_cohort(120, seed=3)[0].to_csv(cohort, index=False)
    db = tmp_path / "mlruns" / "mlflow.db"
    db.parent.mkdir()
    # a killed process's leftover, under a name this process could be given again (pids repeat)
    (db.parent / f".mlflow.db.{os.getpid()}-0000.partial").write_text("half a store")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{db}"}
    stopped = subprocess.run([sys.executable, "-c", STOPPED_IN_MIGRATION, "train", str(cohort), "--target",
                              "response_24h", "--config", str(LEAN_CONFIG)], env=env, capture_output=True, text=True, timeout=HANG_S)
    assert "signal sent in the migration" in stopped.stdout, stopped.stderr
    assert stopped.returncode == 143 and "stopped by signal SIGTERM" in stopped.stderr, stopped.stderr
    assert "Traceback" not in stopped.stderr
    # nothing that a later command would take for a store: not the store, not a hidden partial file
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db.lock"]
    after = subprocess.run([sys.executable, "-c", "from ketamine_response.pipelines.store import open_experiment; "
                            "print(open_experiment('after the stop'))"], env=env, capture_output=True,
                           text=True, timeout=HANG_S)
    assert after.returncode == 0 and after.stdout.strip(), after.stderr  # the next command creates it afresh
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db", "mlflow.db.lock"]
