"""Several trainings at once against one store: a fresh SQLite store (one machine) and the team server
(`ketamine-response server` on a real PostgreSQL cluster started here as an unprivileged user). Both
trainings succeed, no registry version is lost, `champion` points at a version that exists, and the
database password appears nowhere: not in run params or tags, the server's output or its command line."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from tests.pipelines.conftest import TARGET

FAST = Path(__file__).parent / "fast_train.yaml"
SECRET = "s3cret-Pw-91"
NAME = f"ketamine-response.{TARGET}"  # the default experiment's model


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(env: dict, *args: str, cwd: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ketamine_response.pipelines.cli", *map(str, args)], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _bin(tool: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    return found[-1] if found else shutil.which(tool)


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster on 127.0.0.1 with password authentication; yields its URI."""
    if _bin("initdb") is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is missing (make test installs it)")
        pytest.skip("PostgreSQL is not installed (make test installs it)")
    user = pwd.getpwnam("postgres" if _has_user("postgres") else "nobody")
    root = Path(tempfile.mkdtemp(prefix="ketamine-pg-"))
    (root / "pw").write_text(SECRET + "\n")
    os.chown(root, user.pw_uid, user.pw_gid)
    os.chown(root / "pw", user.pw_uid, user.pw_gid)
    as_user = ["runuser", "-u", user.pw_name, "--"] if os.geteuid() == 0 else []  # PostgreSQL refuses root
    port = _free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True, timeout=120)  # noqa: E731
    run(_bin("initdb"), "-D", str(root / "data"), "-U", "ketamine", f"--pwfile={root / 'pw'}", "--auth=scram-sha-256")
    run(_bin("pg_ctl"), "-D", str(root / "data"), "-l", str(root / "log"), "-w", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")
    try:
        env = {**os.environ, "PGPASSWORD": SECRET}
        subprocess.run([_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "ketamine", "mlflow"], env=env,
                       check=True, capture_output=True, timeout=60)
        yield f"postgresql://ketamine:{SECRET}@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run([*as_user, _bin("pg_ctl"), "-D", str(root / "data"), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _two_trains(env: dict, tmp: Path) -> list[str]:
    """Two `train` runs started together from two working folders; returns their stdout."""
    cohort = tmp / "c.csv"
    subprocess.run([sys.executable, "-m", "ketamine_response.pipelines.cli", "synth", "--n", "200", "--seed", "5", "--scenario",
                    "strong", "--out", str(cohort)], check=True, capture_output=True, env=env)
    procs = []
    for i in (1, 2):
        (tmp / f"member{i}").mkdir()
        procs.append(_cli(env, "train", cohort, "--target", TARGET, "--config", FAST, "--permutations", "0",
                          cwd=tmp / f"member{i}"))
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err
        assert "Traceback" not in err
        outputs.append(out)
    return outputs


def _check_registry(env: dict, tmp: Path) -> None:
    """Both versions are there; two promotes at once leave champion on one that exists."""
    promotes = [_cli(env, "promote", NAME, v, "--reason", "race test", cwd=tmp) for v in (1, 2)]
    for proc in promotes:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    script = ("from mlflow import MlflowClient; c = MlflowClient(); "
              f"v = sorted(int(m.version) for m in c.search_model_versions(\"name = '{NAME}'\")); "
              f"print(v, c.get_model_version_by_alias('{NAME}', 'champion').version)")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120, check=True)
    versions, champion = out.stdout.strip().rsplit(" ", 1)
    assert versions == "[1, 2]" and champion in ("1", "2")


def test_two_trains_at_once_on_a_fresh_sqlite_store(tmp_path):
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"}
    _two_trains(env, tmp_path)
    _check_registry(env, tmp_path)
    runs = _cli(env, "runs", cwd=tmp_path)
    out, _ = runs.communicate(timeout=120)
    assert runs.returncode == 0 and out.count(TARGET) == 2


def test_team_server_on_postgresql_with_two_members(postgres, tmp_path):
    port = _free_port()
    log = tmp_path / "server.log"
    with open(log, "w") as sink:  # a file, not a pipe: the server logs every request and would fill a pipe
        server = subprocess.Popen([sys.executable, "-m", "ketamine_response.pipelines.cli", "server", "--artifacts",
                                   str(tmp_path / "artifacts"), "--port", str(port), "--workers", "2"],
                                  env={**os.environ, "MLFLOW_BACKEND_STORE_URI": postgres}, stdout=sink, stderr=sink)
    try:
        _wait_up(port, server, log)
        cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode()
        children = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert SECRET not in cmdline and SECRET not in children
        env = {k: v for k, v in os.environ.items() if k != "MLFLOW_BACKEND_STORE_URI"}
        env["MLFLOW_TRACKING_URI"] = f"http://127.0.0.1:{port}"
        _two_trains(env, tmp_path)
        _check_registry(env, tmp_path)
        runs = _cli(env, "runs", "--csv", cwd=tmp_path)
        listing, _ = runs.communicate(timeout=120)
        assert runs.returncode == 0 and listing.count(TARGET) == 2
        dump = subprocess.run([sys.executable, "-c", _DUMP], env=env, capture_output=True, text=True, timeout=120)
        assert dump.returncode == 0 and "ketamine" in dump.stdout and SECRET not in dump.stdout
    finally:
        server.terminate()
        server.wait(timeout=60)
    text = log.read_text()
    assert "postgresql://ketamine:***@" in text and SECRET not in text


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
