"""A throwaway PostgreSQL cluster for the team-server tests (tests/pipelines/test_team_server.py and the
probes in tests/faults/test_server.py): started here as an unprivileged user, on 127.0.0.1, with
password authentication. Import the fixture into a test module:
``from tests.postgres_fixture import postgres_cluster`` (it is named ``postgres``).

Besides the superuser, the role ``odd`` owns the ``mlflow`` database and has a password holding every
character a URI must percent-encode or that an URL parser misreads (``/ # @ %``): the tests look for it,
raw and encoded, wherever it must not be."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.limits import HANG_S

SECRET = "s3cret-Pw-91"  # the superuser's
ODD_SECRET = "Sl/ash#Hash@At%Pct-77"  # the role the server connects as


@dataclass(frozen=True)
class Postgres:
    port: int

    @property
    def uri(self) -> str:
        """The superuser's URI (password in the userinfo)."""
        return f"postgresql://ketamine:{SECRET}@127.0.0.1:{self.port}/mlflow"

    @property
    def odd_uri(self) -> str:
        """``odd``'s URI, the password percent-encoded in the userinfo, as libpq requires."""
        return f"postgresql://odd:{quote(ODD_SECRET, safe='')}@127.0.0.1:{self.port}/mlflow"

    def query_uri(self, password: str = ODD_SECRET) -> str:
        """``odd``'s URI with the password in the query string (``?password=``)."""
        return f"postgresql://odd@127.0.0.1:{self.port}/mlflow?password={quote(password, safe='')}"

    @staticmethod
    def secrets() -> tuple[str, ...]:
        """Every form in which a password could leak: raw, percent-encoded, and the raw one's pieces."""
        return (SECRET, ODD_SECRET, quote(ODD_SECRET, safe=""), "Sl/ash", "Hash@At", "Pct-77")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bin(tool: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    return found[-1] if found else shutil.which(tool)


def _tool(tool: str) -> str:
    path = _bin(tool)
    assert path is not None, f"PostgreSQL's {tool} is missing beside initdb"
    return path


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module", name="postgres")
def postgres_cluster() -> Iterator[Postgres]:
    """The cluster (fixture ``postgres``); skipped where PostgreSQL is missing, except in CI (make test installs it)."""
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
    port = free_port()
    run = lambda *cmd: subprocess.run([*as_user, *cmd], check=True, capture_output=True, text=True, timeout=HANG_S)  # noqa: E731
    run(_tool("initdb"), "-D", str(root / "data"), "-U", "ketamine", f"--pwfile={root / 'pw'}", "--auth=scram-sha-256")
    run(_tool("pg_ctl"), "-D", str(root / "data"), "-l", str(root / "log"), "-w", "-o",
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1", "start")
    try:
        env = {**os.environ, "PGPASSWORD": SECRET}
        psql = [_tool("psql"), "-h", "127.0.0.1", "-p", str(port), "-U", "ketamine", "-d", "postgres", "-v", "ON_ERROR_STOP=1"]
        subprocess.run([*psql, "-c", f"CREATE ROLE odd LOGIN PASSWORD '{ODD_SECRET}'",
                        "-c", "CREATE DATABASE mlflow OWNER odd"], env=env, check=True, capture_output=True, timeout=HANG_S)
        yield Postgres(port)
    finally:
        subprocess.run([*as_user, _tool("pg_ctl"), "-D", str(root / "data"), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
