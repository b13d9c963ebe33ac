"""Delimited text (cohort CSV, the TSV of BIDS datasets): the checks a file's bytes pass before a parser
sees them (encoding, compression, binary data), its header row, and the one set of pandas options every
text read uses (a whole file, chunks, a batch of lines in a Spark task), so a cell reads the same everywhere.

Cells are kept as text so the validator sees exactly what the user wrote (an unparseable number is
reported, not silently turned into NaN). The column cap is here too: every format's header passes
:func:`check_width`.

Every row must have one cell per header column. pandas pads a short row with blank cells, and its table
cannot tell them from blank cells the user wrote, so the cells of a row whose last cell reads blank (the
only rows that can be short) are counted again with the csv module; a long row stops pandas itself.
Either is a :class:`CohortFileError` naming the row, never a padded or cut row.
"""

from __future__ import annotations

import csv
import io
import re
import warnings
from collections import Counter
from collections.abc import Generator, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.errors import CohortFileError

DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {",": "','", ";": "';'", "\t": "a tab"}
MAX_COLUMNS = 20_000  # a cohort has tens of columns; far more is a transposed or corrupted export
MAX_HEADER_BYTES = 64 << 20  # 20,000 names of 3 KB each; a longer first line is not a header row
# every cell as written (no guessed NaN), blank lines kept so rows keep their numbers in the file
READ_OPTIONS: dict[str, Any] = dict(dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False,
                                    index_col=False, engine="c")
_PARSE_ERRORS = (pd.errors.ParserError, pd.errors.ParserWarning, ValueError, csv.Error)
# pandas has no cap on a cell's length; the csv module's default (128 KiB) would refuse cells pandas reads
csv.field_size_limit(2**31 - 1)


def check_width(path: Path, columns: list[str]) -> None:
    """Refuse a file with more than :data:`MAX_COLUMNS` columns (CohortFileError naming *path*)."""
    _check_count(path, len(columns))


