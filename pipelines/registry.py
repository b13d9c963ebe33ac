"""The MLflow model registry side of tracking: logging the model, fingerprinting its files, registering
versions with their descriptions and aliases, and loading a model only after checking it.

With :mod:`ketamine_response.pipelines.tracking` (runs, experiments, artifacts) the only place besides the logged model
(:mod:`ketamine_response.models.wrapper`) that touches MLflow; the Spark scorer gets the model's Spark UDF
from :func:`spark_udf` here.
"""

from __future__ import annotations

import contextlib
import io
import logging
import pickle
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ketamine_response.features.errors import TrackingError
from ketamine_response.pipelines.tracking import package_versions, redact, store_uri

if TYPE_CHECKING:
    import pandas as pd

# prefixed so that they sort last among a version's tags: a 64-hex hash (or a JSON blob of them) is not what a
# reader should meet first; versions logged before the rename carry the bare names, still read by _recorded_digest
DIGEST_TAG, FILES_TAG = "zz_integrity.artifact_sha256", "zz_integrity.artifact_files_sha256"
_OLD_DIGEST_TAG, _OLD_FILES_TAG = "artifact_sha256", "artifact_files_sha256"
ALIAS_REASON_TAG = "alias_reason"  # why a version has, or lacks, an alias: set by register and promote


def _signature(example: pd.DataFrame):
    """Input: the cohort columns by name, required ones marked; types are left to the project's own
    validator (``AnyType``), so int, nullable Int64, float and text cells all reach it and get its
    row/column messages instead of MLflow's type refusals. Output: one probability per row."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec
    from mlflow.types.schema import AnyType

    from ketamine_response.features.cohort.schema import REQUIRED

    cols: list[ColSpec | TensorSpec] = [ColSpec(AnyType(), str(c), required=c in REQUIRED) for c in example.columns]
    return ModelSignature(inputs=Schema(cols), outputs=Schema([ColSpec("double")]))


def log_model(model: Any, input_example: pd.DataFrame):
    """Log the cohort-table model with explicit requirements (no slow inference) and its code, and record the
    SHA-256 of its files. Returns (model info, the digest tags to give its registry version)."""
    import mlflow

    requirements = [f"{k}=={v}" for k, v in package_versions().items()]
    with tempfile.TemporaryDirectory(prefix="ketamine-code-") as staging:
        info = mlflow.pyfunc.log_model(name="model", python_model=model, signature=_signature(input_example),
                                       input_example=input_example, pip_requirements=requirements,
                                       code_paths=[model_code(Path(staging))])
    return info, record_digest(info.model_id)


def model_code(staging: Path) -> str:
    """The code a logged model needs, as ``ketamine_response/{features,models}`` under *staging*: MLflow puts
    the folder's parent on ``sys.path``, so the model unpickles under the same module names it was saved with."""
    import shutil

    import ketamine_response
    from ketamine_response import features, models

    package = staging / "ketamine_response"
    package.mkdir()
    shutil.copy2(str(ketamine_response.__file__), package / "__init__.py")
    for module in (features, models):
        shutil.copytree(Path(str(module.__file__)).parent, package / module.__name__.rsplit(".", 1)[-1],
                        ignore=shutil.ignore_patterns("__pycache__"))
    return str(package)


def record_digest(model_id: str) -> dict[str, str]:
    """SHA-256 of a logged model's files as it sits in the store, set as tags of the logged model
    (and, by :func:`register`, of its registry version): checked before every load."""
    import tempfile

    import mlflow
    import mlflow.artifacts

    from ketamine_response.pipelines.integrity import manifest

    with tempfile.TemporaryDirectory(prefix="ketamine-model-") as local:
        folder = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{model_id}", dst_path=local)
        digest, files = manifest(folder)
    tags = {DIGEST_TAG: digest, FILES_TAG: files}
    mlflow.set_logged_model_tags(model_id, tags)
    return tags


def register(model_uri: str, name: str, alias: bool = True, tags: dict[str, str] | None = None,
             description: str = "", no_alias_reason: str = "") -> tuple[int, str]:
    """Register a model version, with its tags and description; returns (version, alias given).

    The alias is ``champion`` if the model has none yet, else ``challenger``. With *alias* False (no
    evidence the procedure beats permuted labels, or a cohort below the minimum sample size) the
    version gets none: it is kept and listed, but nothing scores with it unless promoted by hand.
    Why it has or lacks an alias is its ``alias_reason`` tag (and, for an alias, its description's end).
    """
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient()
    with contextlib.redirect_stderr(io.StringIO()):  # register_model prints its own banner
        version = int(mlflow.register_model(model_uri, name, tags=tags).version)
    role = _give_alias(client, name, str(version)) if alias else ""
    why = {"champion": "champion: it earned an alias under the training config's policy (permutation p at most "
                       "alpha; the minimum sample size unless the policy waives it) and no version held champion",
           "challenger": "challenger: it earned an alias, but another version is champion; 'promote' it to "
                         "score with it by default",
           "": f"none: {no_alias_reason or 'not earned'}; 'promote --reason' can still make it champion"}[role]
    client.set_model_version_tag(name, str(version), ALIAS_REASON_TAG, why)
    if description or role:
        client.update_model_version(name, str(version), description=" ".join(
            filter(None, (description, f"Alias {why}." if role else ""))))
    return version, role


