"""Fingerprints of a logged model's files, so a model is checked before it is loaded.

Loading a logged model unpickles it, and unpickling runs code: a model folder whose pickle was
swapped would run whatever the new pickle says. The digest recorded when the model was logged
(a registry tag, kept in the tracking database, not beside the files) is compared with the files
about to be loaded, and any difference is refused before anything is unpickled.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from ketamine_response.features.errors import TrackingError

CHUNK = 1 << 20
# MLflow writes this one file at the root of a copy of a registered model as it downloads it (the registry
# name and version): it is not part of what was logged, and nothing in it is executed. Only that exact
# relative path is left out: a file of the same name anywhere else was logged with the model and is hashed.
DOWNLOAD_METADATA = "registered_model_meta"


def file_digests(folder: str | Path) -> dict[str, str]:
    """SHA-256 of every file under *folder*, by its path relative to *folder* (sorted, '/'-separated), but
    for MLflow's download metadata at the root (:data:`DOWNLOAD_METADATA`)."""
    root = Path(folder)
    out: dict[str, str] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative != DOWNLOAD_METADATA:
            out[relative] = file_digest(path)
    return out


def file_digest(path: str | Path) -> str:
    """SHA-256 of one file, read in blocks (a cohort file's digest identifies the data without storing it)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def folder_digest(files: dict[str, str]) -> str:
    """One SHA-256 over the sorted (path, digest) pairs of :func:`file_digests`."""
    return hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()


def manifest(folder: str | Path) -> tuple[str, str]:
    """(digest of the whole folder, JSON of the per-file digests) to record when a model is logged."""
    files = file_digests(folder)
    return folder_digest(files), json.dumps(files, sort_keys=True, separators=(",", ":"))


def verify(folder: str | Path, uri: str, expected: str | None, recorded_files: str | None) -> None:
    """Refuse (TrackingError, exit 2) a model whose files differ from what was recorded at log time,
    naming the files that changed, appeared or disappeared."""
    if not expected:
        raise TrackingError(f"model {uri} has no recorded SHA-256 of its files, so it cannot be checked before "
                            "loading (loading a model runs the code pickled in it). Score with a model that "
                            "ketamine-response logged and registered, e.g. models:/NAME/VERSION; retrain older ones.")
    files = file_digests(folder)
    if folder_digest(files) == expected:
        return
    known: dict[str, str] = json.loads(recorded_files) if recorded_files else {}
    changed = sorted(p for p in files.keys() & known.keys() if files[p] != known[p])
    added, removed = sorted(files.keys() - known.keys()), sorted(known.keys() - files.keys())
    parts = [f"{label}: {', '.join(paths)}" for label, paths in
             (("changed", changed), ("added", added), ("removed", removed)) if paths]
    detail = "; ".join(parts) or "the files differ from the recorded digest"
    raise TrackingError(f"model {uri}: its files do not match the SHA-256 recorded when it was logged ({detail}). "
                        "It was modified after training and is not loaded (loading a model runs code). "
                        "Retrain it, or restore the artifacts from a trusted copy.")
