"""Where MLflow is touched: store, runs, artifacts, model logging, registry, listing, UI.

The only other module that imports MLflow is :mod:`models.wrapper`, the logged model itself.
Nothing patient-level is passed here: only aggregate metrics, the config, column names,
feature metadata and a synthetic input example.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.errors import TrackingError

if TYPE_CHECKING:  # pandas is not imported at run time, so the CLI can import this module quickly
    import pandas as pd

log = logging.getLogger(__name__)

DEFAULT_EXPERIMENT = "ketamine-response"
REQUIRED_METRICS = ("auroc", "auroc_ci_low", "auroc_ci_high", "auprc", "brier", "calibration_slope",
                    "calibration_intercept", "balanced_accuracy", "permutation_p", "permutation_b", "n_courses", "n_events")
DIGEST_TAG, FILES_TAG = "artifact_sha256", "artifact_files_sha256"
PIP_PACKAGES = ("scikit-learn", "lightgbm", "pandas", "numpy", "pyarrow", "mlflow", "scipy", "pyyaml", "econml")


def registered_name(target: str) -> str:
    """The registered model a target's runs are versions of."""
    return f"{DEFAULT_EXPERIMENT}-{target}"


def store_uri(root: str | Path | None = None) -> str:
    """``MLFLOW_TRACKING_URI`` if set, else a SQLite store at ``<root>/mlruns/mlflow.db``."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    root = Path(root or Path.cwd()).resolve()
    return f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"


def open_experiment(name: str, uri: str | None = None) -> str:
    """Point MLflow at the store and return the id of experiment *name*, creating it if needed."""
    import mlflow

    # MLflow's own INFO chatter (migrations, pickling notices) would drown the CLI's output.
    logging.getLogger("mlflow").setLevel(logging.ERROR)
    logging.getLogger("alembic").setLevel(logging.ERROR)
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"  # no download bars in the CLI's output
    uri = uri or store_uri()
    try:
        if uri.startswith("sqlite:///"):
            Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(uri)
        found = mlflow.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = None
        if uri.startswith("sqlite:///"):
            location = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").as_uri()
        return mlflow.create_experiment(name, artifact_location=location)
    except Exception as exc:  # MLflow raises many types for an unusable store
        raise TrackingError(f"tracking store {uri} cannot be opened ({type(exc).__name__}: {exc}). Check "
                            "MLFLOW_TRACKING_URI, or that mlruns/ is writable.") from None


def package_versions() -> dict[str, str]:
    """Installed versions of the stack, for tags and pip requirements."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in PIP_PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


def git_commit() -> str:
    """The commit of the code that ran, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _log_run_content(metrics: dict[str, float], tables: dict[str, pd.DataFrame], figures: dict[str, Any],
                     texts: dict[str, str]) -> None:
    import mlflow

    mlflow.log_metrics({k: float(v) for k, v in metrics.items()})
    for name, table in tables.items():
        mlflow.log_text(table.to_csv(index=False), name)
    for name, fig in figures.items():
        mlflow.log_figure(fig, name)
    for name, text in texts.items():
        mlflow.log_text(text, name)


def log_training(experiment_id: str, run_name: str, params: dict[str, str], tags: dict[str, str],
                 parent: dict[str, Any], children: dict[str, dict[str, Any]], model: Any,
                 input_example: pd.DataFrame, register_as: str, alias: bool = True) -> tuple[str, str, int]:
    """Log one parent run, one child per family, the model, and register it.

    *parent* and each child hold ``metrics``, ``tables``, ``figures``, ``texts``.
    Returns (run id, artifact URI, registered version).
    """
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        mlflow.log_params(params)
        mlflow.set_tags(tags)
        _log_run_content(**parent)
        for family, content in children.items():
            with mlflow.start_run(experiment_id=experiment_id, run_name=family, nested=True):
                mlflow.log_params(params)
                mlflow.set_tags({**tags, "family": family})
                _log_run_content(**content)
        info, digest = log_model(model, input_example)
        version = register(info.model_uri, register_as, alias, digest)
        mlflow.set_tag("registered_model", f"{register_as}/{version}")
        return run.info.run_id, run.info.artifact_uri, version


def _signature(example: pd.DataFrame):
    """Input: the cohort columns by name, required ones marked; types are left to the project's own
    validator (``AnyType``), so int, nullable Int64, float and text cells all reach it and get its
    row/column messages instead of MLflow's type refusals. Output: one probability per row."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec
    from mlflow.types.schema import AnyType

    from features.cohort.schema import REQUIRED

    cols: list[ColSpec | TensorSpec] = [ColSpec(AnyType(), str(c), required=c in REQUIRED) for c in example.columns]
    return ModelSignature(inputs=Schema(cols), outputs=Schema([ColSpec("double")]))