def _give_alias(client: Any, name: str, version: str) -> str:
    """``champion`` to *version* when the model has none, else ``challenger``; returns the alias given."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_model_version_by_alias(name, "champion")
        role = "challenger"
    except MlflowException:
        role = "champion"
    if not _set_alias(client, name, role, version):  # another training took champion since we looked
        role = "challenger"
        _set_alias(client, name, role, version, retry=True)
    return role


def _set_alias(client: Any, name: str, alias: str, version: str, retry: bool = False) -> bool:
    """Point *alias* at *version*; False when another process created the alias between our read and this
    write (the store refuses a second row for it). With *retry*, write again: the alias now exists, so the
    store moves it, as ``promote`` means to."""
    from mlflow.exceptions import MlflowException

    try:
        client.set_registered_model_alias(name, alias, version)
        return True
    except MlflowException:
        if not retry:
            return False
    client.set_registered_model_alias(name, alias, version)
    return True


def version_record(name: str, version: int) -> tuple[dict[str, str], str]:
    """(tags, description) of a registered version; a missing one is a TrackingError."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        found = MlflowClient().get_model_version(name, str(version))
    except MlflowException as exc:
        raise TrackingError(f"cannot promote {name} version {version}: {exc.message}") from None
    return dict(found.tags), found.description or ""


def promote(name: str, version: int, why: str = "", tags: dict[str, str] | None = None) -> str | None:
    """Move the ``champion`` alias of *name* to *version*, record *why* (its ``alias_reason``) and *tags* on
    it, and bring the ``alias`` tag of the runs that made it and the replaced version up to date. Returns
    the version it left (None if none had it)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    version_record(name, version)  # a missing version is refused before anything moves
    try:
        previous: str | None = client.get_model_version_by_alias(name, "champion").version
    except MlflowException:
        previous = None
    _set_alias(client, name, "champion", str(version), retry=True)  # two promotes at once: the last one wins
    why = why or "champion: promoted by hand"
    for key, value in {**(tags or {}), ALIAS_REASON_TAG: why}.items():
        client.set_model_version_tag(name, str(version), key, value)
    description = client.get_model_version(name, str(version)).description or ""
    client.update_model_version(name, str(version), description=f"{description} Now {why}.".strip())
    for moved in {str(version), previous} - {None}:
        _sync_run_alias(client, name, str(moved), version)
    return previous


def _sync_run_alias(client: Any, name: str, version: str, promoted: int) -> None:
    """The ``alias`` tag of the run that made *version* set to the aliases it holds now ("none" when it lost
    champion to *promoted*, with an ``alias_reason`` saying so)."""
    found = client.get_model_version(name, version)
    aliases = ", ".join(sorted(found.aliases)) or "none"
    if aliases == "none":
        client.set_model_version_tag(name, version, ALIAS_REASON_TAG, f"none: version {promoted} was promoted "
                                     "to champion in its place")
    if found.run_id:
        client.set_tag(found.run_id, "alias", aliases)


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
    return tags.get(DIGEST_TAG, tags.get(_OLD_DIGEST_TAG)), tags.get(FILES_TAG, tags.get(_OLD_FILES_TAG))


def _unloadable(uri: str, exc: Exception) -> TrackingError:
    return TrackingError(f"model {uri} cannot be loaded ({getattr(exc, 'message', exc)}). List registered "
                         "models in the MLflow UI or with 'ketamine-response runs'.")


def verified_copy(uri: str, folder: str) -> str:
    """The logged model's files downloaded into *folder* and checked against the SHA-256 recorded when it was
    logged: the one check every path that runs a model's pickled code passes first (:func:`load_model`,
    :func:`spark_udf`). A missing, unrecorded or altered model is a TrackingError."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    from ketamine_response.pipelines.integrity import verify

    if not uri.startswith("models:/") or uri == "models:/":
        raise TrackingError(f"model {uri}: not a model URI this tool loads. Use {MODEL_URI_FORMS} from the "
                            "tracking store (see 'ketamine-response runs' or the MLflow UI).")
    try:
        expected, files = _recorded_digest(uri)
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=folder)
        verify(local, uri, expected, files)
    except (MlflowException, OSError) as exc:
        raise _unloadable(uri, exc) from None
    return local


