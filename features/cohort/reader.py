"""Read a cohort file into a raw table, or say clearly why not; write tables and outputs back.

What differs between formats (CSV, Parquet) is in :mod:`ketamine_response.features.cohort.formats`;
this module applies the checks every format shares (a missing file, a folder, no columns, no rows) and
writes outputs aside, so an interrupted write never leaves a finished-looking file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
from collections.abc import Callable, Generator
from pathlib import Path

import pandas as pd

from ketamine_response.features.cohort.formats import Format, format_of, output_format_of, refuse_special
from ketamine_response.features.cohort.text import read_text
from ketamine_response.features.errors import CohortFileError


def read_cohort_file(path: str | Path) -> pd.DataFrame:
    """Read a cohort file into a DataFrame with one row per data row.

    Parameters
    ----------
    path : str or Path
        A file of one of the formats of :data:`~ketamine_response.features.cohort.formats.FORMATS`
        (``.csv``, ``.parquet``).

    Returns
    -------
    pandas.DataFrame
        CSV: every cell as text (blank cells as ``""``); Parquet: the stored types.

    Raises
    ------
    CohortFileError
        If the file is missing, unreadable, empty, of another type, or malformed.
    """
    path = Path(path)
    entry = format_of(path)
    _require_file(path, "is a directory")
    table = entry.read(path)
    if len(table.columns) == 0:
        raise CohortFileError(f"{path}: the file has no columns. Write a header row first.")
    if len(table) == 0:
        raise CohortFileError(
            f"{path}: the file has a header but no data rows. Add one row per treatment course."
        )
    return table


def _require_file(path: Path, if_folder: str) -> None:
    if not path.is_file():
        what = if_folder if path.is_dir() else "does not exist"
        if path.is_symlink() and not path.exists():
            what = "is a symbolic link to nothing, or to itself (a symlink loop)"
        raise CohortFileError(f"{path}: the file {what}. Check the path and try again.")


def read_text_table(path: str | Path, delimiter: str | None = None) -> pd.DataFrame:
    """A delimited text table (a BIDS ``.tsv``, a cohort ``.csv``) with every cell as text, through the
    same checks as cohort files: encoding, compression, binary data, ragged rows, blank or repeated
    headers, a header with no rows. *delimiter* None detects it from the header."""
    path = Path(path)
    _require_file(path, "is a directory")
    table = read_text(path, delimiter)
    if len(table) == 0:
        raise CohortFileError(f"{path}: the file has a header but no data rows.")
    return table


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula (starting with = + - @, tab or CR) get a leading
    apostrophe (OWASP CSV-injection guidance); numbers, and text that reads as a number (-4), stay as
    they are. For CSV outputs a person opens (scores, rejected rows, problems), not for cohort files."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype.kind in "biufc":
            continue
        text = values.astype("string")
        risky = text.str.startswith(_FORMULA_START).fillna(False) & pd.to_numeric(text, errors="coerce").isna()
        if risky.any():
            out[column] = values.astype(object).where(~risky, "'" + text)
    return out


def partial_path(path: Path) -> Path:
    """A hidden name beside *path* for writing aside; unique per run, so concurrent runs never interleave
    (the last to finish wins with a complete file). Every output is written aside, so this is where one
    that would replace a device, pipe or socket (``/dev/full``: renaming onto it replaces the node) stops.

    Raises
    ------
    CohortFileError
        If something other than a regular file or a folder is at *path*.
    """
    refuse_special(path)
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")


def write_aside(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call *write* on a hidden temporary name beside *path*, then rename it onto *path*: a failure
    (a folder in the way, a read-only or full disk) removes the partial file and is a CohortFileError
    (exit 2) naming *path*; any other error or a stop removes it too. Nothing finished-looking is left."""
    write_all_aside({Path(path): write})


def write_all_aside(writes: dict[Path, Callable[[Path], object]]) -> None:
    """:func:`write_aside` for files that belong together (a cohort and its oracle): every one written aside
    first, then all renamed into place with stops held back, so a failure while writing or a stop never leaves a new
    one beside another's old version or without its partner. The paths must differ (callers refuse the same path
    twice: :func:`refuse_overwriting`)."""
    partials = {path: partial_path(path) for path in writes}
    current = next(iter(writes))
    try:
        for current, write in writes.items():
            if current.is_dir():
                raise IsADirectoryError(21, "it is a folder")
            current.parent.mkdir(parents=True, exist_ok=True)
            write(partials[current])
        # a stop waits until every file is in place: never a new one beside another's old version
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
        try:
            for current, partial in partials.items():
                os.replace(partial, current)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)
    except BaseException as exc:  # a stop (SIGTERM, Ctrl-C) too
        for partial in partials.values():
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        if not isinstance(exc, OSError):
            raise
        raise CohortFileError(f"{current}: cannot be written ({exc.strerror or exc}). Check that the path names a "
                              "file in a writable folder with free space.") from None


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a table in the format of *path*'s extension, byte-identically for the same table."""
    write_tables({Path(path): table})


