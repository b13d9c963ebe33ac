"""The MLflow UI as a user meets it, through the real server `ketamine-response ui` starts: the
experiment opens in model-training mode, a run is visible (RUNNING) while train still fits and FAILED
with a description when stopped, child names are unique, registry versions carry descriptions and
tags, a null cohort's version gets no alias; the server stops with its command and a busy port is refused."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.pipelines.conftest import TARGET, make_cohort

FAST = Path(__file__).parent / "fast_train.yaml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str, quiet: bool = False) -> subprocess.Popen:
    # a server logs every request: it writes to /dev/null, since an unread pipe would fill and block it
    sink = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen([sys.executable, "-m", "ketamine_response.pipelines.cli", *args], env={**os.environ}, text=True,
                            stdout=sink, stderr=sink)


def _api(port: int, path: str, body: dict | None = None) -> dict:
    url = f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/{path}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=10).read())


def _wait(check, seconds: float, what: str):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def ui(strong_run):
    port = _free_port()
    server = _cli("ui", "--port", str(port), quiet=True)

    def up():
        try:
            return _api(port, "experiments/search", {"max_results": 100})
        except OSError:
            assert server.poll() is None, "the UI server exited"
            return None

    _wait(up, 90, "the UI server")
    yield port, server
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)


def _runs(port: int, experiment: str) -> list[dict]:
    found = _api(port, "experiments/get-by-name?experiment_name=" + experiment)["experiment"]
    return _api(port, "runs/search", {"experiment_ids": [found["experiment_id"]], "max_results": 200}).get("runs", [])


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def test_experiment_opens_in_training_mode_and_children_are_named_uniquely(ui):
    port, _ = ui
    experiment = _api(port, "experiments/get-by-name?experiment_name=tests")["experiment"]
    assert {t["key"]: t["value"] for t in experiment["tags"]}["mlflow.experimentKind"] == "custom_model_development"
    names = [r["info"]["run_name"] for r in _runs(port, "tests")]
    children = [n for n in names if "/" in n]
    assert children and all(n.startswith(f"{TARGET}-kfold/") for n in children)
    parents = [r for r in _runs(port, "tests") if "mlflow.parentRunId" not in _tags(r)]
    assert all(_tags(r)["mlflow.note.content"] for r in parents)


def test_registry_version_has_description_and_tags(ui):
    port, _ = ui
    name = f"ketamine-response-{TARGET}"
    versions = _api(port, f"model-versions/search?filter=name%3D%27{name}%27")["model_versions"]
    newest = max(versions, key=lambda v: int(v["version"]))
    tags = {t["key"]: t["value"] for t in newest.get("tags", [])}
    assert "permutation p" in newest["description"] and "kfold" in newest["description"]
    assert {"target", "cv_design", "data_digest", "experiment", "auroc_active_p", "auroc", "artifact_sha256"} <= set(tags)
    assert len(tags["data_digest"]) == 64 and "95% CI" in tags["auroc"]


def test_running_then_failed_run_and_a_null_cohort_gets_no_alias(ui, tmp_path):
    port, _ = ui
    path, _, _ = make_cohort(tmp_path, 400, 3, "null")
    train = _cli("train", str(path), "--target", TARGET, "--config", str(FAST), "--experiment", "ui-live",
                 "--permutations", "99")

    def running():
        try:
            return [r for r in _runs(port, "ui-live") if r["info"]["status"] == "RUNNING"]
        except OSError:  # includes the HTTP 404 before the experiment exists
            return None

    try:
        run = _wait(running, 120, "a RUNNING run while train fits")[0]
        assert train.poll() is None  # still fitting
        assert _tags(run)["progress"]  # from the moment the run exists
        train.send_signal(signal.SIGTERM)
        _, err = train.communicate(timeout=60)
    finally:  # a failed check must not leave the training running into the next test
        if train.poll() is None:
            train.kill()
            train.communicate()
    assert train.returncode == 143 and "Traceback" not in err
    failed = _api(port, f"runs/get?run_id={run['info']['run_id']}")["run"]
    assert failed["info"]["status"] == "FAILED"
    assert "SIGTERM" in _tags(failed)["mlflow.note.content"]

    done = _cli("train", str(path), "--target", TARGET, "--config", str(FAST), "--experiment", "ui-live",
                "--permutations", "19")
    out, err = done.communicate(timeout=600)
    assert done.returncode == 0, err
    assert "no alias" in out
    version = re.search(r"registered: \S+ version (\d+)", out).group(1)
    tags = _api(port, f"model-versions/get?name=ketamine-response-{TARGET}&version={version}")["model_version"]
    assert not tags.get("aliases")


def test_ui_stops_with_sigterm_and_refuses_a_busy_port(strong_run):
    port = _free_port()
    server = _cli("ui", "--port", str(port), quiet=True)
    _wait(lambda: _port_open(port) or (server.poll() is not None and pytest.fail("the UI exited")), 90, "the UI")
    second = subprocess.run([sys.executable, "-m", "ketamine_response.pipelines.cli", "ui", "--port", str(port)], capture_output=True,
                            text=True, timeout=60)
    assert second.returncode == 2 and f"port {port}" in second.stderr
    server.send_signal(signal.SIGTERM)
    start = time.time()
    server.wait(timeout=30)
    _wait(lambda: not _port_open(port), 5, "the port to close")
    assert time.time() - start < 10


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
