"""Read a cohort file (CSV or Parquet) into a raw table, or say clearly why not; write tables back.

CSV cells are kept as text so the validator sees exactly what the user wrote
(an unparseable number is reported, not silently turned into NaN).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import secrets
import warnings
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pandas as pd

from ketamine_response.features.errors import CohortFileError

CSV_SUFFIXES = (".csv",)
PARQUET_SUFFIXES = (".parquet", ".pq")
_DELIMITERS = (",", ";", "\t")
MAX_COLUMNS = 20_000  # a cohort has tens of columns; far more is a transposed or corrupted export


def _check_width(path: Path, columns: list[str]) -> None:
    if len(columns) > MAX_COLUMNS:
        raise CohortFileError(f"{path}: the file has {len(columns):,} columns; at most {MAX_COLUMNS:,} are read. "
                              "A cohort has one column per variable and one row per course: check that the "
                              "table is not transposed.")


def file_kind(path: Path) -> str:
    """``"csv"`` or ``"parquet"`` from the file's extension, else a CohortFileError."""
    suffix = path.suffix.lower()
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise CohortFileError(
        f"{path}: unsupported file type '{suffix or '(no extension)'}'. "
        "Cohort files must be CSV (.csv, UTF-8) or Parquet (.parquet); "
        "export the sheet as 'CSV UTF-8' and pass that file."
    )


def read_cohort_file(path: str | Path) -> pd.DataFrame:
    """Read a cohort file into a DataFrame with one row per data row.

    Parameters
    ----------
    path : str or Path
        A ``.csv`` or ``.parquet`` file.

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
    kind = file_kind(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise CohortFileError(f"{path}: the file {what}. Check the path and try again.")
    table = _read_csv(path) if kind == "csv" else _read_parquet(path)
    if len(table.columns) == 0:
        raise CohortFileError(f"{path}: the file has no columns. Write a header row first.")
    if len(table) == 0:
        raise CohortFileError(
            f"{path}: the file has a header but no data rows. Add one row per treatment course."
        )
    return table


def _refuse_binary(path: Path, head: bytes) -> None:
    """Text in another encoding (UTF-16 from some spreadsheet exports), a compressed file or binary
    data: say which."""
    if head.startswith(b"\x1f\x8b"):
        raise CohortFileError(f"{path}: the file is gzip-compressed. Decompress it first (gunzip).")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (b"\x00" in head[:200] and head[1::2].count(0) > len(head) // 4):
        raise CohortFileError(f"{path}: the file is UTF-16 text, not UTF-8. Re-save it as 'CSV UTF-8'.")
    if b"\x00" in head:
        raise CohortFileError(f"{path}: the file is binary, not CSV text. Save it as 'CSV UTF-8' or as Parquet.")


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise CohortFileError(f"{path}: the file is empty. Write a header row and one row per course.")
    _refuse_binary(path, data)
    try:
        # utf-8-sig drops a byte-order mark that spreadsheet exports add.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CohortFileError(
            f"{path}: the file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}). "
            "Re-save it as 'CSV UTF-8'."
        ) from None


def _header(path: Path, text: str, delimiter: str | None = None) -> tuple[list[str], str]:
    first = text.splitlines()[0]
    # The delimiter that splits the header most wins: semicolon CSV from European locales reads too.
    delimiter = delimiter or max(_DELIMITERS, key=first.count)
    header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
    _check_width(path, header)
    blanks = [i + 1 for i, h in enumerate(header) if not h]
    if blanks:
        raise CohortFileError(
            f"{path}: header column {blanks[0]} has no name. Name every column or delete the empty one."
        )
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise CohortFileError(
            f"{path}: column '{dupes[0]}' appears more than once in the header. Keep one and rename the other."
        )
    return header, delimiter


def read_text_table(path: str | Path, delimiter: str | None = None) -> pd.DataFrame:
    """A delimited text table (a BIDS ``.tsv``, a cohort ``.csv``) with every cell as text, through the
    same checks as cohort files: encoding, compression, binary data, ragged rows, blank or repeated
    headers, a header with no rows. *delimiter* None detects it from the header."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise CohortFileError(f"{path}: the file {what}. Check the path and try again.")
    table = _read_csv(path, delimiter)
    if len(table) == 0:
        raise CohortFileError(f"{path}: the file has a header but no data rows.")
    return table