def log_model(model: Any, input_example: pd.DataFrame):
    """Log the cohort-table model with explicit requirements (no slow inference) and its code, and record the
    SHA-256 of its files. Returns (model info, the digest tags to give its registry version)."""
    import mlflow

    import features
    import models

    requirements = [f"{k}=={v}" for k, v in package_versions().items()]
    code = [str(Path(features.__file__).parent), str(Path(models.__file__).parent)]
    info = mlflow.pyfunc.log_model(name="model", python_model=model, signature=_signature(input_example),
                                   input_example=input_example, pip_requirements=requirements, code_paths=code)
    return info, record_digest(info.model_id)


def record_digest(model_id: str) -> dict[str, str]:
    """SHA-256 of a logged model's files as it sits in the store, set as tags of the logged model
    (and, by :func:`register`, of its registry version): checked before every load."""
    import tempfile

    import mlflow
    import mlflow.artifacts

    from pipelines.integrity import manifest

    with tempfile.TemporaryDirectory(prefix="ketamine-model-") as local:
        folder = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_id}", dst_path=local)
        digest, files = manifest(folder)
    tags = {DIGEST_TAG: digest, FILES_TAG: files}
    mlflow.set_logged_model_tags(model_id, tags)
    return tags


def register(model_uri: str, name: str, alias: bool = True, tags: dict[str, str] | None = None) -> int:
    """Register a model version with alias ``champion`` if the model has none yet, else ``challenger``.

    With *alias* False (a cohort below the minimum sample size) the version gets no alias: it is
    kept and listed, but nothing scores with it unless it is promoted by hand.
    """
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    with contextlib.redirect_stderr(io.StringIO()):  # register_model prints its own banner
        version = int(mlflow.register_model(model_uri, name, tags=tags).version)
    if alias:
        client = MlflowClient()
        try:
            client.get_model_version_by_alias(name, "champion")
            role = "challenger"
        except MlflowException:
            role = "champion"
        client.set_registered_model_alias(name, role, str(version))
    return version


