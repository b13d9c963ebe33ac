"""Batch scoring: every row scored or rejected with its reasons, same numbers as pyfunc, atomic output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.limits import HANG_S
from tests.pipelines.conftest import TARGET

MODEL = f"models:/ketamine-response.tests.{TARGET}@champion"


@pytest.fixture(scope="module")
def model(strong_run):
    from ketamine_response.pipelines import registry

    return registry.load_model(MODEL)


@pytest.fixture
def messy(strong_run, tmp_path) -> tuple[Path, pd.DataFrame]:
    """40 real-looking courses with planted problems, outcome columns dropped, written with a BOM."""
    _, cohort, _ = strong_run
    table = cohort.head(40).drop(columns=[c for c in cohort.columns if c.startswith("madrs_") and c != "madrs_baseline"])
    table = table.astype("str").fillna("").replace({"<NA>": "", "nan": ""})
    table.loc[3, "madrs_baseline"] = "75"            # out of range
    table.loc[8, "crp_mg_l"] = "abc"                 # unparseable
    table.loc[12, "sex"] = "X"                       # unknown category
    table.loc[15, "patient_id"] = ""                 # missing key
    table.loc[30] = table.loc[2]                     # duplicate key, far from its twin (other chunk)
    path = tmp_path / "messy.csv"
    path.write_bytes(b"\xef\xbb\xbf" + table.to_csv(index=False).encode())
    return path, table


def test_every_row_is_scored_or_rejected(messy, model, tmp_path):
    from ketamine_response.pipelines.flows.score import score_file

    path, table = messy
    out = tmp_path / "scores.csv"
    summary = score_file(path, out, model.unwrap_python_model(), "m", "1", explain=3, chunk_rows=7)
    scores = pd.read_csv(out)
    rejected = pd.read_csv(summary.rejected_path, dtype=str, keep_default_na=False)
    assert summary.read == 40 and summary.scored + summary.rejected == 40
    assert sorted(rejected["row"].astype(int)) == [3, 4, 9, 13, 16, 31]
    reasons = dict(zip(rejected["row"].astype(int), rejected["problems"]))
    assert "madrs_baseline: value 75 is above 60" in reasons[4]
    assert "crp_mg_l: value 'abc' is not a number" in reasons[9]
    assert "duplicate key" in reasons[3] and "also at row 31" in reasons[3]
    original = table.loc[8].to_dict()
    kept = rejected[rejected["row"] == "9"].iloc[0]
    assert {c: kept[c] for c in original} == original  # the original row, unchanged
    # esketamine courses have no 24 h visit, so this model never saw the arm: no number, a warning
    unseen = scores["treatment"] == "esketamine_in"
    assert summary.blank == unseen.sum()
    assert len(scores) == 34 and unseen.any() and scores.loc[~unseen, "probability"].between(0, 1).all()
    assert scores.loc[unseen, "probability"].isna().all() and "predicted_responder" not in scores  # no threshold given
    assert scores.loc[unseen, "warnings"].str.startswith("treatment not seen in training; ").all()  # then the caveats
    assert {"reason_1_feature", "reason_1_value", "reason_1_points", "reason_3_points"} <= set(scores.columns)


def test_scores_equal_pyfunc_predict(messy, model, tmp_path):
    from ketamine_response.pipelines.flows.score import score_file

    path, table = messy
    out = tmp_path / "scores.parquet"
    score_file(path, out, model.unwrap_python_model(), "m", "1", chunk_rows=11)
    scores = pd.read_parquet(out)
    valid = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig").drop(index=[2, 3, 8, 12, 15, 30])
    np.testing.assert_allclose(scores["probability"].to_numpy(), np.asarray(model.predict(valid)), rtol=1e-12)
    assert scores["probability"].isna().any()  # unseen-arm rows: NaN in both, and equal as NaN


def test_interrupted_run_leaves_no_output(strong_run, model, tmp_path):
    from ketamine_response.features.errors import CohortFileError
    from ketamine_response.pipelines.flows.score import score_file

    _, cohort, _ = strong_run
    path = tmp_path / "broken.csv"
    good = cohort.head(1000).to_csv(index=False).encode()
    path.write_bytes(good + b"P9,site_01,placebo,1,caf\xe9\n")  # invalid UTF-8 far past the first chunks
    out = tmp_path / "scores.csv"
    with pytest.raises(CohortFileError, match="not well-formed UTF-8 CSV"):
        score_file(path, out, model.unwrap_python_model(), "m", "1", chunk_rows=100)
    assert not out.exists() and list(tmp_path.glob("*.partial")) == [] and list(tmp_path.glob(".*")) == []


def counts(scores: Path) -> str:
    """The summary line for the messy file: scored rows include those with a blank probability (an arm the
    model never saw), and the line says how many."""
    blank = int(pd.read_csv(scores)["probability"].isna().sum())
    assert blank > 0
    return f"read 40, scored 34 ({blank} with a blank prediction: the warnings column says why), rejected 6"


def test_cli_counts_strict_and_default_model(messy, tmp_path):
    path, _ = messy
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    from mlflow import MlflowClient

    cli = [sys.executable, "-m", "ketamine_response.pipelines.cli", "score", str(path), "--out"]
    # no --model: the only registered model's champion, or (other modules' experiments registered theirs in this
    # session's store: model names are per experiment) exit 2 naming every model
    names = sorted(m.name for m in MlflowClient().search_registered_models())
    default = subprocess.run([*cli, str(tmp_path / "d.csv")], capture_output=True, text=True, env=env, timeout=HANG_S)
    if len(names) == 1:
        assert default.returncode == 0 and counts(tmp_path / "d.csv") in default.stdout, default.stderr
    else:
        assert default.returncode == 2 and all(n in default.stderr for n in names), default.stderr
    run = subprocess.run([*cli, str(tmp_path / "s.csv"), "--model", MODEL], capture_output=True, text=True, env=env,
                         timeout=HANG_S)
    assert run.returncode == 0, run.stderr
    assert counts(tmp_path / "s.csv") in run.stdout
    strict = subprocess.run([*cli, str(tmp_path / "t.csv"), "--strict", "--model", MODEL], capture_output=True,
                            text=True, env=env, timeout=HANG_S)
    assert strict.returncode == 3
    missing = subprocess.run([*cli, str(tmp_path / "u.csv"), "--model", "models:/nope@champion"],
                             capture_output=True, text=True, env=env, timeout=HANG_S)
    assert missing.returncode == 2 and "not found" in missing.stderr and "Traceback" not in missing.stderr


def test_mlflow_serving_answers_the_same(strong_run, model, store):
    """`mlflow models serve --env-manager local` on 127.0.0.1 returns the same probabilities."""
    import json
    import socket
    import time
    import urllib.request

    _, cohort, _ = strong_run
    seen = cohort[cohort["treatment"] != "esketamine_in"]  # an arm this 24 h model never saw scores NaN
    rows = seen.head(4).drop(columns=[c for c in cohort.columns if c.startswith("madrs_") and c != "madrs_baseline"])
    rows = rows.dropna(axis=1).astype({c: "float64" for c in rows.columns if str(rows[c].dtype) == "Int64"})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen([sys.executable, "-m", "mlflow", "models", "serve", "-m", MODEL, "--env-manager", "local",
                               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2)
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    pytest.fail("the model server did not start")
                time.sleep(1)
        body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))}).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(request, timeout=HANG_S).read())
    finally:
        server.terminate()
        server.wait(timeout=HANG_S)
    served = np.asarray(answer["predictions"], dtype=float).ravel()
    np.testing.assert_allclose(served, np.asarray(model.predict(rows)), rtol=1e-9)


def test_latest_is_recorded_as_its_version_number(strong_run):
    from mlflow import MlflowClient

    from ketamine_response.pipelines.registry import resolve_model
    from ketamine_response.pipelines.tracking import registered_name

    name = registered_name("tests", TARGET)
    newest = max(int(v.version) for v in MlflowClient().search_model_versions(f"name = '{name}'"))
    uri, resolved, version = resolve_model(f"models:/{name}/latest")
    assert (resolved, version, uri) == (name, str(newest), f"models:/{name}/{newest}")


@pytest.mark.parametrize("form", ["", "/", "/x1"])
def test_a_model_uri_without_a_version_number_names_the_forms(strong_run, form):
    """``models:/NAME`` (no version) was read as a logged-model id and failed with MLflow's own words."""
    from ketamine_response.features.errors import TrackingError
    from ketamine_response.pipelines.registry import resolve_model
    from ketamine_response.pipelines.tracking import registered_name

    uri = f"models:/{registered_name('tests', TARGET)}{form}"
    with pytest.raises(TrackingError, match="models:/NAME/VERSION") as refused:
        resolve_model(uri)
    assert uri in str(refused.value)