def _read_csv(path: Path, delimiter: str | None = None) -> pd.DataFrame:
    text = _decode(path)
    header, delimiter = _header(path, text, delimiter)
    try:
        with warnings.catch_warnings():
            # pandas only warns when a row has more cells than the header and drops the extra: refuse it
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(
                io.StringIO(text), sep=delimiter, dtype=str, keep_default_na=False, na_filter=False,
                skip_blank_lines=False, index_col=False, engine="c",
            )
    except (pd.errors.ParserError, pd.errors.ParserWarning, ValueError, csv.Error) as exc:
        raise CohortFileError(
            f"{path}: the file is not well-formed CSV ({exc}). Quote cells that contain "
            f"'{delimiter}' and give every row the same number of cells as the header."
        ) from None
    table.columns = header
    table = table.fillna("")
    # A trailing newline is not a row; blank lines inside the file are kept so rows stay numbered.
    while len(table) and (table.iloc[-1] == "").all():
        table = table.iloc[:-1]
    return table.reset_index(drop=True)


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types; all mean "not readable Parquet"
        raise CohortFileError(
            f"{path}: the file cannot be read as Parquet ({type(exc).__name__}: {exc}). "
            "Check that it is a Parquet file, or save the data as CSV."
        ) from None
    table.columns = [str(c).strip() for c in table.columns]
    _check_width(path, list(table.columns))
    return table.reset_index(drop=True)


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
    (the last to finish wins with a complete file)."""
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.partial")


def write_aside(path: str | Path, write: Callable[[Path], object]) -> None:
    """Call *write* on a hidden temporary name beside *path*, then rename it onto *path*: a failure
    (a folder in the way, a read-only or full disk) removes the partial file and is a CohortFileError
    (exit 2) naming *path*; nothing finished-looking is left."""
    path = Path(path)
    partial = partial_path(path)
    try:
        if path.is_dir():
            raise IsADirectoryError(21, "it is a folder")
        path.parent.mkdir(parents=True, exist_ok=True)
        write(partial)
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise CohortFileError(f"{path}: cannot be written ({exc.strerror or exc}). Check that the path names a "
                              "file in a writable folder with free space.") from None


def write_table(table: pd.DataFrame, path: str | Path) -> None:
    """Write a table as CSV or Parquet by the extension of *path*, byte-identically for the same table."""
    if file_kind(Path(path)) == "csv":
        write_aside(path, lambda tmp: table.to_csv(tmp, index=False, lineterminator="\n"))
    else:
        write_aside(path, lambda tmp: table.to_parquet(tmp, index=False))


def _csv_header(path: Path) -> tuple[list[str], str]:
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
    if not head.strip():
        raise CohortFileError(f"{path}: the file is empty. Write a header row and one row per course.")
    _refuse_binary(path, head)
    try:
        first = head.lstrip(b"\r\n").split(b"\n", 1)[0].decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise CohortFileError(f"{path}: the file is not UTF-8 text (offset {exc.start}). Re-save it as 'CSV UTF-8'.") from None
    return _header(path, first)


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
    kind = file_kind(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise CohortFileError(f"{path}: the file {what}. Check the path and try again.")
    chunks = _csv_chunks(path, chunk_rows, columns) if kind == "csv" else _parquet_chunks(path, chunk_rows, columns)
    empty = True
    for chunk in chunks:
        if len(chunk) == 0:  # a header-only CSV still gives pandas one empty chunk
            continue
        empty = False
        yield chunk
    if empty:
        raise CohortFileError(f"{path}: the file has a header but no data rows. Add one row per treatment course.")


def _csv_chunks(path: Path, chunk_rows: int, columns: list[str] | None) -> Iterator[pd.DataFrame]:
    header, delimiter = _csv_header(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            reader = pd.read_csv(path, sep=delimiter, dtype=str, keep_default_na=False, na_filter=False,
                                 skip_blank_lines=False, index_col=False, encoding="utf-8-sig",
                                 chunksize=chunk_rows, header=0, names=header, usecols=columns)
            with reader:  # closed also when the consumer stops early (generator close)
                for chunk in reader:
                    yield chunk.fillna("")
    except (pd.errors.ParserError, pd.errors.ParserWarning, UnicodeDecodeError, ValueError) as exc:
        raise CohortFileError(f"{path}: the file is not well-formed UTF-8 CSV ({exc}). Quote cells that contain "
                              f"'{delimiter}' and give every row the same number of cells as the header.") from None


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

    seen: list[tuple[str, Path]] = [("input", Path(p)) for p in inputs if p is not None]
    for option, path in outputs.items():
        if path is None:
            continue
        out = Path(path)
        for what, other in seen:
            if out.resolve() == other.resolve() or same(out, other):
                kind = "the input file" if what == "input" else f"the {what} output"
                raise UsageError(f"{out}: {option} would overwrite {kind} ({other}). Choose another path for {option}.")
        seen.append((option, out))


def cohort_columns(path: str | Path) -> list[str]:
    """The column names of a cohort file, from its header (CSV) or schema (Parquet), without reading rows."""
    path = Path(path)
    if file_kind(path) == "csv" or not path.is_file():
        return _csv_header(path)[0] if path.is_file() else []
    import pyarrow.parquet as pq

    try:
        return list(pq.read_schema(path).names)
    except Exception as exc:  # pyarrow raises many types; all mean "not readable Parquet"
        raise CohortFileError(f"{path}: the file cannot be read as Parquet ({type(exc).__name__}: {exc}).") from None


def _parquet_chunks(path: Path, chunk_rows: int, columns: list[str] | None) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path, memory_map=True, pre_buffer=False)
        for batch in source.iter_batches(batch_size=chunk_rows, columns=columns, use_threads=False):
            yield batch.to_pandas()
    except Exception as exc:  # pyarrow raises many types; all mean "not readable Parquet"
        raise CohortFileError(f"{path}: the file cannot be read as Parquet ({type(exc).__name__}: {exc}).") from None
