"""The ``ui`` flow: the MLflow UI on the project's store, run as a child the command owns.

The server runs in its own process group, so stopping ``ketamine-response ui`` (Ctrl-C, SIGTERM)
stops the server and every worker it started: the port is free again when the command returns.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from types import FrameType

from features.errors import UsageError

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


def run_ui(uri: str, host: str, port: int) -> int:
    """Serve until the server exits or this process is told to stop; returns the exit code."""
    check_port(host, port)
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(server_command(uri, host, port), env=env, start_new_session=True)
    stopped: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        stopped.append(signum)
        _stop_group(server)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        code = server.wait()
    finally:
        _stop_group(server)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return 0 if stopped else code


def _stop_group(server: subprocess.Popen) -> None:
    try:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=STOP_WAIT_S)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
