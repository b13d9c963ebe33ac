"""The URL `ketamine-response ui` prints, opened in headless Chromium with a fresh profile (issue 25's
acceptance): the experiment's runs table in model-training mode with the headline metric columns, not
MLflow's GenAI overview. The screenshot is kept in ``test-artifacts/ui-training-runs.png``.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.limits import HANG_S
from tests.pipelines.conftest import TARGET
from tests.pipelines.reporting.browser import CHROMIUM, FLAGS

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
# the runs page fetches experiments, runs and the shared view after load: more virtual time than a report
BUDGET = "--virtual-time-budget=15000"

if CHROMIUM is None and not os.environ.get("CI"):
    pytest.skip("chromium is not installed (make test installs it)", allow_module_level=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _printed_url(out: Path, server: subprocess.Popen, seconds: float) -> str:
    """The URL on the line ``ui`` prints before it starts the server."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        found = re.search(r"MLflow UI on (\S+) ", out.read_text(encoding="utf-8"))
        if found:
            return found.group(1)
        assert server.poll() is None, f"ui exited {server.returncode}"
        time.sleep(0.2)
    pytest.fail("ui printed no URL")


def _wait_up(url: str, server: subprocess.Popen, seconds: float) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            urllib.request.urlopen(url.split("#")[0], timeout=5)
            return
        except OSError:
            assert server.poll() is None, f"ui exited {server.returncode}"
            time.sleep(0.5)
    pytest.fail("the MLflow UI did not answer")


@pytest.fixture(scope="module")
def printed_url(strong_run, tmp_path_factory):
    """`ui --experiment tests` on a free port (its output in a file: a pipe nobody reads would block the
    server); yields the URL it printed once the server answers."""
    out = tmp_path_factory.mktemp("ui") / "ui.out"
    with out.open("w", encoding="utf-8") as sink:
        server = subprocess.Popen([sys.executable, "-m", "ketamine_response.pipelines.cli", "ui", "--port",
                                   str(_free_port()), "--experiment", "tests"], stdout=sink, stderr=subprocess.DEVNULL,
                                  text=True, env={**os.environ})
    try:
        url = _printed_url(out, server, 300)  # minutes: a busy machine starts MLflow slowly
        _wait_up(url, server, 300)
        yield url
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=HANG_S)


def _browser(profile: Path, *args: str) -> str:
    """Chromium's stdout for *args*, with a profile folder nobody used before."""
    assert not profile.exists()
    assert CHROMIUM is not None
    flags = [f for f in FLAGS if not f.startswith("--virtual-time-budget")]
    done = subprocess.run([CHROMIUM, *flags, BUDGET, f"--user-data-dir={profile}", "--window-size=1400,900", *args],
                          capture_output=True, text=True, timeout=HANG_S)
    return done.stdout


def _text(dom: str) -> str:
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", dom, flags=re.S)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", body)))


def test_printed_url_lands_a_fresh_profile_on_the_training_runs_with_metric_columns(printed_url, tmp_path):
    assert "/runs?" in printed_url and "workflowType=machine_learning" in printed_url
    dom = _browser(tmp_path / "fresh", "--dump-dom", printed_url)
    (tmp_path / "ui.html").write_text(dom, encoding="utf-8")  # kept by pytest's tmp folders, to see a failure
    text = _text(dom)
    # model-training mode: MLflow titles the runs tab "Runs" there ("Training runs" is its GenAI-mode label)
    assert re.search(r"<title>Runs - Experiment \d+ - MLflow</title>", dom), text[:500]
    assert re.search(r"<h2[^>]*>Runs</h2>", dom)
    assert "Model registry" in text  # the sidebar's registry link exists only in model-training mode
    header = re.search(r'role="columnheader"[^>]*col-id="metrics\.`auroc_active`"', dom)
    assert header and " auroc_active " in text, text[:1500]
    # the grid renders only the columns in the window: the next headline column, not the last ones
    assert re.search(r'role="columnheader"[^>]*col-id="metrics\.`auroc_active_p`"', dom)
    for genai in ("Detect Issues", "Traces 0", "Observability", "Token Usage"):
        assert genai not in text
    assert f"{TARGET} · synthetic:strong · " in text  # the parent run by its telling name

    ARTIFACTS.mkdir(exist_ok=True)
    _browser(tmp_path / "shot", f"--screenshot={tmp_path / 'ui.png'}", printed_url)
    assert (tmp_path / "ui.png").stat().st_size > 10_000
    shutil.copy(tmp_path / "ui.png", ARTIFACTS / "ui-training-runs.png")
