"""The source registry's contract, checked for every entry: adding a source adds its rows here for free.

Each source ingests the example it ships in the repository as a user runs it (no mapping: the example is
a known dataset or carries its own), with its options off and on; the cohort file written validates with
the cohort validator, and the same input gives the same bytes. Its ``ingest`` subcommand exists with the
entry's texts and options.
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

import pytest

from ketamine_response.features.cohort.validation import load_cohort
from ketamine_response.features.sources.registry import ENTRIES, SHIPPED, SOURCES, Source
from ketamine_response.pipelines.cli import build_parser
from ketamine_response.pipelines.flows.ingest import run_ingest

REPO = Path(__file__).parents[3]
# names the ingest subcommand's parser uses already; an option of the same name would overwrite one
TAKEN = {"command", "source", "dir", "out", "mapping", "func", "verbose", "help"}


def test_names_are_unique_and_entries_complete():
    assert len({s.name for s in ENTRIES}) == len(ENTRIES) == len(SOURCES)
    for source in ENTRIES:
        assert re.fullmatch(r"[a-z][a-z0-9-]*", source.name), source.name
        texts = (source.help, source.description, source.path_help, source.mapping_help)
        assert all(isinstance(t, str) and t.strip() for t in texts), source.name
        for dest, text in source.options.items():
            assert dest.isidentifier() and dest not in TAKEN and text.strip(), (source.name, dest)


@pytest.fixture(params=ENTRIES, ids=lambda s: s.name)
def source(request) -> Source:
    return request.param


@pytest.fixture
def example(source, tmp_path) -> Path:
    """A pristine copy of the source's shipped example (so nothing can write beside the repository's)."""
    shipped = REPO / source.example
    assert shipped.exists(), f"{source.name}: its example {source.example} is not in the repository"
    copy = tmp_path / "example"
    (shutil.copytree if shipped.is_dir() else shutil.copy)(shipped, copy)
    return copy


def test_example_ingests_into_a_valid_cohort(source, example, tmp_path):
    for flags in ({}, dict.fromkeys(source.options, True)):
        out = tmp_path / "cohort.csv"
        cohort = run_ingest(source.name, example, out, options=flags)
        validated = load_cohort(out)
        assert len(cohort) > 0 and len(validated.table) == len(cohort), (source.name, flags)
        assert validated.problems.empty, (source.name, flags, validated.problems.head())
        again = tmp_path / "again.csv"
        run_ingest(source.name, example, again, options=flags)
        assert again.read_bytes() == out.read_bytes(), (source.name, flags)


def test_inputs_are_the_example_files(source, example):
    found = source.inputs(example)
    assert found and all(p.is_file() and example in p.parents for p in found), source.name


def test_known_datasets_ship_as_package_data(source):
    # pyproject's package-data ships *.yaml from the sources package, so a wheel install finds them
    for key, path in source.mappings.items():
        assert path.parent == SHIPPED and path.suffix == ".yaml" and path.is_file(), (source.name, key)


def test_every_source_is_an_ingest_subcommand(source):
    parser = build_parser()
    flags = [f"--{dest.replace('_', '-')}" for dest in source.options]
    args = parser.parse_args(["ingest", source.name, "data", "--out", "c.csv", *flags])
    assert (args.source, args.dir, args.out, args.mapping) == (source.name, "data", "c.csv", None)
    assert all(getattr(args, dest) is True for dest in source.options)
    sub = _subparser(_subparser(parser, "ingest"), source.name)  # argparse has no public way there
    assert sub.description == source.description
    helps = {a.dest: a.help for a in sub._actions}
    assert helps.items() >= {"dir": source.path_help, "mapping": source.mapping_help, **source.options}.items()


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[name]
