"""The file formats cohorts are read from and outputs written to: one declarative table, :data:`FORMATS`.

Each :class:`Format` entry owns everything that differs between formats: the extensions it is
recognised by, how the local reader reads it (whole, in chunks, its header alone), how an output is
written in it (whole or chunk by chunk), whether people open it in a spreadsheet, and how the Spark
engine reads it. The reader (:mod:`ketamine_response.features.cohort.reader`) and the ``score`` flows
ask :func:`format_of` and never branch on a format's name, so adding a format (Feather, or Excel for
clinics) is one entry here; ``tests/features/cohort/test_formats.py`` runs its contract over every entry.

Every read raises :class:`~ketamine_response.features.errors.CohortFileError` naming the file for a file it
cannot read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from ketamine_response.features.cohort import text
from ketamine_response.features.errors import CohortFileError


@dataclass(frozen=True)
class Header:
    """A file's column names, and what reading its rows needs besides them (CSV: ``{"sep": delimiter}``)."""

    columns: list[str]
    options: dict[str, str] = field(default_factory=dict)


class TableWriter(Protocol):
    """Writes a file chunk by chunk: the first :meth:`write` creates it, :meth:`close` finishes it."""

    def write(self, frame: pd.DataFrame) -> None: ...

    def close(self) -> None: ...


# (data lines, their row numbers, the file's header, the file's name for messages) -> the raw rows
LineParser = Callable[[Iterable[bytes], np.ndarray, Header, str], pd.DataFrame]


@dataclass(frozen=True)
class SparkRead:
    """How ``score --engine spark`` reads a format.

    *source* is Spark's data source. With *parse_lines* Spark reads the file as lines (``text``) and each
    task turns its batch of lines into rows with it, so a cell reads as the local reader reads it
    (``parse_lines(lines, row numbers, header, file name)``). Without, Spark reads the columns itself with
    their stored types, and a row's number from ``_metadata.row_index``.
    """

    source: str
    parse_lines: LineParser | None = None


@dataclass(frozen=True)
class Format:
    """One file format; the fields are what the reader, the writers and the Spark engine call."""

    name: str
    described: str  # as the refusal of an unknown extension lists it
    suffixes: tuple[str, ...]  # lower case, with the dot
    read: Callable[[Path], pd.DataFrame]  # the whole file, raw cells (text formats: every cell as text)
    header: Callable[[Path], Header]  # without reading the rows
    chunks: Callable[[Path, int, list[str] | None], Iterator[pd.DataFrame]]  # (path, rows per chunk, only these columns)
    open_writer: Callable[[Path], TableWriter]  # the same table always gives the same bytes
    spreadsheet: bool  # opened in spreadsheet programs: outputs defuse text that would run as a formula
    spark: SparkRead | None  # None: ``--engine spark`` refuses the file and names the local engine


# -- CSV ------------------------------------------------------------------------------------------


def _csv_header(path: Path) -> Header:
    columns, delimiter = text.file_header(path)
    return Header(columns, {"sep": delimiter})


def _csv_lines(lines: Iterable[bytes], rows: np.ndarray, header: Header, source: str) -> pd.DataFrame:
    return text.parse_lines(lines, rows, header.columns, header.options["sep"], source)


class _CsvWriter:
    def __init__(self, path: Path):
        self.path, self.started = path, False

    def write(self, frame: pd.DataFrame) -> None:
        frame.to_csv(self.path, mode="a" if self.started else "w", header=not self.started, index=False, lineterminator="\n")
        self.started = True

    def close(self) -> None:
        """Nothing to finish: every write closed the file."""


# -- Parquet --------------------------------------------------------------------------------------


def _unreadable_parquet(path: Path, exc: Exception, hint: str = "") -> CohortFileError:
    return CohortFileError(f"{path}: the file cannot be read as Parquet ({type(exc).__name__}: {exc}).{hint}")


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types; all mean "not readable Parquet"
        raise _unreadable_parquet(path, exc, " Check that it is a Parquet file, or save the data as CSV.") from None
    table.columns = [str(c).strip() for c in table.columns]
    text.check_width(path, list(table.columns))
    return table.reset_index(drop=True)


