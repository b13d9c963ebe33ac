"""`server` and `ui` fail like every command (issue 27, items 1 and 5): exit 2 with one paragraph that
names what is wrong, no traceback, never 70, no banner before a refusal, and no password in the output;
Ctrl-C exits 130 and SIGTERM 143. The probes that need a database use a real PostgreSQL cluster
(tests/postgres_fixture.py)."""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.probes import REPO, assert_refused, cli, cli_env, command
from tests.limits import HANG_S
from tests.postgres_fixture import Postgres, free_port, postgres_cluster  # noqa: F401 (the fixture 'postgres')

TIMEOUT = HANG_S  # catches a hang, not a busy machine (tests/limits.py)
BANNER = "team tracking server on"


def _server(*args: object, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command("server", "--artifacts", "artifacts-never-made", *args), cwd=REPO,
                          env=env or cli_env(), capture_output=True, text=True, timeout=TIMEOUT)


def _no_secret(result: subprocess.CompletedProcess[str]) -> None:
    shown = result.stdout + result.stderr
    assert not [s for s in Postgres.secrets() if s in shown], shown
    assert BANNER not in result.stdout, "a banner before the refusal"


def _secret_file(folder: Path, uri: str, mode: int = 0o600) -> Path:
    path = folder / "database"
    path.write_text(uri + "\n")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("uri", [Postgres(5432).odd_uri, Postgres(5432).query_uri(),
                                 "postgresql://odd:Sl/ash#Hash@127.0.0.1/mlflow"], ids=["userinfo", "query", "raw"])
def test_a_password_on_the_command_line_is_refused(uri):
    result = _server("--database", uri)
    assert_refused(result, "--database-file", "MLFLOW_BACKEND_STORE_URI", "process list")
    _no_secret(result)


def test_a_database_file_others_can_read_is_refused(tmp_path):
    path = _secret_file(tmp_path, Postgres(5432).odd_uri, 0o640)
    result = _server("--database-file", path)
    assert_refused(result, path, f"chmod 600 {path}")
    _no_secret(result)


@pytest.mark.parametrize("case", ["missing", "folder", "two lines", "empty"])
def test_a_database_file_that_is_not_one_uri_is_refused(tmp_path, case):
    path = tmp_path / "database"
    if case == "folder":
        path.mkdir()
    elif case != "missing":
        path.write_text({"two lines": f"{Postgres(1).odd_uri}\n{Postgres(2).odd_uri}\n", "empty": "\n"}[case])
        path.chmod(0o600)
    result = _server("--database-file", path)
    assert_refused(result, path)
    _no_secret(result)


@pytest.mark.parametrize(("uri", "named"), [
    ("sqlite:///mlflow.db", "must be PostgreSQL"),
    ("postgresql://odd:Hash@At@127.0.0.1/mlflow", "percent-encoded"),  # a raw @ in the password
    ("postgresql://odd:Pct-77@127.0.0.1:port/mlflow", "cannot be parsed"),
], ids=["sqlite", "raw-at", "bad-port"])
def test_a_uri_that_is_not_postgresql_is_refused(tmp_path, uri, named):
    result = _server("--database-file", _secret_file(tmp_path, uri))
    assert_refused(result, named)
    _no_secret(result)


def test_a_missing_driver_says_install_the_server_extra(tmp_path):
    """psycopg made unimportable, as in an install without the [server] extra; refused before MLflow starts."""
    (tmp_path / "psycopg.py").write_text("raise ModuleNotFoundError(\"No module named 'psycopg'\", name='psycopg')\n")
    env = {**cli_env(), "PYTHONPATH": str(tmp_path), "MLFLOW_BACKEND_STORE_URI": Postgres(free_port()).odd_uri}
    result = _server(env=env)
    assert_refused(result, "[server]", "pip install 'ketamine-response[server]'", "postgresql://odd:***@")
    _no_secret(result)


def test_an_unreachable_database_is_named_before_any_banner():
    port = free_port()  # nothing listens there
    env = {**cli_env(), "MLFLOW_BACKEND_STORE_URI": Postgres(port).odd_uri}
    result = _server("--port", free_port(), env=env)
    assert_refused(result, f"cannot reach 127.0.0.1:{port}", "postgresql://odd:***@")
    _no_secret(result)


