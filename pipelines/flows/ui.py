"""The ``ui`` and ``server`` flows: an MLflow server run as a child the command owns.

``ui`` serves the project's own store to this machine. ``server`` is the team's tracking server:
PostgreSQL as the backend store (concurrent writers, many users) and artifacts served through the
server, so members need only its URL. The database URI (it may hold a password) reaches MLflow
through the environment (``MLFLOW_BACKEND_STORE_URI``), never the command line, so it is not shown in
the process list, and it is printed with its password masked.

The server runs in its own process group, so stopping the command (Ctrl-C, SIGTERM) stops the server
and every worker it started: the port is free again when the command returns.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType

from ketamine_response.features.errors import UsageError
from ketamine_response.pipelines.tracking import redact

STOP_WAIT_S = 5.0


def check_port(host: str, port: int) -> None:
    """A usage error (exit 2) for a port outside 1-65535 or one something already listens on."""
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be 1-65535, got {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(f"port {port} on {host} is not available ({exc.strerror or exc}): another server "
                             "(perhaps another 'ketamine-response ui') uses it. Stop it, or pass --port.") from None


def server_command(uri: str, host: str, port: int) -> list[str]:
    """The command line the UI runs: one worker and no job runner (8 s and 0.5 GB to start, not 29 s and 2.5 GB)."""
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host,
            "--port", str(port), "--workers", "1"]


def team_server_command(artifacts: str, host: str, port: int, workers: int) -> list[str]:
    """The team server's command line; the database URI goes in ``MLFLOW_BACKEND_STORE_URI``."""
    return [sys.executable, "-m", "mlflow", "server", "--artifacts-destination", artifacts, "--serve-artifacts",
            "--host", host, "--port", str(port), "--workers", str(workers)]


def check_database_uri(uri: str) -> None:
    """A usage error unless *uri* is a PostgreSQL SQLAlchemy URI (SQLite is the single-user default)."""
    if not uri.startswith(("postgresql://", "postgresql+psycopg://")):
        raise UsageError(f"the team server's database must be PostgreSQL (postgresql://USER:PASSWORD@HOST:PORT/DB), "
                         f"got {redact(uri)!r}; for one user the default SQLite store needs no server.")


def run_team_server(database: str, artifacts: str, host: str, port: int, workers: int) -> int:
    """Serve the team store until stopped; returns the exit code."""
    check_database_uri(database)
    check_port(host, port)
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": database, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return serve(team_server_command(artifacts, host, port, workers), env)


def landing_url(host: str, port: int, experiment: str) -> tuple[str, str]:
    """(the URL that opens *experiment*'s runs table in model-training mode with its headline columns, a note
    for the user when it cannot: no store or no such experiment yet).

    MLflow 3.17's sidebar toggle (GenAI or model training) is read from the URL's ``workflowType`` before the
    browser's localStorage, whose default is GenAI: the parameter is what makes a fresh profile land on the
    runs table rather than on the GenAI overview. The columns come from a shared view
    (:func:`~ketamine_response.pipelines.tracking.share_runs_view`). Both are plain MLflow URL state, so no
    app plugin (an entry point the install must register, and ``--app-name``) is needed.
    """
    from urllib.parse import urlencode

    from ketamine_response.pipelines.tracking import RUNS_VIEW_KEY, share_runs_view

    shown = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # a wildcard bind is reached by loopback here
    base = f"http://{f'[{shown}]' if ':' in shown else shown}:{port}/"
    experiment_id = share_runs_view(experiment)
    if experiment_id is None:
        return base, f"no experiment '{experiment}' in the store yet: train first, or pass --experiment NAME"
    query = urlencode({"workflowType": "machine_learning", "viewStateShareKey": RUNS_VIEW_KEY})
    return f"{base}#/experiments/{experiment_id}/runs?{query}", ""


def run_ui(uri: str, host: str, port: int) -> int:
    """Serve the project's store until the server exits or this process is told to stop; returns the exit code."""
    check_port(host, port)
    return serve(server_command(uri, host, port), {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})


def serve(command: list[str], env: dict[str, str]) -> int:
    """Run *command* in its own process group until it exits or this process gets SIGTERM/SIGINT.

    The signal handler only forwards SIGTERM to the group (waiting inside a handler could deadlock
    with the interrupted wait); the loop below gives the server STOP_WAIT_S to close its connections,
    then kills what is left, so the port is free when this returns.
    """
    server = subprocess.Popen(command, env=env, start_new_session=True)
    stopped: list[float] = []

    def stop(_signum: int, _frame: FrameType | None) -> None:
        stopped.append(time.monotonic())
        _signal_group(server, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:
                code = server.wait(timeout=0.2)
                break
            except subprocess.TimeoutExpired:
                if stopped and time.monotonic() - stopped[0] > STOP_WAIT_S:
                    _signal_group(server, signal.SIGKILL)
    finally:
        if server.poll() is None:
            _signal_group(server, signal.SIGKILL)
            server.wait()
        _signal_group(server, signal.SIGKILL)  # workers the server left behind
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0 if stopped else code


def _signal_group(server: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signum)
