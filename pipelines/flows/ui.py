"""The ``ui`` and ``server`` flows: an MLflow server run as a child the command owns.

``ui`` serves the project's own store to this machine. ``server`` is the team's tracking server:
PostgreSQL as the backend store (concurrent writers, many users) and artifacts served through the
server, so members need only its URL. The database URI may hold a password, so it comes from a file
only its owner can read (``--database-file``) or from ``MLFLOW_BACKEND_STORE_URI``; ``--database`` takes
only a URI without one (peer or trust authentication, ``~/.pgpass``, ``PGPASSWORD``): an argument is in
the process list for the process's whole life. The URI reaches MLflow through the environment, and is
printed only as :func:`~ketamine_response.pipelines.store.redact` masks it.

Every check (the URI, the port, the driver, a real connection to the database) runs before the
command prints its banner, so a refusal is one message and nothing that looks like a started server.
The server runs in its own process group, so stopping the command (Ctrl-C: 130, SIGTERM: 143) stops
the server and every worker it started: the port is free again when the command returns.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

from ketamine_response.features.errors import Terminated, TrackingError, UsageError
from ketamine_response.pipelines.tracking import redact

STOP_WAIT_S = 5.0
MAX_WORKERS = 64
CONNECT_TIMEOUT_S = 10  # a database that does not answer in this long is reported as unreachable
DATABASE_FILE_MAX = 64 * 1024
PASSING = ("put it in a file only you can read (chmod 600 FILE) and pass --database-file FILE, or set "
           "MLFLOW_BACKEND_STORE_URI")
URI_FORM = ("postgresql://USER:PASSWORD@HOST:PORT/DB, with any @ : / # ? % in the user or password "
            "percent-encoded (%40 %3A %2F %23 %3F %25)")


def check_port(host: str, port: int) -> None:
    """A usage error (exit 2) for a port outside 1-65535 or one something already listens on."""
    if not 1 <= port <= 65535:
        raise UsageError(f"--port must be 1-65535, got {port}")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except socket.gaierror as exc:  # the host, not the port: say so rather than blame another server
            raise UsageError(f"--host {host} is not an address of this machine ({exc.strerror or exc}). Give an IP "
                             "address or host name of this machine, such as 127.0.0.1 or 0.0.0.0.") from None
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise UsageError(f"--host {host} is not an address of this machine ({exc.strerror}). Give one of "
                                 "its addresses, such as 127.0.0.1 or 0.0.0.0.") from None
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


def team_database(given: str | None, file: str | None) -> str:
    """The database URI from --database-file, --database (refused if it holds a password) or
    ``MLFLOW_BACKEND_STORE_URI``, checked to be a PostgreSQL URI that parses."""
    if given and file:
        raise UsageError("pass the database once: --database-file FILE or --database URI, not both")
    uri = (_read_database_file(Path(file)) if file else given or os.environ.get("MLFLOW_BACKEND_STORE_URI", "")).strip()
    if not uri:
        raise UsageError(f"server needs the PostgreSQL database URI ({URI_FORM}): {PASSING}. --database URI takes "
                         "a URI without a password (peer authentication, ~/.pgpass or PGPASSWORD).")
    check_database_uri(uri)
    if given and redact(given) != given:  # the password is in this process's argv: refuse before anything else
        raise UsageError(f"--database {redact(given)} holds a password, which every user of this machine could "
                         f"read in the process list (ps) for as long as the server runs. Instead, {PASSING}; or "
                         "leave the password out of the URI and give it in ~/.pgpass or PGPASSWORD.")
    return uri


def _read_database_file(path: Path) -> str:
    """The one line of *path*, a regular file that neither group nor others can read or change."""
    try:
        with open(path, "rb") as handle:
            mode = os.fstat(handle.fileno()).st_mode
            if stat.S_ISREG(mode) and not mode & 0o077:
                data = handle.read(DATABASE_FILE_MAX + 1)
    except OSError as exc:
        raise UsageError(f"{path}: the database file cannot be read ({exc.strerror or exc}). Check the path "
                         "given to --database-file.") from None
    if not stat.S_ISREG(mode):
        raise UsageError(f"{path}: --database-file must name a regular file holding the database URI")
    if mode & 0o077:
        raise UsageError(f"{path}: other users can read or change this file, which holds the database password "
                         f"(mode {stat.S_IMODE(mode):o}). Run: chmod 600 {path}")
    lines = [line.strip() for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
    if len(data) > DATABASE_FILE_MAX or len(lines) != 1:
        raise UsageError(f"{path}: the database file must hold one line, the URI ({URI_FORM}); it holds "
                         f"{len(lines) if len(data) <= DATABASE_FILE_MAX else 'too many'} lines")
    return lines[0]


def check_database_uri(uri: str) -> None:
    """A usage error unless *uri* parses as a PostgreSQL SQLAlchemy URI (SQLite is the single-user default)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(uri)
    except (ArgumentError, ValueError):
        url = None
    if url is None or "@" in (url.host or ""):  # a raw @ in the password: the rest of it would pass as the host
        raise UsageError(f"the database URI {redact(uri)} cannot be parsed: write it as {URI_FORM}")
    if url.get_backend_name() != "postgresql":
        raise UsageError(f"the team server's database must be PostgreSQL ({URI_FORM}), got {redact(uri)}; for "
                         "one user the default SQLite store needs no server.")