def test_a_busy_port_is_refused_before_any_banner(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _server("--port", port, "--database-file", _secret_file(tmp_path, Postgres(1).odd_uri))
        ui = cli("ui", "--port", port, timeout=TIMEOUT)
    assert_refused(result, f"port {port}")
    _no_secret(result)
    assert_refused(ui, f"port {port}")
    assert "MLflow UI on" not in ui.stdout


def test_a_wrong_password_says_authentication_failed(postgres: Postgres):
    env = {**cli_env(), "MLFLOW_BACKEND_STORE_URI": postgres.query_uri("Pct-77-wrong")}
    result = _server("--port", free_port(), env=env)
    assert_refused(result, "authentication failed: check the user and password", "password=***")
    _no_secret(result)
    assert "Pct-77-wrong" not in result.stdout + result.stderr


def _stop_after_banner(args: list[object], env: dict[str, str], banner: str, signum: int, folder: Path,
                       while_running: Callable[[], None] = lambda: None) -> tuple[int, str, str]:
    """Start the CLI, call *while_running* and send *signum* once *banner* is on its stdout;
    returns (exit code, stdout, stderr)."""
    out, err = folder / "out.txt", folder / "err.txt"
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen(command(*args), cwd=REPO, env=env, stdout=o, stderr=e)
    try:
        deadline = time.monotonic() + TIMEOUT
        while banner not in out.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, f"exited {proc.returncode} before its banner: {err.read_text()[-2000:]}"
        while_running()
        proc.send_signal(signum)
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out.read_text(), err.read_text()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_ui_exits_130_on_ctrl_c_and_143_on_sigterm(tmp_path, signum, code):
    port = free_port()
    done, _, err = _stop_after_banner(["ui", "--port", port], cli_env(), "MLflow UI on", signum, tmp_path)
    assert done == code and "Traceback" not in err, err
    assert _port_free(port)


def test_server_exits_130_on_ctrl_c_and_no_process_shows_the_password(postgres: Postgres, tmp_path):
    """The password in the query string, from the environment: masked in the banner, in no command line."""
    port = free_port()
    env = {**cli_env(), "MLFLOW_BACKEND_STORE_URI": postgres.query_uri()}
    args: list[object] = ["server", "--artifacts", tmp_path / "artifacts", "--port", port]
    leaks: list[str] = []

    def look() -> None:  # every process's command line, the server and MLflow's starting child among them
        for path in Path("/proc").glob("[0-9]*/cmdline"):
            try:
                line = path.read_bytes().decode(errors="replace")
            except OSError:  # the process ended while we looked
                continue
            leaks.extend(f"{path}: {line}" for s in Postgres.secrets() if s in line)

    done, out, err = _stop_after_banner(args, env, BANNER, signal.SIGINT, tmp_path, look)
    assert done == 130 and "interrupted" in err and "Traceback" not in err, err
    assert "password=***" in out and not leaks
    assert not [s for s in Postgres.secrets() if s in out + err]
    assert _port_free(port)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_a_bad_workers_count_is_refused():
    env = {**cli_env(), "MLFLOW_BACKEND_STORE_URI": Postgres(1).odd_uri}
    result = _server("--workers", 0, env=env)
    assert_refused(result, "--workers")
    _no_secret(result)


@pytest.mark.parametrize(("args", "named"), [
    (("--workers", "100000"), "from 1 to 64"),  # accepted before: it forked until the load average was 50
    (("--artifacts", "README.md"), "not a folder"),  # an existing file: it started, and logging hung
    (("--host", "999.1.1.1"), "not an address of this machine"),  # it blamed "another server" on the port
], ids=["workers", "artifacts-file", "bad-host"])
def test_server_arguments_that_cannot_work_are_refused_before_anything_starts(tmp_path, args, named):
    env = {**cli_env(), "MLFLOW_BACKEND_STORE_URI": "postgresql://odd@127.0.0.1:1/mlflow"}
    result = _server(*args, env=env)
    assert_refused(result, named)
    _no_secret(result)


def test_another_driver_in_the_uri_is_named_with_the_fix_that_works(tmp_path):
    """``postgresql+psycopg2://``: the [server] extra installs psycopg 3, so "install the extra" would not help."""
    env = {**cli_env(), "MLFLOW_BACKEND_STORE_URI": "postgresql+psycopg2://odd@127.0.0.1:1/mlflow"}
    result = _server(env=env)
    assert_refused(result, "psycopg2", "postgresql+psycopg://")


def test_ui_on_a_host_that_is_not_this_machine_says_so():
    result = cli("ui", "--host", "999.1.1.1", "--port", free_port())
    assert_refused(result, "--host 999.1.1.1", "not an address of this machine")
    assert "another server" not in result.stderr