def _check_count(path: Path, count: int) -> None:
    if count > MAX_COLUMNS:
        raise CohortFileError(f"{path}: the file has {count:,} columns; at most {MAX_COLUMNS:,} are read. "
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


def _utf8(path: Path, data: bytes) -> str:
    try:
        # utf-8-sig drops a byte-order mark that spreadsheet exports add.
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CohortFileError(
            f"{path}: the file is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}). "
            "Re-save it as 'CSV UTF-8'."
        ) from None


def _decode(path: Path) -> str:
    data = path.read_bytes()
    if not data.strip():
        raise CohortFileError(f"{path}: the file is empty. Write a header row and one row per course.")
    _refuse_binary(path, data)
    return _utf8(path, data)


def _first_line(path: Path) -> str:
    """The file's first line in full (streamed, up to :data:`MAX_HEADER_BYTES`), after the checks on its start."""
    with path.open("rb") as handle:
        head = handle.read(1 << 16)
        if not head.strip():
            raise CohortFileError(f"{path}: the file is empty. Write a header row and one row per course.")
        _refuse_binary(path, head)
        handle.seek(0)
        line = handle.readline(MAX_HEADER_BYTES + 1)
    if len(line) > MAX_HEADER_BYTES:
        # a header that long is usually far too wide: that message first
        _check_count(path, max(line.count(d.encode()) for d in DELIMITERS) + 1)
        raise CohortFileError(f"{path}: the first line (the header row) is longer than {MAX_HEADER_BYTES >> 20} MiB. "
                              "Check that the file is CSV text with one row per line.")
    return _utf8(path, line).rstrip("\r\n")


def _header(path: Path, first: str, delimiter: str | None = None) -> tuple[list[str], str]:
    if not first.strip():
        raise CohortFileError(f"{path}: the first line is blank. The header row (the column names) must be the "
                              "first line: delete the blank lines above it.")
    # The delimiter that splits the header most wins: semicolon CSV from European locales reads too.
    delimiter = delimiter or max(DELIMITERS, key=first.count)
    _check_count(path, first.count(delimiter) + 1)  # before parsing: its message wins over parsing noise
    if first.count('"') % 2:
        raise CohortFileError(f"{path}: a quoted column name in the header goes on past the first line (it holds "
                              "a line break, or its closing quote is missing). Put every column name on the first "
                              "line, in matching quotes.")
    header = [h.strip() for h in next(csv.reader([first], delimiter=delimiter))]
    check_width(path, header)
    blanks = [i + 1 for i, h in enumerate(header) if not h]
    if blanks:
        raise CohortFileError(
            f"{path}: header column {blanks[0]} has no name. Name every column or delete the empty one."
        )
    dupes = sorted(h for h, n in Counter(header).items() if n > 1)  # linear: a header may have 20,000 names
    if dupes:
        raise CohortFileError(
            f"{path}: column '{dupes[0]}' appears more than once in the header. Keep one and rename the other."
        )
    return header, delimiter


def file_header(path: Path, delimiter: str | None = None) -> tuple[list[str], str]:
    """(column names, delimiter) from the first line alone, read in full, after the encoding and binary-data
    checks; *delimiter* None detects it. Every text read (whole, chunks, Spark) takes its header from here."""
    return _header(path, _first_line(path), delimiter)


def _malformed(path: Path | str, detail: object, delimiter: str, what: str = "CSV") -> CohortFileError:
    return CohortFileError(f"{path}: the file is not well-formed {what} ({detail}). Quote cells that contain "
                           f"'{delimiter}' and give every row the same number of cells as the header.")


def _ragged(source: Path | str, row: int, cells: int, header: list[str], delimiter: str) -> CohortFileError:
    width, sep = len(header), _DELIMITER_NAMES.get(delimiter, repr(delimiter))
    missing = f", so it has no '{header[cells]}' cell or any after it" if cells < width else ""
    what = "TSV" if delimiter == "\t" else "CSV"
    return CohortFileError(f"{source}: the file is not well-formed {what}: row {row} (1 is the first row after the "
                           f"header) has {cells} cell{'s' * (cells != 1)} where the header has {width}{missing}. "
                           f"The file is refused rather than a row padded or cut. Give every row one cell per header column "
                           f"(a blank cell still needs its separator, {sep}) and quote cells that contain {sep}.")


def _is_ragged(cells: list[str], width: int) -> bool:
    # a blank line is a blank row (the validator reports it), not a short one
    return len(cells) != width and not (len(cells) <= 1 and not "".join(cells).strip())


def _maybe_short(table: pd.DataFrame, last: str) -> np.ndarray:
    """Positions of the rows whose last cell reads blank: only those can be short rows pandas padded."""
    return np.flatnonzero(table[last].to_numpy(dtype=object) == "")


class _RowCells:
    """The cells of a file's data rows as the csv module splits them (*records*: one list a row, read lazily, so
    a file whose rows all end in a filled cell is never read twice). Positions count from 1; *numbers* gives
    each position's row number in the file (default: the position)."""

    def __init__(self, records: Iterator[list[str]], source: Path | str, header: list[str], delimiter: str,
                 numbers: np.ndarray | None = None):
        self.records, self.next, self.numbers = records, 1, numbers
        self.source, self.header, self.delimiter = source, header, delimiter

    def _refusal(self, position: int, cells: list[str]) -> CohortFileError:
        row = position if self.numbers is None else int(self.numbers[position - 1])
        return _ragged(self.source, row, len(cells), self.header, self.delimiter)

    def check(self, positions: Iterable[int]) -> None:
        """Refuse the first row at *positions* (ascending) whose cell count is not the header's."""
        for position in positions:
            cells = next(islice(self.records, position - self.next, None), None)
            self.next = position + 1
            if cells is not None and _is_ragged(cells, len(self.header)):
                raise self._refusal(position, cells)

    def first_ragged(self) -> CohortFileError | None:
        """The refusal of the first row from here whose cell count is not the header's (why pandas stopped)."""
        try:
            for position, cells in enumerate(self.records, self.next):
                if _is_ragged(cells, len(self.header)):
                    return self._refusal(position, cells)
        except (csv.Error, UnicodeDecodeError):
            pass  # the caller names the parser's own complaint
        return None


def _records(text: Iterable[str], delimiter: str) -> Iterator[list[str]]:
    records = csv.reader(text, delimiter=delimiter)
    next(records, None)  # the header row
    return records


def _file_records(path: Path, delimiter: str) -> Generator[list[str]]:
    """The data rows of *path*, split by the csv module; the file is opened on the first one asked for."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        yield from _records(handle, delimiter)


def read_text(path: Path, delimiter: str | None = None) -> pd.DataFrame:
    """A whole delimited file, every cell as text (blank cells ``""``); *delimiter* None detects it."""
    header, delimiter = file_header(path, delimiter)
    text = _decode(path)
    cells = _RowCells(_records(io.StringIO(text, newline=""), delimiter), path, header, delimiter)
    try:
        with warnings.catch_warnings():
            # pandas only warns when a row has more cells than the header and drops the extra: refuse it
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(io.StringIO(text), sep=delimiter, header=0, names=header, **READ_OPTIONS)
    except _PARSE_ERRORS as exc:
        raise cells.first_ragged() or _malformed(path, exc, delimiter) from None
    cells.check(_maybe_short(table, header[-1]) + 1)
    # A trailing newline is not a row; blank lines inside the file are kept so rows stay numbered.
    while len(table) and (table.iloc[-1] == "").all():
        table = table.iloc[:-1]
    return table.reset_index(drop=True)


def text_chunks(path: Path, chunk_rows: int, columns: list[str] | None) -> Iterator[pd.DataFrame]:
    """The file in chunks of *chunk_rows* rows, cells as :func:`read_text` gives them; *columns*: only these
    (a row with more cells than the header is then found by the read of every column)."""
    header, delimiter = file_header(path)
    # the last column comes along (and goes again): a short row shows there as a blank cell
    wanted = None if columns is None else list(dict.fromkeys([*columns, header[-1]]))
    records = _file_records(path, delimiter)
    cells, first_row = _RowCells(records, path, header, delimiter), 1
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            reader = pd.read_csv(path, sep=delimiter, encoding="utf-8-sig", chunksize=chunk_rows, header=0, names=header,
                                 usecols=wanted, **READ_OPTIONS)
            with reader:  # closed also when the consumer stops early (generator close)
                for chunk in reader:
                    cells.check(first_row + _maybe_short(chunk, header[-1]))
                    first_row += len(chunk)
                    yield chunk if columns is None or header[-1] in columns else chunk.drop(columns=header[-1])
    except UnicodeDecodeError as exc:
        raise _malformed(path, exc, delimiter, "UTF-8 CSV") from None
    except _PARSE_ERRORS as exc:
        ragged = _RowCells(_file_records(path, delimiter), path, header, delimiter).first_ragged()
        raise ragged or _malformed(path, exc, delimiter, "UTF-8 CSV") from None
    finally:
        records.close()


def _decode_lines(lines: Iterable[bytes], rows: np.ndarray, source: str) -> list[str]:
    text = []
    for row, line in zip(rows, lines):
        try:
            text.append(bytes(line).decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise CohortFileError(f"{source}: the file is not well-formed UTF-8 CSV (row {row}: byte 0x{line[exc.start]:02x} is "
                                  "not UTF-8). Re-save it as 'CSV UTF-8'.") from None
    return text


def parse_lines(lines: Iterable[bytes], rows: np.ndarray, header: list[str], delimiter: str, source: str) -> pd.DataFrame:
    """Data lines of a file (one row each; Spark's text source gives them) as :func:`read_text` reads them,
    indexed by their row numbers *rows*; a problem names the row."""
    text = _decode_lines(lines, rows, source)
    # one line, one row: a quote left open on a line does not run on into the next one here
    cells = _RowCells((next(csv.reader([line], delimiter=delimiter), []) for line in text), source, header, delimiter, rows)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)
            table = pd.read_csv(io.StringIO("\n".join(text) + "\n"), sep=delimiter, header=None, names=header, **READ_OPTIONS)
    except _PARSE_ERRORS as exc:
        line_no = re.search(r"line (\d+)", str(exc))
        where = f"row {rows[min(int(line_no[1]), len(rows)) - 1]}" if line_no else f"rows {rows[0]}-{rows[-1]}"
        raise cells.first_ragged() or _malformed(source, f"{where}: {str(exc).strip()}", delimiter, "UTF-8 CSV") from None
    if len(table) != len(text):  # a quoted cell went on over a line break
        raise CohortFileError(f"{source}: a quoted cell between rows {rows[0]} and {rows[-1]} contains a line break; "
                              "the Spark engine reads CSV one line per row. Save the cohort as Parquet, or score it "
                              "with --engine local.")
    cells.check(_maybe_short(table, header[-1]) + 1)
    return table.set_axis(pd.Index(rows, name="row"))
