"""The MLflow UI as a user meets it, through the real server `ketamine-response ui` starts: the
experiment opens in model-training mode, a run is visible (RUNNING) while train still fits and FAILED
with a description (and a final progress tag) when stopped, run names say target, data origin, digest and
date, children lead with their family, registry versions say what they were trained on and why they lack
an alias, the integrity hashes are their last tags, a null cohort's version gets no alias; the server
stops with its command and a busy port is refused."""

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

import pytest

from ketamine_response.pipelines import registry
from tests.limits import HANG_S
from tests.pipelines.conftest import LEAN_CONFIG, TARGET, make_cohort

LEAN = LEAN_CONFIG  # no benefit model: these tests check commands, not that model


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
    return json.loads(urllib.request.urlopen(request, timeout=HANG_S).read())


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
    server.wait(timeout=HANG_S)


def _runs(port: int, experiment: str) -> list[dict]:
    found = _api(port, "experiments/get-by-name?experiment_name=" + experiment)["experiment"]
    return _api(port, "runs/search", {"experiment_ids": [found["experiment_id"]], "max_results": 200}).get("runs", [])


def _tags(run: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in run["data"].get("tags", [])}


def test_experiment_opens_in_training_mode_and_children_are_named_uniquely(ui):
    port, _ = ui
    experiment = _api(port, "experiments/get-by-name?experiment_name=tests")["experiment"]
    assert {t["key"]: t["value"] for t in experiment["tags"]}["mlflow.experimentKind"] == "custom_model_development"
    runs = _runs(port, "tests")
    children = [r["info"]["run_name"] for r in runs if "mlflow.parentRunId" in _tags(r)]
    assert children and all(n.split(" · ")[1] == TARGET for n in children)
    assert len(set(children)) == len(children) and {n.split(" · ")[0] for n in children} >= {"elastic_net"}
    parents = [r for r in runs if "mlflow.parentRunId" not in _tags(r)]
    assert all(_tags(r)["mlflow.note.content"] for r in parents)
    strong = [r for r in parents if r["info"]["run_name"].startswith(f"{TARGET} · synthetic:strong · ")]
    assert strong and re.fullmatch(r"[0-9a-f]{6} · \d{4}-\d\d-\d\d \d\d:\d\d", strong[0]["info"]["run_name"].split(" · ", 2)[2])
    assert strong[0]["info"]["run_name"].split(" · ")[2] == _tags(strong[0])["data_digest"][:6]
    finished = [r for r in runs if r["info"]["status"] == "FINISHED" and "mlflow.parentRunId" not in _tags(r)
                and _tags(r).get("run_kind") != "evaluation"]  # an evaluation run (evaluate) reports no progress
    assert finished and all(_tags(r)["progress"] == "done" for r in finished)


def test_registry_version_has_description_and_tags(ui, strong_run):
    port, _ = ui
    name = f"ketamine-response.tests.{TARGET}"
    versions = _api(port, f"model-versions/search?filter=name%3D%27{name}%27")["model_versions"]
    newest = next(v for v in versions if v["run_id"] == strong_run[0].run_id)
    tags = {t["key"]: t["value"] for t in newest.get("tags", [])}
    assert "permutation p" in newest["description"] and "kfold" in newest["description"]
    assert {"target", "cv_design", "data_digest", "experiment", "auroc_active_p", "auroc", registry.DIGEST_TAG} <= set(tags)
    assert len(tags["data_digest"]) == 64 and "95% CI" in tags["auroc"]
    courses = len(strong_run[0].data.y)  # those with the outcome, as the version was trained
    assert tags["trained_on"] == f"synthetic:strong ({courses} courses)" and tags["below_minimum_sample"] == "true"
    assert sorted(tags)[-2:] == sorted([registry.DIGEST_TAG, registry.FILES_TAG])  # the hashes sort last
    # promoted by hand (strong_run), perhaps replaced since by another test's promote: the reason and the
    # run's alias tag follow the registry either way
    held = _api(port, f"model-versions/get?name={name}&version={newest['version']}")["model_version"]  # search omits aliases
    aliases = ", ".join(sorted(held.get("aliases", []))) or "none"
    assert tags["alias_reason"].startswith("champion: promoted" if "champion" in aliases else "none: version ")
    run = _api(port, f"runs/get?run_id={tags['run_id']}")["run"]
    assert _tags(run)["alias"] == aliases