def _parquet_header(path: Path) -> Header:
    import pyarrow.parquet as pq

    try:
        return Header(list(pq.read_schema(path).names))
    except Exception as exc:  # pyarrow raises many types; all mean "not readable Parquet"
        raise _unreadable_parquet(path, exc) from None


def _parquet_chunks(path: Path, chunk_rows: int, columns: list[str] | None) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        source = pq.ParquetFile(path, memory_map=True, pre_buffer=False)
        for batch in source.iter_batches(batch_size=chunk_rows, columns=columns, use_threads=False):
            yield batch.to_pandas()
    except Exception as exc:  # pyarrow raises many types; all mean "not readable Parquet"
        raise _unreadable_parquet(path, exc) from None


class _ParquetWriter:
    def __init__(self, path: Path):
        self.path = path
        self.writer: Any = None  # a pyarrow ParquetWriter once the first chunk gives the schema

    def write(self, frame: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(frame, preserve_index=False)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, table.schema)
        # later chunks take the first one's types (a column all-missing in one chunk reads as another type)
        self.writer.write_table(table.cast(self.writer.schema))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


# -- the table ------------------------------------------------------------------------------------

FORMATS: tuple[Format, ...] = (
    Format("csv", "CSV (.csv, UTF-8)", (".csv",), text.read_text, _csv_header, text.text_chunks, _CsvWriter,
           spreadsheet=True, spark=SparkRead("text", _csv_lines)),
    Format("parquet", "Parquet (.parquet)", (".parquet", ".pq"), _read_parquet, _parquet_header, _parquet_chunks,
           _ParquetWriter, spreadsheet=False, spark=SparkRead("parquet")),
)


def format_of(path: Path) -> Format:
    """The entry of :data:`FORMATS` that recognises *path*'s extension, else a CohortFileError naming it
    (a folder is named as a folder, whatever its extension)."""
    if path.is_dir():
        raise CohortFileError(
            f"{path}: the path is a folder, not a cohort file. Pass the CSV or Parquet file itself; a BIDS "
            "dataset folder is read with 'ketamine-response ingest bids FOLDER --out cohort.csv'.")
    suffix = path.suffix.lower()
    for entry in FORMATS:
        if suffix in entry.suffixes:
            return entry
    listed = [f.described for f in FORMATS]
    raise CohortFileError(
        f"{path}: unsupported file type '{suffix or '(no extension)'}'. "
        f"Cohort files must be {', '.join(listed[:-1])} or {listed[-1]}; "
        "export the sheet as 'CSV UTF-8' and pass that file."
    )


def refuse_special(path: Path) -> None:
    """A CohortFileError when a device, pipe or socket is at *path* (``/dev/full``): an output written aside and
    renamed onto it would replace the node, and written in place would go nowhere. A folder there is refused
    when it is written."""
    if path.exists() and not path.is_file() and not path.is_dir():
        raise CohortFileError(f"{path}: the path is not a regular file (it is a device, pipe or socket); outputs are "
                              "written as files. Give a file path in a writable folder.")


def output_format_of(path: Path) -> Format:
    """The entry of :data:`FORMATS` an output at *path* is written in, else a CohortFileError naming *path*:
    a device, pipe or socket there (``/dev/full``) is not a file to write, and the extension picks the format."""
    refuse_special(path)
    suffix = path.suffix.lower()
    for entry in FORMATS:
        if suffix in entry.suffixes:
            return entry
    suffixes = [s for f in FORMATS for s in f.suffixes]
    raise CohortFileError(f"{path}: output files must end in {', '.join(suffixes[:-1])} or {suffixes[-1]} "
                          f"(this one has {repr(suffix) if suffix else 'no extension'}); the extension picks the "
                          "format written. Add one to the path.")

