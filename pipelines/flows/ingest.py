"""The ``ingest`` flow: a dataset of a registered source → one cohort file (one row per treatment course)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from ketamine_response.features.cohort.formats import output_format_of
from ketamine_response.features.cohort.reader import refuse_overwriting, write_table
from ketamine_response.features.sources.dataset_files import refuse_loop
from ketamine_response.features.sources.registry import SOURCES


def run_ingest(source: str, root: str | Path, out: str | Path, mapping_path: str | Path | None = None,
               options: Mapping[str, object] | None = None) -> pd.DataFrame:
    """Ingest the dataset at *root* with the registered *source*, write the cohort to *out* and return it.

    *options* holds the source's on/off flags by name (``SOURCES[source].options``): absent ones are off,
    other keys are ignored, so the parsed command line can be passed as it is.
    """
    entry, root = SOURCES[source], Path(root)
    mapping = None if mapping_path is None else Path(mapping_path)
    output_format_of(Path(out))  # a wrong extension stops before any reading
    # a symlink loop breaks the path comparison below: name it first, as the problem it is
    refuse_loop(Path(out), "output file")
    if mapping is not None:
        refuse_loop(mapping, "mapping file")
    refuse_overwriting({"--out": out}, [mapping, *entry.inputs(root)])
    flags = {name: bool((options or {}).get(name)) for name in entry.options}
    cohort = entry.ingest(root, mapping, entry.mappings, flags)
    write_table(cohort, out)
    return cohort