def check_database(uri: str) -> None:
    """Connect once, so a missing driver, wrong credentials or an unreachable database is one message
    (exit 2) before the banner, not a traceback from inside MLflow."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    try:
        engine = sqlalchemy.create_engine(uri, poolclass=NullPool, connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    except ImportError as exc:  # SQLAlchemy imports the DBAPI module (psycopg) here
        raise UsageError(_missing_driver(uri, exc)) from None
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise UsageError(_connect_failure(uri, exc)) from None
    finally:
        engine.dispose()


def _missing_driver(uri: str, exc: ImportError) -> str:
    """The [server] extra installs psycopg 3 (``postgresql+psycopg://``, which SQLAlchemy 2.1 also drives plain
    ``postgresql://`` with); another driver named in the URI (psycopg2, asyncpg) is the user's to install."""
    from sqlalchemy.engine import make_url

    driver = make_url(uri).get_driver_name()
    if driver == "psycopg":
        fix = "install the [server] extra, pip install 'ketamine-response[server]'"
    else:
        fix = (f"install the '{driver}' driver, or use the driver the [server] extra installs (pip install "
               "'ketamine-response[server]'): write the URI as postgresql+psycopg://...")
    return f"the PostgreSQL driver for {redact(uri)} is not installed ({exc}): {fix}, and start the server again."


def _connect_failure(uri: str, exc: Exception) -> str:
    """The message for a failed connection: its cause in the driver's last line, any password scrubbed."""
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    for secret in (url.password, *(str(v) for k, v in url.query.items() if "password" in k.lower())):
        if secret:
            reason = reason.replace(str(secret), "***")
    reason = reason.removeprefix("connection failed: ")
    if "authentication failed" in reason or "no password supplied" in reason:
        return (f"database {redact(uri)}: authentication failed: check the user and password ({reason}). The "
                "URI comes from --database-file, MLFLOW_BACKEND_STORE_URI, ~/.pgpass or PGPASSWORD.")
    if "does not exist" in reason:
        return f"database {redact(uri)}: {reason}. Create it (createdb), or fix the URI."
    where = f"{url.host or 'localhost'}:{url.port or 5432}"
    return (f"database {redact(uri)}: cannot reach {where} ({reason}). Check the host and port, and that "
            "PostgreSQL runs there and accepts TCP connections from this machine.")


def team_server(database: str, artifacts: str, host: str, port: int, workers: int) -> tuple[list[str], dict[str, str]]:
    """Every check before the team server starts; returns its command line and environment for :func:`serve`."""
    if not 1 <= workers <= MAX_WORKERS:  # each worker is a Python process of a few hundred MB
        raise UsageError(f"--workers must be a whole number from 1 to {MAX_WORKERS}, got {workers}")
    if Path(artifacts).exists() and not Path(artifacts).is_dir():
        raise UsageError(f"--artifacts {artifacts}: not a folder. The server keeps the runs' artifacts in a folder "
                         "(created when missing): give a folder path.")
    check_port(host, port)
    check_database(database)
    env = {**os.environ, "MLFLOW_BACKEND_STORE_URI": database, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return team_server_command(artifacts, host, port, workers), env


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

    Returns 0 when the server ends by itself with 0. Stopped by SIGTERM it raises Terminated (143), by
    Ctrl-C KeyboardInterrupt (130), as every command does; a server that fails on its own is a
    TrackingError. The handlers go in before the server starts, so no signal can leave it running; they
    only forward SIGTERM to the group (waiting inside a handler could deadlock with the interrupted
    wait), and :func:`_wait` gives the server STOP_WAIT_S to close its connections, then kills the rest.
    """
    stopped: list[tuple[int, float]] = []
    started: list[subprocess.Popen] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopped.append((signum, time.monotonic()))
        if started:
            _signal_group(started[0], signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        started.append(subprocess.Popen(command, env=env, start_new_session=True))
        if stopped:  # a signal between the handlers and the server's start
            _signal_group(started[0], signal.SIGTERM)
        code = _wait(started[0], stopped)
    finally:
        if started:
            _signal_group(started[0], signal.SIGKILL)  # whatever is left, workers the server left behind included
            started[0].wait()
        for s, handler in previous.items():
            signal.signal(s, handler)
    if stopped:
        signum = stopped[0][0]
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(f"stopped by signal {signal.Signals(signum).name}; the server and its workers were stopped")
    if code:
        raise TrackingError(f"the MLflow server ({' '.join(command[1:4])}) exited with code {code} before it was "
                            "stopped; its own messages are above.")
    return 0


def _wait(server: subprocess.Popen, stopped: list[tuple[int, float]]) -> int:
    """The server's exit code, once it exits; SIGKILL for the group STOP_WAIT_S after the first stop signal."""
    while True:
        try:
            return server.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            if stopped and time.monotonic() - stopped[0][1] > STOP_WAIT_S:
                _signal_group(server, signal.SIGKILL)


def _signal_group(server: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signum)
