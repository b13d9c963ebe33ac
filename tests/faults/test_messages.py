"""Messages that name their real cause (issue 27, items 7 and 8): experiment names checked as they are read,
config counts with upper bounds, every model URI form resolved the same way by score and explain, version
numbers recorded in their plain form, no reasons beside a blank prediction, a warning for a version whose
training run was deleted, and a model folder hashed file by file (MLflow's download note at the root only
left out)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from tests.faults.probes import LEAN_CONFIG, MODEL_NAME, TARGET, assert_refused, cli, describe
from tests.limits import HANG_S

TIMEOUT = HANG_S  # catches a hang, not a busy machine (tests/limits.py)


@pytest.mark.parametrize("command", ["train", "runs"])
@pytest.mark.parametrize("name, why", [("", "is empty"), ("   ", "is empty"), ("x" * 500, "is 500 characters long"),
                                       ("a\nb", "holds a control character")])
def test_a_bad_experiment_name_is_refused_as_it_is_read(command, name, why, tmp_path):
    args = ["train", tmp_path / "c.csv", "--target", TARGET] if command == "train" else ["runs"]
    result = cli(*args, "--experiment", name, timeout=TIMEOUT)
    assert_refused(result, "--experiment", why, "1 to 200 characters")
    assert "cannot be opened" not in result.stderr


@pytest.mark.parametrize("line, named", [
    ("evaluation: {bootstrap: 1e9}", "evaluation.bootstrap must be a whole number from 50 to 20000, got '1e9'"),
    ("cv: {outer_repeats: 100000}", "cv.outer_repeats must be a whole number from 1 to 100"),
    ("search: {budget: 5000}", "search.budget must be a whole number from 1 to 200"),
])
def test_a_count_that_would_exhaust_the_machine_is_refused(cohort, tmp_path, line, named):
    config = tmp_path / "big.yaml"
    config.write_text(line + "\n")  # the shipped defaults for everything else
    result = cli("train", cohort, "--target", TARGET, "--config", config, "--experiment", "messages-config",
                 timeout=TIMEOUT)
    assert_refused(result, config, named)


def test_explain_accepts_latest_as_score_does(model, cohort, tmp_path):
    patient = pd.read_csv(cohort)["patient_id"].iloc[0]
    out = tmp_path / "latest.png"
    result = cli("explain", cohort, "--model", f"models:/{MODEL_NAME}/latest", "--patient", patient,
                 "--out", out, timeout=TIMEOUT)
    assert result.returncode == 0, describe(result)
    assert list(tmp_path.glob("latest*.png")), result.stdout


def test_a_zero_padded_version_is_recorded_as_its_number(model, cohort, tmp_path):
    out = tmp_path / "scores.csv"
    result = cli("score", cohort, "--out", out, "--model", f"models:/{MODEL_NAME}/0{model.version}", timeout=TIMEOUT)
    assert result.returncode == 0, describe(result)
    assert f"version {model.version})" in result.stdout
    assert set(pd.read_csv(out, dtype=str)["model_version"]) == {str(model.version)}


def _copy_version(model, name: str, folder: Path) -> str:
    """A new registered model *name* whose version 1 is a copy of the suite's model's files (with its recorded
    digests) made by a run of its own: a version to delete the run of, or to tamper with, leaving the suite's
    model as it is. Returns the copy's folder."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    client = MlflowClient()
    original = client.get_model_version(MODEL_NAME, str(model.version))
    files = Path(mlflow.artifacts.download_artifacts(artifact_uri=model.uri, dst_path=str(folder / "download")))
    (files / "registered_model_meta").unlink()  # MLflow's download note: not part of the logged model
    copy = folder / "model"
    shutil.copytree(files, copy)
    experiment = client.get_experiment_by_name(name) or client.get_experiment(client.create_experiment(name))
    run = client.create_run(experiment.experiment_id)
    client.set_terminated(run.info.run_id)
    client.create_registered_model(name)
    client.create_model_version(name, str(copy), run_id=run.info.run_id, tags=dict(original.tags))
    return run.info.run_id


