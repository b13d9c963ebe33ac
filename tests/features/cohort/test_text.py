"""The delimited-text reader counts every row's cells in each of its paths (a whole file, chunks, Spark's
batches of lines) and reads the header line in full, however long."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ketamine_response.features.cohort import text
from ketamine_response.features.cohort.formats import output_format_of
from ketamine_response.features.errors import CohortFileError

HEADER = "patient_id,site,treatment,madrs_baseline,age\n"
SHORT = HEADER + "P1,s1,ketamine_iv,30,40\nP2,s1,placebo,31\n"  # the reproduction


def whole(path: Path) -> pd.DataFrame:
    return text.read_text(path)


def chunked(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    return pd.concat(list(text.text_chunks(path, 1, columns)))


def key_columns(path: Path) -> pd.DataFrame:
    return chunked(path, ["patient_id"])


def spark_lines(path: Path) -> pd.DataFrame:
    lines = path.read_bytes().splitlines()[1:]
    return text.parse_lines(lines, np.arange(1, len(lines) + 1), *text.file_header(path), str(path))


READERS = [whole, chunked, key_columns, spark_lines]


@pytest.mark.parametrize("read", READERS)
@pytest.mark.parametrize("content, row, cells, missing", [
    (SHORT, 2, 4, "'age'"),
    (HEADER + "P1,s1\n" + "P2,s1,placebo,31,40\n", 1, 2, "'treatment'"),
    (HEADER + '"P1","s1","ketamine_iv","30",""\n"P2","s1"\n', 2, 2, "'treatment'"),  # quoted cells
    (HEADER.replace("\n", "\r\n") + "P1,s1,ketamine_iv,30,\r\nP2,s1,placebo\r\n", 2, 3, "'madrs_baseline'"),
    (HEADER + "P1,s1,ketamine_iv,30,40\n\nP3,s1,placebo,31,1\nP4\n", 4, 1, "'site'"),  # a blank row keeps its number
])
def test_a_short_row_is_refused_naming_row_cells_and_column(write_csv, read, content, row, cells, missing):
    path = write_csv(content)
    with pytest.raises(CohortFileError) as err:
        read(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and f"row {row} " in message
    assert f"has {cells} cell" in message and "the header has 5" in message and missing in message


@pytest.mark.parametrize("read", [whole, chunked, spark_lines])
def test_a_long_row_is_refused_naming_the_row(write_csv, read):
    path = write_csv(HEADER + "P1,s1,ketamine_iv,30,40\nP2,s1,placebo,31,40,extra\n")
    with pytest.raises(CohortFileError, match=r"row 2 .*has 6 cells where the header has 5\.") as err:
        read(path)
    assert str(path) in str(err.value)


def test_a_short_row_in_a_tsv_names_tsv(write_csv):
    path = write_csv(HEADER.replace(",", "\t") + "P1\ts1\tketamine_iv\t30\t40\nP2\ts1\n", "participants.tsv")
    with pytest.raises(CohortFileError, match=r"not well-formed TSV: row 2 .*has 2 cells.*'treatment'.*a tab"):
        text.read_text(path, "\t")


@pytest.mark.parametrize("read", READERS)
def test_blank_cells_and_blank_lines_are_not_short(write_csv, read):
    path = write_csv(HEADER + 'P1,s1,ketamine_iv,30,\nP2,s1,placebo,31,""\n\nP3,,,,\n\n')
    table = read(path)
    assert table["patient_id"].tolist()[:4] == ["P1", "P2", "", "P3"]
    if read is whole:
        assert len(table) == 4 and (table.loc[2] == "").all()  # the trailing blank line is no row


def test_a_file_whose_last_cells_are_filled_is_not_read_twice(write_csv, monkeypatch):
    counted: list[list[str]] = []

    def count(cells: list[str], width: int) -> bool:
        counted.append(cells)
        return False

    monkeypatch.setattr(text, "_is_ragged", count)
    text.read_text(write_csv(HEADER + "P1,s1,ketamine_iv,30,40\nP2,s1,placebo,31,41\n"))
    assert counted == []


def test_a_header_past_64_kib_reads_in_full(write_csv):
    names = ["patient_id"] + [f"biomarker_measurement_{i:04d}" for i in range(3043)]
    path = write_csv(",".join(names) + "\n" + ",".join(["P1"] + ["1"] * 3043) + "\n")
    assert path.stat().st_size > 1 << 16
    assert text.file_header(path)[0] == names
    assert list(text.read_text(path).columns) == names and len(chunked(path)) == 1


def test_a_character_across_byte_65535_of_the_header_is_utf8(write_csv):
    first = "patient_id," + "a" * (65535 - 12) + "é,b"
    assert first.encode()[65534:65536] == "é".encode()
    path = write_csv(first + "\nP1,1,2\n")
    assert text.file_header(path)[0][1].endswith("é") and len(text.read_text(path)) == 1


@pytest.mark.parametrize("header", [
    ",".join(f"c{i}" for i in range(20_001)),
    ",".join(f"c{i}" if i % 3 else "" for i in range(30_001)),  # blank names too: the limit's message wins
])
def test_too_many_columns_gives_the_column_limit_message(write_csv, header):
    path = write_csv(header + "\n1\n")
    for read in (text.file_header, text.read_text):
        with pytest.raises(CohortFileError, match=r"columns; at most 20,000 are read"):
            read(path)


def test_a_header_longer_than_the_cap_is_refused(write_csv, monkeypatch):
    monkeypatch.setattr(text, "MAX_HEADER_BYTES", 1000)
    path = write_csv("patient_id," + "x" * 2000 + "\nP1,1\n")
    with pytest.raises(CohortFileError, match=r"first line \(the header row\) is longer than"):
        text.file_header(path)


@pytest.mark.parametrize("content, message", [
    ('patient_id,"si\nte",age\nP1,s1,4\n', "quoted column name in the header goes on past the first line"),
    ("\n" + HEADER + "P1,s1,ketamine_iv,30,40\n", "the first line is blank"),
])
def test_header_problems_are_named_not_crashes(write_csv, content, message):
    path = write_csv(content)
    for read in (text.file_header, text.read_text, chunked):
        with pytest.raises(CohortFileError, match=message):
            read(path)


@pytest.mark.parametrize("path, message", [
    ("/dev/full", "not a regular file"),
    ("scores", r"output files must end in \.csv, \.parquet or \.pq \(this one has no extension\)"),
    ("scores.txt", r"output files must end in .*'\.txt'"),
])
def test_an_output_path_that_is_no_file_of_a_format_is_named(tmp_path, path, message):
    if path == "/dev/full" and not Path(path).exists():
        pytest.skip("no /dev/full here")
    target = Path(path) if path.startswith("/") else tmp_path / path
    with pytest.raises(CohortFileError, match=message) as err:
        output_format_of(target)
    assert str(err.value).startswith(f"{target}: ")
