"""Several trainings at once against one store: a fresh SQLite store (one machine) and the team server
(`ketamine-response server` on a real PostgreSQL cluster started here as an unprivileged user). Both
trainings succeed, no registry version is lost, `champion` points at a version that exists, and the
database password appears nowhere: not in run params or tags, the server's output or its command line."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ketamine_response.pipelines.tracking import redact
from tests.limits import HANG_S
from tests.pipelines.conftest import LEAN_CONFIG, TARGET
from tests.postgres_fixture import Postgres, free_port, postgres_cluster  # noqa: F401 (the fixture 'postgres')

LEAN = LEAN_CONFIG  # no benefit model: these tests check commands, not that model
NAME = f"ketamine-response.{TARGET}"  # the default experiment's model


def _cli(env: dict, *args: object, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ketamine_response.pipelines.cli", *map(str, args)], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _two_trains(env: dict, tmp: Path) -> list[str]:
    """Two `train` runs started together from two working folders; returns their stdout."""
    cohort = tmp / "c.csv"
    subprocess.run([sys.executable, "-m", "ketamine_response.pipelines.cli", "synth", "--n", "200", "--seed", "5", "--scenario",
                    "strong", "--out", str(cohort)], check=True, capture_output=True, env=env)
    procs = []
    for i in (1, 2):
        (tmp / f"member{i}").mkdir()
        procs.append(_cli(env, "train", cohort, "--target", TARGET, "--config", LEAN, "--permutations", "0",
                          cwd=tmp / f"member{i}"))
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=HANG_S)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        outputs.append(out)
    return outputs


def _check_registry(env: dict, tmp: Path) -> None:
    """Both versions are there; two promotes at once leave champion on one that exists."""
    promotes = [_cli(env, "promote", NAME, v, "--reason", "race test", cwd=tmp) for v in (1, 2)]
    for proc in promotes:
        _, err = proc.communicate(timeout=HANG_S)
        assert proc.returncode == 0, err
    script = ("from mlflow import MlflowClient; c = MlflowClient(); "
              f"v = sorted(int(m.version) for m in c.search_model_versions(\"name = '{NAME}'\")); "
              f"print(v, c.get_model_version_by_alias('{NAME}', 'champion').version)")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=HANG_S, check=True)
    versions, champion = out.stdout.strip().rsplit(" ", 1)
    assert versions == "[1, 2]" and champion in ("1", "2")


def test_two_trains_at_once_on_a_fresh_sqlite_store(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"}
    _two_trains(env, tmp_path)
    _check_registry(env, tmp_path)
    runs = _cli(env, "runs", cwd=tmp_path)
    out, _ = runs.communicate(timeout=HANG_S)
    assert runs.returncode == 0 and out.count(TARGET) == 2


def test_team_server_on_postgresql_with_two_members(postgres: Postgres, tmp_path):
    """The password (with / # @ %, from a --database-file) is in no process's command line while the
    server runs, nor in the server's output and log, nor in any run's params or tags; SIGTERM: 143."""
    port = free_port()
    log = tmp_path / "server.log"
    secret_file = tmp_path / "database"
    secret_file.write_text(postgres.odd_uri + "\n")
    secret_file.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_BACKEND_STORE_URI"}
    with open(log, "w") as sink:  # a file, not a pipe: the server logs every request and would fill a pipe
        server = subprocess.Popen([sys.executable, "-m", "ketamine_response.pipelines.cli", "server", "--artifacts",
                                   str(tmp_path / "artifacts"), "--port", str(port), "--workers", "2",
                                   "--database-file", str(secret_file)], env=env, stdout=sink, stderr=sink)
    try:
        _wait_up(port, server, log)
        assert not _in_command_lines(Postgres.secrets())
        env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{port}"
        _two_trains(env, tmp_path)
        _check_registry(env, tmp_path)
        runs = _cli(env, "runs", "--csv", cwd=tmp_path)
        listing, _ = runs.communicate(timeout=HANG_S)
        assert runs.returncode == 0 and listing.count(TARGET) == 2
        dump = subprocess.run([sys.executable, "-c", _DUMP], env=env, capture_output=True, text=True, timeout=HANG_S)
        assert dump.returncode == 0 and "ketamine" in dump.stdout
        assert not [s for s in Postgres.secrets() if s in dump.stdout]
    finally:
        server.terminate()
        server.wait(timeout=HANG_S)
    text = log.read_text()
    assert server.returncode == 143 and "stopped by signal SIGTERM" in text and "Traceback" not in text
    assert f"postgresql://odd:***@127.0.0.1:{postgres.port}/mlflow" in text
    assert not [s for s in Postgres.secrets() if s in text]


def _in_command_lines(secrets: tuple[str, ...]) -> list[str]:
    """The /proc/PID/cmdline of every process on the machine that holds one of *secrets*."""
    found = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            line = path.read_bytes().decode(errors="replace").replace("\0", " ")
        except OSError:  # the process ended while we looked
            continue
        if any(s in line for s in secrets):
            found.append(f"{path}: {line}")
    return found


@pytest.mark.parametrize(("uri", "shown"), [
    ("postgresql://odd:Sl/ash#Hash@db:5432/m", "postgresql://odd:***@db:5432/m"),
    ("postgresql://odd:Sl%2Fash%23Hash%40At%25Pct@db/m", "postgresql://odd:***@db/m"),
    ("postgresql://odd@db/m?sslmode=require&password=Sl%2Fash", "postgresql://odd@db/m?password=***&sslmode=require"),
    ("postgresql://odd:Pct@At@db/m", "postgresql://***"),  # an unencoded @: the rest would pass as the host
    ("postgresql://odd:Pct@db:port/m", "postgresql://***"),  # unparseable
    ("host=db password=Pct", "***"),  # a libpq keyword string, not a URI
    ("sqlite:////tmp/a b/mlruns/mlflow.db", "sqlite:////tmp/a b/mlruns/mlflow.db"),  # nothing to hide: as given
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
])
def test_redact_masks_every_password_form(uri, shown):
    assert redact(uri) == shown
    assert not any(piece in redact(uri) for piece in ("Sl/ash", "Sl%2F", "Hash", "Pct"))


_DUMP = ("import mlflow; r = mlflow.search_runs(search_all_experiments=True); "
         "print(r.filter(regex='^(params|tags)').astype(str).to_csv())")


def _wait_up(port: int, server: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
            return
        except OSError:
            if server.poll() is not None:
                pytest.fail(f"the team server exited: {log.read_text()[-2000:]}")
            time.sleep(1)
    pytest.fail("the team server did not start")
