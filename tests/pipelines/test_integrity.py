"""A logged model's files are fingerprinted when it is logged and checked before every load: a swapped
pickle (which would run its code when unpickled) is refused, naming the file, and never unpickled."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from ketamine_response.features.errors import TrackingError
from ketamine_response.features.synthetic.cohort import input_example
from ketamine_response.pipelines import registry, tracking
from ketamine_response.pipelines.integrity import file_digests, folder_digest, verify
from ketamine_response.pipelines.store import open_experiment
from tests.limits import HANG_S
from tests.pipelines.conftest import TARGET


class _Payload:
    """What an attacker would pickle: unpickling it creates a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def tampered(strong_run, tmp_path_factory) -> tuple[str, Path]:
    """A copy of the trained model logged and registered under its own name, then its pickle replaced."""
    import mlflow

    model = registry.load_model(f"models:/ketamine-response.tests.{TARGET}@champion").unwrap_python_model()
    with mlflow.start_run(experiment_id=open_experiment("integrity")):
        info, digest = registry.log_model(model, input_example(model.training_columns))
    registry.register(info.model_uri, "integrity-test", alias=False, tags=digest)
    folder = Path(urlparse(mlflow.get_logged_model(info.model_id).artifact_location).path)
    marker = tmp_path_factory.mktemp("payload") / "ran"
    (folder / "python_model.pkl").write_bytes(pickle.dumps(_Payload(marker)))
    return "models:/integrity-test/1", marker


def test_a_swapped_pickle_is_refused_before_it_runs(tampered):
    uri, marker = tampered
    with pytest.raises(TrackingError, match=r"changed: python_model\.pkl"):
        registry.load_model(uri)
    assert not marker.exists()


def test_score_exits_2_on_a_tampered_model(tampered, strong_run, tmp_path):
    uri, marker = tampered
    _, cohort, _ = strong_run
    path = tmp_path / "c.csv"
    cohort.head(20).to_csv(path, index=False)
    run = subprocess.run([sys.executable, "-m", "ketamine_response.pipelines.cli", "score", str(path), "--out", str(tmp_path / "s.csv"),
                          "--model", uri], capture_output=True, text=True, env={**os.environ}, timeout=HANG_S)
    assert run.returncode == 2, run.stderr
    assert "python_model.pkl" in run.stderr and uri in run.stderr and "Traceback" not in run.stderr
    assert not marker.exists() and not (tmp_path / "s.csv").exists()


def test_the_registered_version_carries_its_digest(strong_run):
    from mlflow import MlflowClient

    version = MlflowClient().get_model_version_by_alias(f"ketamine-response.tests.{TARGET}", "champion")
    assert len(version.tags[registry.DIGEST_TAG]) == 64


def test_verify_names_added_and_removed_files(tmp_path):
    (tmp_path / "a").write_text("1")
    (tmp_path / "b").write_text("2")
    files = file_digests(tmp_path)
    verify(tmp_path, "m", folder_digest(files), None)  # unchanged: passes
    (tmp_path / "b").unlink()
    (tmp_path / "c").write_text("3")
    with pytest.raises(TrackingError, match=r"added: c; removed: b"):
        verify(tmp_path, "m", folder_digest(files), json.dumps(files))
    with pytest.raises(TrackingError, match="no recorded SHA-256"):
        verify(tmp_path, "m", None, None)


@pytest.mark.parametrize("uri", ["runs:/abc/model", "/tmp", "http://127.0.0.1:9/x", "s3://bucket/x", "models:/"])
def test_only_registry_uris_are_loaded(uri):
    with pytest.raises(TrackingError, match="not a model URI"):
        registry.load_model(uri)


def test_a_store_that_cannot_be_written_mid_training_is_exit_2_and_the_run_failed(store):
    import errno

    import mlflow

    experiment = open_experiment("disk-full")
    with (pytest.raises(TrackingError, match="No space left on device") as raised,
          tracking.training_run(experiment, "full", {}, {"target": "t"}) as run_id):
        raise OSError(errno.ENOSPC, "No space left on device")
    assert raised.value.exit_code == 2
    assert mlflow.get_run(run_id).info.status == "FAILED"


def test_only_mlflows_download_metadata_at_the_root_is_left_out(tmp_path):
    (tmp_path / "python_model.pkl").write_bytes(b"model")
    (tmp_path / "code").mkdir()
    nested = tmp_path / "code" / "registered_model_meta"  # logged with the model: hashed like any file
    nested.write_text("logged")
    files = file_digests(tmp_path)
    assert sorted(files) == ["code/registered_model_meta", "python_model.pkl"]
    (tmp_path / "registered_model_meta").write_text("name: m\nversion: 1\n")  # what MLflow writes on download
    verify(tmp_path, "m", folder_digest(files), json.dumps(files))
    nested.write_text("tampered")
    with pytest.raises(TrackingError, match=r"changed: code/registered_model_meta"):
        verify(tmp_path, "m", folder_digest(files), json.dumps(files))
