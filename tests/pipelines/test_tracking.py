"""A stop (SIGTERM) while a run's artifacts are copied out leaves no half-filled folder.

A real SIGTERM handled by the CLI's own handler, sent from inside MLflow's database calls; a real SQLite store.
"""

from __future__ import annotations

import os
import signal

import pytest

from ketamine_response.pipelines import tracking
from ketamine_response.pipelines.store import open_experiment


@pytest.mark.parametrize("existing", [False, True], ids=["new folder", "existing folder"])
def test_a_stop_while_copying_a_runs_artifacts_leaves_no_half_filled_folder(store, tmp_path, existing):
    """``report`` copies a run's folders one by one; a stop between them removes what it added: the folder it
    made, or in a folder that was there, the entries it made."""
    import mlflow
    import sqlalchemy

    from ketamine_response.features.errors import Terminated
    from ketamine_response.pipelines import cli

    experiment = open_experiment("copied out")
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
    assert (sorted(p.name for p in out.iterdir()) == ["mine.txt"]) if existing else not out.exists()