def load_model(uri: str):
    """Load a logged model as pyfunc after checking its files against the SHA-256 recorded when it was
    logged (unpickling runs code). A missing, unrecorded, altered or unreadable model is a TrackingError."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    with tempfile.TemporaryDirectory(prefix="ketamine-model-") as local:
        folder = verified_copy(uri, local)
        try:
            model = mlflow.pyfunc.load_model(folder)
        except (MlflowException, OSError) as exc:
            raise _unloadable(uri, exc) from None
        except (ImportError, AttributeError, pickle.UnpicklingError) as exc:  # pickled by an incompatible version
            raise TrackingError(f"model {uri} was saved by another version of ketamine-response and cannot be "
                                f"read by this one ({type(exc).__name__}: {exc}). Retrain it with this version.") from None
    if not hasattr(model.unwrap_python_model(), "family"):
        raise TrackingError(f"model {uri} was saved by an older version of ketamine-response (before model "
                            "families were recorded). Retrain it with this version.")
    return model


class _DropLocalEnvNote(logging.Filter):
    """spark_udf logs, for every env_manager="local", that the training environment is not recreated: the
    executors run this interpreter on purpose. Its warnings about requirement mismatches still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        return 'with `env_manager="local"`' not in record.getMessage()


def spark_udf(spark: Any, uri: str) -> Any:
    """The logged model's pyfunc as a Spark UDF giving one double per row, built from a :func:`verified_copy`
    (spark_udf copies the folder, so it may go when this returns). The executors run this interpreter
    (``env_manager="local"``): the project and its dependencies must be installed where they run."""
    import mlflow.pyfunc

    note = _DropLocalEnvNote()
    logger = logging.getLogger("mlflow.pyfunc")
    logger.addFilter(note)
    try:
        with tempfile.TemporaryDirectory(prefix="ketamine-model-") as local:
            return mlflow.pyfunc.spark_udf(spark, verified_copy(uri, local), result_type="double", env_manager="local")
    finally:
        logger.removeFilter(note)


def resolve_model(uri: str | None) -> tuple[str, str, str]:
    """(URI, model name, version) of a model URI; None means the champion of the only registered model.

    Every form resolves to the registered version it names now: an alias or ``latest`` to its number, and a
    number to its plain form (``01`` is version 1), so what is recorded beside the scores is the version that
    scored. A version whose training run was deleted from the store is logged as a warning (it still loads)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient()
    try:
        uri = uri if uri is not None else _only_champion(client)
        if not uri.startswith("models:/"):
            return uri, uri, ""
        name, found = _registered_version(client, uri)
        if found is None:  # models:/m-ID: a logged model, not a registered version
            return uri, name, ""
        _warn_if_training_run_gone(client, name, found)
        version = str(int(found.version))
        return (uri if "@" in uri else f"models:/{name}/{version}"), name, version
    except MlflowException as exc:
        hint = ""
        if uri is not None and "@" in uri and "alias" in exc.message:
            hint = (" Versions trained below the minimum sample size get no alias: name a version "
                    "(models:/NAME/VERSION) or promote one to champion.")
        raise TrackingError(f"model {uri} not found in {redact(store_uri())}: {exc.message}{hint}") from None


def _only_champion(client: Any) -> str:
    """``models:/NAME@champion`` of the only registered model; several or none is a TrackingError."""
    names = sorted(m.name for m in client.search_registered_models())
    if len(names) != 1:
        listed = ", ".join(names) or "none"
        raise TrackingError(f"no model was named and {redact(store_uri())} has {len(names)} registered models "
                            f"({listed}); name one, e.g. models:/NAME@champion.")
    return f"models:/{names[0]}@champion"


def _registered_version(client: Any, uri: str) -> tuple[str, Any]:
    """(name, registry version) that ``models:/NAME@ALIAS``, ``models:/NAME/latest`` or ``models:/NAME/N``
    names; (the URI's reference, None) for ``models:/m-ID``. A missing one raises MlflowException."""
    ref = uri.removeprefix("models:/")
    name, _, alias = ref.partition("@")
    if alias:
        return name, client.get_model_version_by_alias(name, alias)
    name, slash, version = ref.partition("/")
    if not slash and ref.startswith("m-"):  # a logged model's id
        return ref, None
    if not slash:
        raise TrackingError(f"model {uri}: no version named. Use {MODEL_URI_FORMS}.")
    if version == "latest":  # the highest number: record the number actually scored, not the moving label
        versions = [int(v.version) for v in client.search_model_versions(f"name = '{name}'")]
        if not versions:
            raise TrackingError(f"model {uri}: no version of '{name}' is registered in {redact(store_uri())}.")
        version = str(max(versions))
    if not version.isdecimal():
        raise TrackingError(f"model {uri}: '{version}' is not a version number. Use {MODEL_URI_FORMS}.")
    return name, client.get_model_version(name, str(int(version)))


def _warn_if_training_run_gone(client: Any, name: str, found: Any) -> None:
    """One warning line when the run that trained a version was deleted (or purged) from the store: the
    version still loads, but its metrics, config and report are gone, so nothing documents how it was made."""
    from mlflow.exceptions import MlflowException

    if not found.run_id:
        return
    try:
        gone = client.get_run(found.run_id).info.lifecycle_stage == "deleted"
    except MlflowException:  # purged (mlflow gc) or never in this store
        gone = True
    if gone:
        logging.getLogger(__name__).warning(
            "%s version %s: its training run %s was deleted from %s, so its metrics, config and report are gone; "
            "it still scores, but retrain or restore the run to keep a record of how it was made",
            name, found.version, found.run_id, redact(store_uri()))