def test_a_version_whose_training_run_was_deleted_scores_with_one_warning(model, cohort, tmp_path):
    from mlflow import MlflowClient

    run_id = _copy_version(model, "messages-deleted-run", tmp_path)
    MlflowClient().delete_run(run_id)
    out = tmp_path / "scores.csv"
    result = cli("score", cohort, "--out", out, "--model", "models:/messages-deleted-run/1", timeout=TIMEOUT)
    assert result.returncode == 0, describe(result)
    warned = [line for line in result.stderr.splitlines() if run_id in line]
    assert len(warned) == 1 and warned[0].startswith("warning: ") and "was deleted" in warned[0], result.stderr
    assert out.is_file()


def test_a_file_named_like_mlflows_download_note_inside_the_model_is_hashed(model, cohort, tmp_path):
    _copy_version(model, "messages-tampered", tmp_path)
    note = tmp_path / "model" / "code" / "registered_model_meta"  # not at the root: part of what was logged
    note.write_text("model_name: anything\n")
    out = tmp_path / "scores.csv"
    result = cli("score", cohort, "--out", out, "--model", "models:/messages-tampered/1", timeout=TIMEOUT)
    assert_refused(result, "models:/messages-tampered/1", "added: code/registered_model_meta")
    assert not out.exists()


def test_no_reasons_beside_a_blank_prediction(model, cohort, tmp_path):
    """A course of an arm the model never saw gets a blank probability (named in warnings) and blank reasons."""
    from ketamine_response.features.cohort.validation import load_cohort
    from ketamine_response.pipelines import registry, store
    from ketamine_response.pipelines.flows.score import score_file
    from ketamine_response.pipelines.flows.score_reasons import contributions

    store.open_store()
    loaded = registry.load_model(model.uri).unwrap_python_model()
    loaded.arms = tuple(a for a in loaded.arms if a != "esketamine_in")  # as if trained without it
    out = tmp_path / "scores.csv"
    score_file(cohort, out, loaded, MODEL_NAME, str(model.version), explain=3)
    scores = pd.read_csv(out, keep_default_na=False)
    unseen = scores["treatment"] == "esketamine_in"
    assert unseen.any() and (~unseen).any()
    assert (scores.loc[unseen, "probability"] == "").all()
    assert scores.loc[unseen, "warnings"].str.contains("treatment not seen in training").all()
    reasons = [c for c in scores.columns if c.startswith("reason_")]
    assert (scores.loc[unseen, reasons] == "").all().all()
    # underneath, whatever family was selected: no contribution for the blank courses, every one for the others
    table = load_cohort(cohort).valid_table()
    values, _ = contributions(loaded, table)
    blank = (table["treatment"] == "esketamine_in").to_numpy()
    assert values[blank].isna().all().all() and values[~blank].notna().all().all()


def test_a_cohort_with_every_biomarker_blank_trains_without_numpy_warnings(cohort, tmp_path):
    """Every biomarker blank: those features are left out with one note, and counting the candidate models'
    parameters (where an all-missing column gave numpy's "degrees of freedom" warning) stays quiet."""
    import warnings

    from ketamine_response.features.cohort.validation import load_cohort
    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.evaluation.sample_size import count_parameters
    from ketamine_response.pipelines.flows.train import build_training_data

    table = pd.read_csv(cohort)
    markers = list(table.loc[:, "il6_pg_ml":"glx_acc_mmol"].columns)
    blank = tmp_path / "blank.csv"
    table[markers] = None  # every biomarker cell empty
    table.to_csv(blank, index=False)
    config = load_config(LEAN_CONFIG)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        data, _, notes = build_training_data(load_cohort(blank), TARGET, config, False)
        assert count_parameters(data, config.families) > 0
    left_out = [n for n in notes if "no value in any course" in n]
    assert len(left_out) == 1, notes
    assert "log_il6" in left_out[0] and "glx_acc_mmol" in left_out[0] and "log_il6" not in data.X.columns
    assert not data.X.isna().all().any()