def promote(name: str, version: int) -> None:
    """Move the ``champion`` alias of *name* to *version*."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        MlflowClient().get_model_version(name, str(version))
        MlflowClient().set_registered_model_alias(name, "champion", str(version))
    except MlflowException as exc:
        raise TrackingError(f"cannot promote {name} version {version}: {exc.message}") from None


MODEL_URI_FORMS = "models:/NAME/VERSION, models:/NAME@ALIAS or models:/m-ID"


def _recorded_digest(uri: str) -> tuple[str | None, str | None]:
    """(folder digest, per-file JSON) recorded for *uri* at log time, from the tracking database."""
    import mlflow
    from mlflow import MlflowClient

    ref = uri.removeprefix("models:/")
    if ref.startswith("m-") and "/" not in ref and "@" not in ref:
        tags = mlflow.get_logged_model(ref).tags
    elif "@" in ref:
        tags = MlflowClient().get_model_version_by_alias(*ref.split("@", 1)).tags
    else:
        name, _, version = ref.partition("/")
        tags = MlflowClient().get_model_version(name, version).tags
    return tags.get(DIGEST_TAG), tags.get(FILES_TAG)


def load_model(uri: str):
    """Load a logged model as pyfunc after checking its files against the SHA-256 recorded when it was
    logged (unpickling runs code). A missing, unrecorded, altered or unreadable model is a TrackingError."""
    import tempfile

    import mlflow.artifacts
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    from pipelines.integrity import verify

    if not uri.startswith("models:/") or uri == "models:/":
        raise TrackingError(f"model {uri}: not a model URI this tool loads. Use {MODEL_URI_FORMS} from the "
                            "tracking store (see 'ketamine-response runs' or the MLflow UI).")
    with tempfile.TemporaryDirectory(prefix="ketamine-model-") as local:
        try:
            expected, files = _recorded_digest(uri)
            folder = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=local)
            verify(folder, uri, expected, files)
            model = mlflow.pyfunc.load_model(folder)
        except (MlflowException, OSError) as exc:
            raise TrackingError(f"model {uri} cannot be loaded ({getattr(exc, 'message', exc)}). List registered "
                                "models in the MLflow UI or with 'ketamine-response runs'.") from None
        except (ImportError, AttributeError, pickle.UnpicklingError) as exc:  # pickled by an incompatible version
            raise TrackingError(f"model {uri} was saved by another version of ketamine-response and cannot be "
                                f"read by this one ({type(exc).__name__}: {exc}). Retrain it with this version.") from None
    if not hasattr(model.unwrap_python_model(), "family"):
        raise TrackingError(f"model {uri} was saved by an older version of ketamine-response (before model "
                            "families were recorded). Retrain it with this version.")
    return model


def resolve_model(uri: str | None) -> tuple[str, str, str]:
    """(URI, model name, version) of a model URI; None means the champion of the only registered model."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        if uri is None:
            names = sorted(m.name for m in client.search_registered_models())
            if len(names) != 1:
                listed = ", ".join(names) or "none"
                raise TrackingError(f"no model was named and {store_uri()} has {len(names)} registered models "
                                    f"({listed}); name one, e.g. models:/NAME@champion.")
            uri = f"models:/{names[0]}@champion"
        if not uri.startswith("models:/"):
            return uri, uri, ""
        name, _, rest = uri.removeprefix("models:/").partition("@")
        if rest:
            return uri, name, str(client.get_model_version_by_alias(name, rest).version)
        name, _, version = name.partition("/")
        if version == "latest":  # record the number actually scored, not the moving label
            versions = [int(v.version) for v in client.search_model_versions(f"name = '{name}'")]
            if not versions:
                raise TrackingError(f"model {uri}: no version of '{name}' is registered in {store_uri()}.")
            version = str(max(versions))
            uri = f"models:/{name}/{version}"
        return uri, name, version
    except MlflowException as exc:
        hint = ""
        if uri is not None and "@" in uri and "alias" in exc.message:
            hint = (" Versions trained below the minimum sample size get no alias: name a version "
                    "(models:/NAME/VERSION) or promote one to champion.")
        raise TrackingError(f"model {uri} not found in {store_uri()}: {exc.message}{hint}") from None


def download_artifacts(run_id: str, folders: tuple[str, ...], out: str | Path, optional: tuple[str, ...] = ()) -> None:
    """Copy artifact *folders* of run *run_id* into *out*, and the *optional* ones the run has."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    out = Path(out)
    existed = out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        present = {a.path for a in mlflow.artifacts.list_artifacts(run_id=run_id)} if optional else set()
        for folder in (*folders, *(f for f in optional if f in present)):
            mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=folder, dst_path=str(out))
    except (MlflowException, OSError) as exc:
        if not existed:  # no half-filled folder that looks like a report
            shutil.rmtree(out, ignore_errors=True)
        raise TrackingError(f"run {run_id}: {', '.join(folders)} cannot be copied from {store_uri()} to {out} "
                            f"({getattr(exc, 'message', None) or exc}).") from None


def list_runs(experiment: str) -> pd.DataFrame:
    """Parent runs of *experiment*, newest first, with the comparison metrics."""
    import mlflow

    runs = mlflow.search_runs(experiment_names=[experiment], order_by=["start_time DESC"])
    if runs.empty:
        return runs
    if "tags.mlflow.parentRunId" in runs.columns:
        runs = runs[runs["tags.mlflow.parentRunId"].isna()]
    keep = {"run_id": "run_id", "start_time": "start", "tags.target": "target", "tags.cv_design": "cv",
            "tags.selected_model": "selected", **{f"metrics.{m}": m for m in REQUIRED_METRICS}}
    present = {k: v for k, v in keep.items() if k in runs.columns}
    return runs[list(present)].rename(columns=present).reset_index(drop=True)


def ui(uri: str, port: int) -> int:
    """Run the MLflow UI on 127.0.0.1 (blocking) with one worker and no job runner (fast, small)."""
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    cmd = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", "127.0.0.1",
           "--port", str(port), "--workers", "1"]
    return subprocess.call(cmd, env=env)
