"""A stop (SIGTERM) while the store is created or a run's artifacts are copied out leaves nothing half-made.

Real SIGTERMs handled by the CLI's own handler, sent from inside MLflow's database calls; real SQLite stores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.pipelines import tracking
from tests.limits import HANG_S

LEAN = os.path.join(os.path.dirname(__file__), "lean_train.yaml")

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
                              "response_24h", "--config", LEAN], env=env, capture_output=True, text=True, timeout=HANG_S)
    assert "signal sent in the migration" in stopped.stdout, stopped.stderr
    assert stopped.returncode == 143 and "stopped by signal SIGTERM" in stopped.stderr, stopped.stderr
    assert "Traceback" not in stopped.stderr
    # nothing that a later command would take for a store: not the store, not a hidden partial file
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db.lock"]
    after = subprocess.run([sys.executable, "-c", "from ketamine_response.pipelines import tracking; "
                            "print(tracking.open_experiment('after the stop'))"], env=env, capture_output=True,
                           text=True, timeout=HANG_S)
    assert after.returncode == 0 and after.stdout.strip(), after.stderr  # the next command creates it afresh
    assert sorted(p.name for p in db.parent.iterdir()) == ["mlflow.db", "mlflow.db.lock"]


@pytest.mark.parametrize("existing", [False, True], ids=["new folder", "existing folder"])
def test_a_stop_while_copying_a_runs_artifacts_leaves_no_half_filled_folder(store, tmp_path, existing):
    """``report`` copies a run's folders one by one; a stop between them removes what it added: the folder it
    made, or in a folder that was there, the entries it made."""
    import mlflow
    import sqlalchemy

    from ketamine_response.features.errors import Terminated
    from ketamine_response.pipelines import cli

    experiment = tracking.open_experiment("copied out")
    with mlflow.start_run(experiment_id=experiment) as run:
        tracking.log_run_content({}, {}, {}, {"report/index.html": "<p>page</p>", "shap/table.csv": "a\n1\n"})
    out, sent = tmp_path / "report", []
    if existing:
        out.mkdir()
        (out / "mine.txt").write_text("kept")

    def stop_at_the_second_folder(conn, cursor, statement, *rest):  # each folder's copy first looks the run up
        if (out / "report" / "index.html").is_file() and not sent:
            sent.append(statement)
            os.kill(os.getpid(), signal.SIGTERM)  # the handler raises Terminated here, inside MLflow's call

    previous = signal.signal(signal.SIGTERM, cli._terminate)
    sqlalchemy.event.listen(sqlalchemy.engine.Engine, "before_cursor_execute", stop_at_the_second_folder)
    try:
        with pytest.raises(Terminated):
            tracking.download_artifacts(run.info.run_id, ("report", "shap"), out)
    finally:
        sqlalchemy.event.remove(sqlalchemy.engine.Engine, "before_cursor_execute", stop_at_the_second_folder)
        signal.signal(signal.SIGTERM, previous)
        cli._SIGNALLED.clear()
    assert sent
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"] if existing else not out.exists()