def test_running_then_failed_run_and_a_null_cohort_gets_no_alias(ui, tmp_path):
    port, _ = ui
    path, _, _ = make_cohort(tmp_path, 400, 3, "null")
    train = _cli("train", str(path), "--target", TARGET, "--config", str(LEAN), "--experiment", "ui-live",
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
        _, err = train.communicate(timeout=HANG_S)
    finally:  # a failed check must not leave the training running into the next test
        if train.poll() is None:
            train.kill()
            train.communicate()
    assert train.returncode == 143 and "Traceback" not in err
    failed = _api(port, f"runs/get?run_id={run['info']['run_id']}")["run"]
    assert failed["info"]["status"] == "FAILED"
    assert "SIGTERM" in _tags(failed)["mlflow.note.content"]
    assert _tags(failed)["progress"] == "failed (Terminated)"  # not the stage it was stopped in

    # no alias for 400 courses (below the minimum sample size) whatever the permutation test says
    done = _cli("train", str(path), "--target", TARGET, "--config", str(LEAN), "--experiment", "ui-live",
                "--permutations", "0")
    out, err = done.communicate(timeout=HANG_S)
    assert done.returncode == 0, err
    assert "no alias" in out
    version = re.search(r"registered: \S+ version (\d+)", out).group(1)
    tags = _api(port, f"model-versions/get?name=ketamine-response.ui-live.{TARGET}&version={version}")["model_version"]
    assert not tags.get("aliases")
    why = {t["key"]: t["value"] for t in tags["tags"]}["alias_reason"]
    assert why.startswith("none: ") and "below the minimum sample size" in why and "promote --reason" in why


def test_ui_stops_with_sigterm_and_refuses_a_busy_port(strong_run):
    port = _free_port()
    server = _cli("ui", "--port", str(port), quiet=True)
    _wait(lambda: _port_open(port) or (server.poll() is not None and pytest.fail("the UI exited")), 90, "the UI")
    second = subprocess.run([sys.executable, "-m", "ketamine_response.pipelines.cli", "ui", "--port", str(port)], capture_output=True,
                            text=True, timeout=HANG_S)
    assert second.returncode == 2 and f"port {port}" in second.stderr
    server.send_signal(signal.SIGTERM)
    start = time.time()
    server.wait(timeout=HANG_S)
    _wait(lambda: not _port_open(port), 5, "the port to close")
    assert time.time() - start < 10


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_model_names_per_experiment_and_target_are_registry_safe():
    from ketamine_response.pipelines.tracking import registered_name

    assert registered_name("ketamine-response", TARGET) == f"ketamine-response.{TARGET}"
    assert registered_name("trial 2/site:A@x", TARGET) == f"ketamine-response.trial-2-site-A-x.{TARGET}"
    assert registered_name("tests", TARGET) != registered_name("tests-null", TARGET)


def test_promote_reads_caveats_from_tags_or_an_older_versions_description():
    from ketamine_response.pipelines.flows.promote import caveats

    assert caveats({"below_minimum_sample": "false", "beats_permuted_labels": "true"}, "") == ()
    flagged = caveats({"below_minimum_sample": "true", "beats_permuted_labels": "false"}, "")
    assert len(flagged) == 2 and "minimum sample size" in flagged[0] and "above alpha" in flagged[1]
    older = "`response_24h` ... No alias: below the minimum sample size (240 courses, Riley et al. minimum 12649)."
    assert caveats({}, older) == ("it was trained below the minimum sample size",)
