"""Opening a dataset's files: every way one cannot be opened or parsed is a CohortFileError naming it."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from ketamine_response.features.errors import CohortFileError
from ketamine_response.features.sources.dataset_files import check, files_in, os_problem, read_json_object, refuse_loop


def _refused(path: Path, match: str, call=lambda p: read_json_object(p, "dataset description")) -> str:
    with pytest.raises(CohortFileError, match=match) as caught:
        call(path)
    assert str(caught.value).startswith(f"{path}: the ")  # the file first, then its role
    return str(caught.value)


def test_an_object_is_read_with_or_without_a_byte_order_mark(tmp_path):
    path = tmp_path / "d.json"
    path.write_bytes(b'\xef\xbb\xbf{"Name": "x", "DatasetDOI": "doi:10.1/a"}')
    assert read_json_object(path, "dataset description") == {"Name": "x", "DatasetDOI": "doi:10.1/a"}


@pytest.mark.parametrize(("text", "kind"), [("[1, 2]", "a list"), ("3.5", "a number"), ('"x"', "a string"),
                                            ("null", "null"), ("true", "true or false")])
def test_json_that_is_not_an_object_says_what_it_is(tmp_path, text, kind):
    path = tmp_path / "d.json"
    path.write_text(text)
    _refused(path, f"must be a JSON object .* not {kind}\\.")


def test_invalid_json_gives_line_and_column(tmp_path):
    path = tmp_path / "d.json"
    path.write_text('{\n  "Name": "x",\n  "Authors": ["a" "b"]\n}\n')
    _refused(path, r"not valid JSON \(Expecting ',' delimiter at line 3, column 19\)")


def test_json_nested_past_the_recursion_limit_is_too_deep(tmp_path):
    path = tmp_path / "d.json"
    path.write_text("{\"a\": " * 100_000 + "1" + "}" * 100_000)
    _refused(path, "nests arrays or objects too deeply")


@pytest.mark.parametrize(("data", "match"), [(b'{"Name": "caf\xe9"}', r"not UTF-8 text \(byte offset 13\)"),
                                             (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON"),
                                             (b"", r"not valid JSON \(Expecting value at line 1, column 1\)")])
def test_undecodable_or_unconvertible_json(tmp_path, data, match):
    path = tmp_path / "d.json"
    path.write_bytes(data)
    _refused(path, match)


def test_symlink_loop_folder_missing_and_pipe(tmp_path):
    (tmp_path / "loop.json").symlink_to("loop.json")
    _refused(tmp_path / "loop.json", "a symlink loop")
    (tmp_path / "folder.json").mkdir()
    _refused(tmp_path / "folder.json", "is a folder, where a file is expected")
    _refused(tmp_path / "absent.json", "does not exist")
    (tmp_path / "dangling.json").symlink_to("absent.json")
    _refused(tmp_path / "dangling.json", "does not exist")
    os.mkfifo(tmp_path / "pipe.json")
    _refused(tmp_path / "pipe.json", "not a regular file")  # read, it would block for ever


def test_a_file_where_a_folder_is_expected(tmp_path):
    (tmp_path / "ds").write_text("x")
    _refused(tmp_path / "ds", "is a file, not a folder", lambda p: check(p, "BIDS dataset folder", folder=True))
    _refused(tmp_path / "ds" / "participants.tsv", "a part of its path is a file", lambda p: check(p, "table"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_and_folder(tmp_path):
    (tmp_path / "d.json").write_text("{}")
    (tmp_path / "d.json").chmod(0)
    _refused(tmp_path / "d.json", "permission denied")
    (tmp_path / "phenotype").mkdir()
    (tmp_path / "phenotype").chmod(0)
    try:
        _refused(tmp_path / "phenotype", "permission denied", lambda p: files_in(p, ".tsv", "phenotype table"))
    finally:
        (tmp_path / "phenotype").chmod(0o700)


def test_files_in_lists_checks_and_refuses_a_looping_entry(tmp_path):
    assert files_in(tmp_path / "absent", ".tsv", "table") == []
    (tmp_path / "b.tsv").write_text("x")
    (tmp_path / "a.tsv").write_text("x")
    (tmp_path / "notes.txt").write_text("x")
    assert files_in(tmp_path, ".tsv", "table") == [tmp_path / "a.tsv", tmp_path / "b.tsv"]
    (tmp_path / "c.tsv").symlink_to("c.tsv")
    _refused(tmp_path / "c.tsv", "the table is a symbolic link .* symlink loop", lambda p: files_in(p.parent, ".tsv", "table"))


def test_refuse_loop_names_a_loop_and_lets_a_missing_path_pass(tmp_path):
    refuse_loop(tmp_path / "absent" / "out.csv", "output file")  # creating it is the writer's business
    (tmp_path / "out.csv").symlink_to("out.csv")
    _refused(tmp_path / "out.csv", "the output file .* symlink loop", lambda p: refuse_loop(p, "output file"))


def test_permission_denied_says_how_to_fix_it(tmp_path):
    # the message for EACCES, tested without chmod as well: root (this suite's usual user in CI) bypasses modes
    message = str(os_problem(tmp_path / "d.json", "dataset description", PermissionError(errno.EACCES, "denied")))
    assert message == (f"{tmp_path / 'd.json'}: the dataset description cannot be read: permission denied. Give your user "
                       "read access (chmod u+r, and u+x on folders) or copy the dataset somewhere readable.")