def write_tables(tables: dict[Path, pd.DataFrame]) -> None:
    """:func:`write_table` for tables that belong together: all in place, or none (:func:`write_all_aside`)."""
    entries = {path: output_format_of(path) for path in tables}  # an unknown extension stops before anything is written

    def writer_of(path: Path) -> Callable[[Path], None]:
        def write(partial: Path) -> None:
            writer = entries[path].open_writer(partial)
            writer.write(tables[path])
            writer.close()
        return write

    write_all_aside({path: writer_of(path) for path in tables})


class OutputSink:
    """An output file (format by extension) appended chunk by chunk under a hidden name beside it and
    renamed into place by :meth:`close`; :meth:`discard` removes it. Outputs people open in a spreadsheet
    get :func:`spreadsheet_safe` cells."""

    def __init__(self, path: Path):
        self.path, self.format = path, output_format_of(path)
        self.partial = partial_path(path)
        self.writer = self.format.open_writer(self.partial)
        self.started = False  # whether anything (a header at least) was written

    def write(self, frame: pd.DataFrame) -> None:
        self.writer.write(spreadsheet_safe(frame) if self.format.spreadsheet else frame)
        self.started = True

    def close(self) -> None:
        self.writer.close()
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        # already failing: remove what we can, report the first error
        with contextlib.suppress(OSError):
            self.writer.close()
        with contextlib.suppress(OSError):
            self.partial.unlink(missing_ok=True)


def iter_cohort_chunks(path: str | Path, chunk_rows: int, columns: list[str] | None = None) -> Generator[pd.DataFrame]:
    """Yield a cohort file in chunks of *chunk_rows* rows, cells as the reader gives them.

    CSV chunks are text (as :func:`read_cohort_file`); Parquet chunks keep their types. *columns*
    limits what is read (a cheap first pass over the keys).

    Raises
    ------
    CohortFileError
        For file-level problems, including ones met part-way through the file.
    """
    path = Path(path)
    entry = _format_of_file(path)
    empty = True
    for chunk in entry.chunks(path, chunk_rows, columns):
        if len(chunk) == 0:  # a header-only CSV still gives pandas one empty chunk
            continue
        empty = False
        yield chunk
    if empty:
        raise CohortFileError(f"{path}: the file has a header but no data rows. Add one row per treatment course.")


def check_cohort_file(path: str | Path) -> None:
    """What a read checks first (the format, that the file is there, its header), without reading a row: for a
    command to refuse a bad input before its slow part (loading a model), with the message the read would give."""
    path = Path(path)
    _format_of_file(path).header(path)


def _format_of_file(path: Path) -> Format:
    """The format of *path*, once it is known to be a file: what every read of a cohort checks first."""
    entry = format_of(path)
    _require_file(path, "is a folder, not a file")
    return entry


def refuse_overwriting(outputs: dict[str, str | Path | None], inputs: list[str | Path | None]) -> None:
    """Stop (exit 2) before anything is read when an output would replace an input or another output.

    Same path, symlink or hard link all count (``os.path.samefile`` where both exist).

    Raises
    ------
    UsageError
        Naming the option, the path and what it would destroy.
    """
    from ketamine_response.features.errors import UsageError

    def same(a: Path, b: Path) -> bool:
        try:
            return a.exists() and b.exists() and os.path.samefile(a, b)
        except OSError:
            return False

    def resolved(path: Path, role: str) -> Path:
        try:
            return path.resolve()
        except (OSError, RuntimeError):  # Python 3.11 raises RuntimeError on a symlink loop
            raise CohortFileError(f"{path}: the {role} path is a symbolic link that leads back to itself (a symlink "
                                  "loop). Replace the link with the file it stands for, or choose another path.") from None

    seen: list[tuple[str, Path]] = [("input", Path(p)) for p in inputs if p is not None]
    for option, path in outputs.items():
        if path is None:
            continue
        out = Path(path)
        for what, other in seen:
            if resolved(out, option) == resolved(other, what) or same(out, other):
                kind = "the input file" if what == "input" else f"the {what} output"
                raise UsageError(f"{out}: {option} would overwrite {kind} ({other}). Choose another path for {option}.")
        seen.append((option, out))


def cohort_columns(path: str | Path) -> list[str]:
    """The column names of a cohort file, from its header (CSV) or schema (Parquet), without reading rows;
    ``[]`` when there is no file (the reader says so)."""
    path = Path(path)
    entry = format_of(path)
    return entry.header(path).columns if path.is_file() else []
