import os
import random
from pathlib import Path

import pandas as pd
import pytest

from ketamine_response.features.cohort.reader import read_cohort_file
from ketamine_response.features.errors import CohortFileError

HEADER = "patient_id,site,treatment,madrs_baseline\n"


def test_reads_csv_as_text(write_csv):
    table = read_cohort_file(write_csv(HEADER + "P1,A,placebo,30\nP2,A,placebo,\n"))
    assert table.shape == (2, 4)
    assert table.loc[1, "madrs_baseline"] == ""
    assert table.loc[0, "madrs_baseline"] == "30"


def test_utf8_bom_is_dropped(write_csv):
    table = read_cohort_file(write_csv(b"\xef\xbb\xbf" + HEADER.encode() + b"P1,A,placebo,30\n"))
    assert list(table.columns)[0] == "patient_id"


def test_semicolon_delimited(write_csv):
    table = read_cohort_file(write_csv(HEADER.replace(",", ";") + "P1;A;placebo;30,5\n"))
    assert table.loc[0, "madrs_baseline"] == "30,5"


def test_blank_line_inside_is_kept_trailing_is_not(write_csv):
    table = read_cohort_file(write_csv(HEADER + "P1,A,placebo,30\n\nP2,A,placebo,31\n\n\n"))
    assert len(table) == 3
    assert (table.loc[1] == "").all()


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"   \n\n", "the file is empty"),
    (random.Random(0).randbytes(64) + b"\x00", "binary, not CSV"),  # seeded: the same test id in every xdist worker
    (b"caf\xe9,site\n1,2\n", "not UTF-8 text"),
    (HEADER.encode(), "header but no data rows"),
    (b"patient_id,,treatment\nP1,A,x\n", "header column 2 has no name"),
    (b"site,site\nA,B\n", "column 'site' appears more than once"),
    (HEADER.encode() + b"P1,A,placebo,30,extra,more\n", "not well-formed CSV"),
])
def test_garbage_gives_file_error(write_csv, content, message):
    path = write_csv(content)
    with pytest.raises(CohortFileError, match=message) as err:
        read_cohort_file(path)
    assert str(path) in str(err.value)


def test_random_bytes_never_crash(write_csv):
    for seed in range(20):
        data = bytes((seed * 37 + i * 101) % 256 for i in range(200))
        try:
            read_cohort_file(write_csv(data))
        except CohortFileError:
            pass


def test_missing_file_and_wrong_extension(tmp_path):
    with pytest.raises(CohortFileError, match="does not exist"):
        read_cohort_file(tmp_path / "nope.csv")
    with pytest.raises(CohortFileError, match=r"unsupported file type '\.xlsx'.*CSV"):
        read_cohort_file(tmp_path / "cohort.xlsx")
    for name in ("dir.csv", "no_extension"):  # a folder is named as one, whatever its extension
        (tmp_path / name).mkdir()
        with pytest.raises(CohortFileError, match=r"is a folder, not a cohort file.*ingest bids"):
            read_cohort_file(tmp_path / name)


def test_parquet_round_trip_and_garbage(tmp_path):
    path = tmp_path / "c.parquet"
    pd.DataFrame({"patient_id": ["P1"], "site": ["A"], "treatment": ["placebo"],
                  "madrs_baseline": [30.0]}).to_parquet(path)
    assert read_cohort_file(path).loc[0, "madrs_baseline"] == 30.0
    bad = tmp_path / "bad.parquet"
    bad.write_bytes(b"not parquet at all")
    with pytest.raises(CohortFileError, match="cannot be read as Parquet"):
        read_cohort_file(bad)


def test_utf16_is_named_not_called_binary(tmp_path):
    from ketamine_response.features.cohort.reader import read_cohort_file
    from ketamine_response.features.errors import CohortFileError

    path = tmp_path / "u16.csv"
    path.write_bytes("patient_id,treatment\nA,placebo\n".encode("utf-16"))
    with pytest.raises(CohortFileError, match="UTF-16 text, not UTF-8"):
        read_cohort_file(path)


def test_spreadsheet_safe_defuses_formulas_and_keeps_numbers():
    from ketamine_response.features.cohort.reader import spreadsheet_safe

    frame = pd.DataFrame({"patient_id": ["=HYPERLINK(\"x\")", "+cmd|' /C calc'!A0", "@SUM(A1)", "P1", None],
                          "value": ["-4", "1e3", "-x", "ok", "\tTAB"], "probability": [0.1, -0.2, 0.3, 0.4, 0.5]})
    safe = spreadsheet_safe(frame)
    assert safe["patient_id"].tolist()[:4] == ["'=HYPERLINK(\"x\")", "'+cmd|' /C calc'!A0", "'@SUM(A1)", "P1"]
    assert pd.isna(safe["patient_id"].iloc[4])
    assert safe["value"].tolist() == ["-4", "1e3", "'-x", "ok", "'\tTAB"]
    assert safe["probability"].tolist() == [0.1, -0.2, 0.3, 0.4, 0.5] and safe["probability"].dtype.kind == "f"


def test_no_output_replaces_a_device_pipe_or_socket(tmp_path):
    """Outputs are written aside and renamed into place, and a rename onto a device node replaces it (as root,
    `validate --problems /dev/full` once did): every writer refuses such a path and leaves it as it was."""
    import stat

    from ketamine_response.features.cohort.reader import OutputSink, write_aside, write_table

    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    writers = {
        "write_aside": lambda: write_aside(fifo, lambda partial: partial.write_text("x")),
        "write_table": lambda: write_table(pd.DataFrame({"a": [1]}), fifo),
        "OutputSink": lambda: OutputSink(fifo),
    }
    for name, write in writers.items():
        with pytest.raises(CohortFileError, match="not a regular file") as refused:
            write()
        assert str(fifo) in str(refused.value), name
        assert stat.S_ISFIFO(os.stat(fifo).st_mode), f"{name} replaced the pipe"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe.csv"]  # no partial file either


def test_a_stop_while_writing_aside_leaves_nothing(tmp_path):
    """A SIGTERM (the CLI raises Terminated) or Ctrl-C landing in a writer: the partial file is removed and the
    stop goes on, not turned into a file error."""
    from ketamine_response.features.cohort.reader import write_aside
    from ketamine_response.features.errors import Terminated

    def stopped(partial: Path) -> None:
        partial.write_text("half a table")
        raise Terminated("stopped by signal SIGTERM")

    with pytest.raises(Terminated):
        write_aside(tmp_path / "out.csv", stopped)
    assert list(tmp_path.iterdir()) == []


def test_files_written_together_are_all_replaced_or_none(tmp_path):
    """A cohort and its oracle: a stop while the second is written leaves both old files as they were, not a new
    cohort beside an old oracle, and no partial file."""
    from ketamine_response.features.cohort.reader import write_all_aside
    from ketamine_response.features.errors import Terminated

    cohort, oracle = tmp_path / "cohort.csv", tmp_path / "oracle.csv"
    cohort.write_text("old cohort")
    oracle.write_text("old oracle")

    def stopped(partial: Path) -> None:
        partial.write_text("half an oracle")
        raise Terminated("stopped by signal SIGTERM")

    with pytest.raises(Terminated):
        write_all_aside({cohort: lambda partial: partial.write_text("new cohort"), oracle: stopped})
    assert (cohort.read_text(), oracle.read_text()) == ("old cohort", "old oracle")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cohort.csv", "oracle.csv"]
