"""The contract every entry of the format registry keeps (parametrised over FORMATS, so a new format is
checked by adding it): what is written reads back, whole, in chunks and by its header; a file that is not
of the format is a CohortFileError naming it; its extensions, in any case, find it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ketamine_response.features.cohort.formats import FORMATS, Format, format_of
from ketamine_response.features.cohort.reader import (
    OutputSink,
    cohort_columns,
    iter_cohort_chunks,
    read_cohort_file,
    write_table,
)
from ketamine_response.features.errors import CohortFileError

# text cells only: every format keeps them as they are (text formats read every cell as text)
TABLE = pd.DataFrame({
    "patient_id": ["P1", "P1", "P2", "P3", "P4"],
    "treatment": ["ketamine_iv", "placebo", "esketamine_in", "placebo", "ketamine_iv"],
    "site": ["A", "A", "B", "", "C d"],
    "madrs_baseline": ["32", "30", "40", "28.5", ""],
})
GARBAGE = bytes(range(256)) * 4  # NUL bytes, invalid UTF-8, no magic number: no format's file


@pytest.fixture(params=FORMATS, ids=lambda f: f.name)
def entry(request) -> Format:
    return request.param


@pytest.fixture
def written(entry: Format, tmp_path: Path) -> Path:
    path = tmp_path / f"cohort{entry.suffixes[0]}"
    write_table(TABLE, path)
    return path


def _same(read: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(read.reset_index(drop=True), expected.reset_index(drop=True), check_dtype=False)


def test_round_trip(written):
    _same(read_cohort_file(written), TABLE)


def test_writing_is_byte_identical(entry, written, tmp_path):
    again = tmp_path / f"again{entry.suffixes[0]}"
    write_table(TABLE, again)
    assert again.read_bytes() == written.read_bytes()


def test_header_is_read_without_rows(entry, written):
    assert entry.header(written).columns == list(TABLE.columns)
    assert cohort_columns(written) == list(TABLE.columns)


@pytest.mark.parametrize("rows", [1, 2, 100])
def test_chunked_read_equals_whole_read(written, rows):
    chunks = list(iter_cohort_chunks(written, rows))
    assert [len(c) for c in chunks[:-1]] == [rows] * (len(chunks) - 1)
    _same(pd.concat(chunks), read_cohort_file(written))
    _same(pd.concat(iter_cohort_chunks(written, rows, ["treatment"])), TABLE[["treatment"]])


def test_chunks_written_by_a_sink_read_back_whole(entry, tmp_path):
    path = tmp_path / f"out{entry.suffixes[0]}"
    sink = OutputSink(path)
    sink.write(TABLE.iloc[:2])
    sink.write(TABLE.iloc[2:])
    sink.close()
    _same(read_cohort_file(path), TABLE)
    assert list(tmp_path.glob(".*")) == []  # the partial file was renamed into place


def test_a_discarded_sink_leaves_nothing(entry, tmp_path):
    sink = OutputSink(tmp_path / f"out{entry.suffixes[0]}")
    sink.write(TABLE)
    sink.discard()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("read", [read_cohort_file, cohort_columns, lambda p: next(iter_cohort_chunks(p, 2))],
                         ids=["whole", "header", "chunks"])
def test_a_malformed_file_is_a_file_error_naming_it(entry, tmp_path, read):
    path = tmp_path / f"broken{entry.suffixes[0]}"
    path.write_bytes(GARBAGE)
    with pytest.raises(CohortFileError) as err:
        read(path)
    assert str(path) in str(err.value)


def test_a_truncated_file_reads_or_is_a_file_error(written):
    data = written.read_bytes()
    for cut in (len(data) // 3, len(data) // 2, len(data) - 3):
        written.write_bytes(data[:cut])
        try:
            read_cohort_file(written)
        except CohortFileError as exc:
            assert str(written) in str(exc)


def test_missing_and_header_only_files(entry, tmp_path):
    with pytest.raises(CohortFileError, match="does not exist"):
        read_cohort_file(tmp_path / f"nope{entry.suffixes[0]}")
    empty = tmp_path / f"empty{entry.suffixes[0]}"
    write_table(TABLE.iloc[:0], empty)
    for read in (read_cohort_file, lambda p: list(iter_cohort_chunks(p, 2))):
        with pytest.raises(CohortFileError, match="has a header but no data rows"):
            read(empty)


def test_suffixes_find_the_entry_in_any_case(entry):
    assert entry.suffixes and all(s.startswith(".") and s == s.lower() for s in entry.suffixes)
    for suffix in entry.suffixes:
        assert format_of(Path(f"cohort{suffix}")) is entry
        assert format_of(Path(f"COHORT{suffix.upper()}")) is entry


def test_an_unknown_extension_lists_every_format():
    with pytest.raises(CohortFileError, match=r"cohort\.xyz: unsupported file type '\.xyz'") as err:
        format_of(Path("cohort.xyz"))
    assert all(f.described in str(err.value) for f in FORMATS)


def test_suffixes_are_claimed_once():
    suffixes = [s for f in FORMATS for s in f.suffixes]
    assert len(suffixes) == len(set(suffixes)) and len({f.name for f in FORMATS}) == len(FORMATS)


def test_spark_lines_read_as_the_local_reader_reads(entry, written):
    """A format Spark reads as lines parses a batch of them as the local reader does (Spark itself: test_score_spark)."""
    if entry.spark is None or entry.spark.parse_lines is None:
        pytest.skip(f"{entry.name}: Spark does not read it as lines")
    lines = written.read_bytes().splitlines()[1:]
    rows = np.arange(1, len(lines) + 1)
    parsed = entry.spark.parse_lines(lines, rows, entry.header(written), str(written))
    assert parsed.index.tolist() == rows.tolist()
    _same(parsed, read_cohort_file(written))
