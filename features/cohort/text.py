"""Delimited text (cohort CSV, the TSV of BIDS datasets): the checks a file's bytes pass before a parser
sees them (encoding, compression, binary data), its header row, and the one set of pandas options every
text read uses (a whole file, chunks, a batch of lines in a Spark task), so a cell reads the same everywhere.

Cells are kept as text so the validator sees exactly what the user wrote (an unparseable number is
reported, not silently turned into NaN). The column cap is here too: every format's header passes
:func:`check_width`.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.errors import CohortFileError

DELIMITERS = (",", ";", "\t")
MAX_COLUMNS = 20_000  # a cohort has tens of columns; far more is a transposed or corrupted export
# every cell as written (no guessed NaN), blank lines kept so rows keep their numbers in the file
READ_OPTIONS: dict[str, Any] = dict(dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False,
                                    index_col=False, engine="c")
_PARSE_ERRORS = (pd.errors.ParserError, pd.errors.ParserWarning, ValueError, csv.Error)


def check_width(path: Path, columns: list[str]) -> None:
    """Refuse a file with more than :data:`MAX_COLUMNS` columns (CohortFileError naming *path*)."""
    if len(columns) > MAX_COLUMNS:
        raise CohortFileError(f"{path}: the file has {len(columns):,} columns; at most {MAX_COLUMNS:,} are read. "
                              "A cohort has one column per variable and one row per course: check that the "
                              "table is not transposed.")


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
    delimiter = delimiter or max(DELIMITERS, key=first.count)
    header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
    check_width(path, header)
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


def _malformed(path: Path | str, detail: object, delimiter: str, what: str = "CSV") -> CohortFileError:
    return CohortFileError(f"{path}: the file is not well-formed {what} ({detail}). Quote cells that contain "
                           f"'{delimiter}' and give every row the same number of cells as the header.")


def read_text(path: Path, delimiter: str | None = None) -> pd.DataFrame:
    """A whole delimited file, every cell as text (blank cells ``""``); *delimiter* None detects it."""
    text = _decode(path)
    header, delimiter = _header(path, text, delimiter)
    try:
        with warnings.catch_warnings():
            # pandas only warns when a row has more cells than the header and drops the extra: refuse it
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(io.StringIO(text), sep=delimiter, **READ_OPTIONS)
    except _PARSE_ERRORS as exc:
        raise _malformed(path, exc, delimiter) from None
    table.columns = header
    table = table.fillna("")
    # A trailing newline is not a row; blank lines inside the file are kept so rows stay numbered.
    while len(table) and (table.iloc[-1] == "").all():
        table = table.iloc[:-1]
    return table.reset_index(drop=True)


def file_header(path: Path) -> tuple[list[str], str]:
    """(column names, delimiter) from the first line alone, after the encoding and binary-data checks."""
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


def text_chunks(path: Path, chunk_rows: int, columns: list[str] | None) -> Iterator[pd.DataFrame]:
    """The file in chunks of *chunk_rows* rows, cells as :func:`read_text` gives them; *columns*: only these."""
    header, delimiter = file_header(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            reader = pd.read_csv(path, sep=delimiter, encoding="utf-8-sig", chunksize=chunk_rows, header=0, names=header,
                                 usecols=columns, **READ_OPTIONS)
            with reader:  # closed also when the consumer stops early (generator close)
                for chunk in reader:
                    yield chunk.fillna("")
    except (*_PARSE_ERRORS, UnicodeDecodeError) as exc:
        raise _malformed(path, exc, delimiter, "UTF-8 CSV") from None


def parse_lines(lines: Iterable[bytes], rows: np.ndarray, header: list[str], delimiter: str, source: str) -> pd.DataFrame:
    """Data lines of a file (one row each; Spark's text source gives them) as :func:`read_text` reads them,
    indexed by their row numbers *rows*; a problem names the row."""
    text = []
    for row, line in zip(rows, lines):
        try:
            text.append(bytes(line).decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise CohortFileError(f"{source}: the file is not well-formed UTF-8 CSV (row {row}: byte 0x{line[exc.start]:02x} is "
                                  "not UTF-8). Re-save it as 'CSV UTF-8'.") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(io.StringIO("\n".join(text) + "\n"), sep=delimiter, header=None, names=header, **READ_OPTIONS)
    except _PARSE_ERRORS as exc:
        line_no = re.search(r"line (\d+)", str(exc))
        where = f"row {rows[min(int(line_no[1]), len(rows)) - 1]}" if line_no else f"rows {rows[0]}-{rows[-1]}"
        raise _malformed(source, f"{where}: {str(exc).strip()}", delimiter, "UTF-8 CSV") from None
    if len(table) != len(text):  # a quoted cell went on over a line break
        raise CohortFileError(f"{source}: a quoted cell between rows {rows[0]} and {rows[-1]} contains a line break; "
                              "the Spark engine reads CSV one line per row. Save the cohort as Parquet, or score it "
                              "with --engine local.")
    return table.fillna("").set_axis(pd.Index(rows, name="row"))
