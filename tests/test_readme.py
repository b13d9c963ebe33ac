"""The README documents the cohort format the code enforces."""

from pathlib import Path

from ketamine_response.features.cohort.schema import COLUMNS

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_canonical_column_is_documented():
    missing = [c.name for c in COLUMNS if f"`{c.name}`" not in README]
    assert missing == []


def test_quick_start_has_the_two_commands():
    assert "make demo" in README and "make test" in README
