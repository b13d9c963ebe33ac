"""Opening a dataset's files and folders, or saying clearly why not.

Every path an ingest opens goes through here, so a symlink loop, a permission problem, a folder where
a file belongs (or the reverse), text that is not UTF-8, invalid JSON, JSON nested past Python's
recursion limit and JSON that is not an object are each a :class:`CohortFileError` naming the path
(exit 2), never an internal error.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ketamine_response.features.errors import CohortFileError

MAX_JSON_BYTES = 10_000_000  # a BIDS sidecar is a few kB; more is not one, and would all be held in memory

_BECAUSE = {  # errno -> why the path cannot be opened, and what to do
    errno.ENOENT: "does not exist. Check the path",
    errno.ELOOP: "is a symbolic link that leads back to itself (a symlink loop), so it cannot be opened. "
                 "Replace the link with the file or folder it stands for",
    errno.EACCES: "cannot be read: permission denied. Give your user read access (chmod u+r, and u+x on "
                  "folders) or copy the dataset somewhere readable",
    errno.ENOTDIR: "cannot be opened: a part of its path is a file, not a folder. Check the path",
    errno.EISDIR: "is a folder, where a file is expected. Check the path",
    errno.ENAMETOOLONG: "has a name too long for the file system. Use a shorter path",
}
_BECAUSE[errno.EPERM] = _BECAUSE[errno.EACCES]


def os_problem(path: Path, what: str, exc: OSError) -> CohortFileError:
    """The error for an OSError met opening *path* (the {what} names its role: "BIDS table")."""
    because = _BECAUSE.get(exc.errno or 0, f"cannot be read ({exc.strerror or exc}). Check it and try again")
    return CohortFileError(f"{path}: the {what} {because}.")


@contextmanager
def opening(path: Path, what: str) -> Iterator[None]:
    """Within the block, an OSError (raised by any reader) is a CohortFileError naming *path*."""
    try:
        yield
    except OSError as exc:
        raise os_problem(path, what, exc) from None


def check(path: Path, what: str, folder: bool = False) -> Path:
    """*path*, once known to be a readable folder (*folder*) or regular file; else the reason, naming it.

    A pipe or device is refused too: reading one could block for ever."""
    with opening(path, what):
        mode = os.stat(path).st_mode  # follows links: a loop or a dangling one fails here
    if folder and not stat.S_ISDIR(mode):
        raise CohortFileError(f"{path}: the {what} is a file, not a folder. Pass the folder itself.")
    if not folder and stat.S_ISDIR(mode):
        raise os_problem(path, what, IsADirectoryError(errno.EISDIR, "is a folder"))
    if not folder and not stat.S_ISREG(mode):
        raise CohortFileError(f"{path}: the {what} is not a regular file (a pipe, socket or device). "
                              "Copy its content into a file.")
    return path


def present(path: Path) -> bool:
    """Whether anything is at *path*, even a dangling or looping link (which :func:`check` then reports)."""
    return os.path.lexists(path)


def refuse_loop(path: Path, what: str) -> None:
    """Stop at a symlink loop at *path* (it breaks path resolution); a missing path is left to the caller."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise os_problem(path, what, exc) from None


def files_in(folder: Path, suffix: str, what: str) -> list[Path]:
    """The files in *folder* whose names end in *suffix*, sorted, each checked; none if there is no *folder*.

    *what* names the files' role ("phenotype table"); the folder is "the folder of the {what}s"."""
    if not present(folder):
        return []
    check(folder, f"folder of the {what}s", folder=True)
    with opening(folder, f"folder of the {what}s"), os.scandir(folder) as entries:  # unlike glob, a listing error is not hidden
        names = sorted(entry.name for entry in entries if entry.name.endswith(suffix))
    return [check(folder / name, what) for name in names]


def read_json_object(path: Path, what: str) -> dict[str, Any]:
    """The JSON object in the file at *path*; anything else is a CohortFileError naming the file."""
    check(path, what)
    with opening(path, what), open(path, "rb") as handle:
        data = handle.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise CohortFileError(f"{path}: the {what} is over {MAX_JSON_BYTES // 1_000_000} MB; a BIDS {what} is a "
                              "few kB. Replace it with the dataset's own.")
    value = _parse_json(path, what, data)
    if not isinstance(value, dict):
        raise CohortFileError(f"{path}: the {what} must be a JSON object ({{\"Name\": ..., ...}}), not "
                              f"{_json_kind(value)}. Replace it with the dataset's own.")
    return value


def _parse_json(path: Path, what: str, data: bytes) -> Any:
    try:
        return json.loads(data.decode("utf-8-sig"))  # -sig: a byte-order mark some editors add is no error
    except UnicodeDecodeError as exc:
        raise CohortFileError(f"{path}: the {what} is not UTF-8 text (byte offset {exc.start}). Save it as "
                              "UTF-8.") from None
    except json.JSONDecodeError as exc:
        raise CohortFileError(f"{path}: the {what} is not valid JSON ({exc.msg} at line {exc.lineno}, column "
                              f"{exc.colno}). Fix the file there (python -m json.tool shows the same place).") from None
    except RecursionError:  # Python's parser recurses once per level of [ or {
        raise CohortFileError(f"{path}: the {what} nests arrays or objects too deeply to be read (more than about "
                              f"{sys.getrecursionlimit()} levels). Replace it with the dataset's own.") from None
    except ValueError as exc:  # e.g. an integer of more digits than Python converts
        raise CohortFileError(f"{path}: the {what} is not valid JSON ({exc}).") from None


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "true or false"
    if value is None:
        return "null"
    return "a list" if isinstance(value, list) else "a string" if isinstance(value, str) else "a number"
