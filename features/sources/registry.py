"""The data-source registry: one declarative table read by the ``ingest`` subcommands, the ingest flow and
the tests.

A source turns a dataset in its own layout into a cohort file. Adding one is a module in this package
(the two functions its entry's ``inputs`` and ``ingest`` name) and one :class:`Source` entry in
:data:`ENTRIES`; the command line, the flow and the contract suite (``tests/features/sources/test_registry.py``)
read the entry.

This module imports neither numpy nor pandas: the parser lists the sources for ``--help``, so each
source's module is imported only when its functions are called.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

SHIPPED = Path(__file__).resolve().parent  # the known datasets' mappings ship here (package data *.yaml)
# the files a source reads at a path (so an --out onto one of them is refused before anything is read)
Inputs = Callable[[Path], list[Path]]
# (dataset path, --mapping file or None, known dataset -> shipped mapping, options) -> one row per course
Ingest = Callable[[Path, "Path | None", Mapping[str, Path], Mapping[str, bool]], "pd.DataFrame"]


@dataclass(frozen=True)
class Source:
    """A data source: the ``ingest NAME`` subcommand.

    Attributes
    ----------
    name : the subcommand
    help, description : its line in ``ingest --help`` and its own ``--help`` text
    path_help : what the dataset path (``DIR``) is
    mapping_help : what ``--mapping`` holds for this source, and where it is found without one
    known_datasets : public datasets ingested without a mapping: identifier -> mapping file in this package
    example : a dataset of this source shipped in the repository (relative to its root) for the contract suite
    inputs, ingest : see :data:`Inputs` and :data:`Ingest`
    options : on/off flags of the subcommand, by argparse dest (``--include-controls``: include_controls) -> help
    """

    name: str
    help: str
    description: str
    path_help: str
    mapping_help: str
    known_datasets: Mapping[str, str]
    example: str
    inputs: Inputs
    ingest: Ingest
    options: Mapping[str, str]

    @property
    def mappings(self) -> dict[str, Path]:
        """Known dataset -> its shipped mapping file."""
        return {key: SHIPPED / name for key, name in self.known_datasets.items()}


def _lazy(module: str, name: str) -> Callable[..., Any]:
    """*module*.*name*, imported on the first call (see the module docstring)."""
    def call(*args: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args)

    call.__qualname__ = f"{module}.{name}"
    return call


_BIDS = "ketamine_response.features.sources.bids"

ENTRIES = (  # every source, in the order `ingest --help` lists them
    Source("bids", "a BIDS dataset's participants.tsv and phenotype/*.tsv",
           "One row per treatment course from a BIDS dataset's tables.",
           "BIDS dataset folder",
           "session/column mapping YAML (default: DIR/bids_mapping.yaml, else the shipped mapping of a known "
           "dataset such as OpenNeuro ds005917)",
           {"10.18112/openneuro.ds005917": "ds005917.yaml"},  # DOI stem (dataset_description.json)
           "data/public/openneuro-ds005917",
           _lazy(_BIDS, "inputs"), _lazy(_BIDS, "ingest_dataset"),
           {"include_controls": "keep healthy controls (not patients)"}),
)
SOURCES: dict[str, Source] = {s.name: s for s in ENTRIES}
