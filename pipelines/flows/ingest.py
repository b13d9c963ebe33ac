"""The ``ingest`` flow: a public dataset's tables → one cohort file (one row per treatment course)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ketamine_response.features.cohort.reader import file_kind, refuse_overwriting, write_table
from ketamine_response.features.errors import CohortFileError
from ketamine_response.features.sources.bids import BidsMapping, ingest_bids, load_bids_mapping, shipped_mapping, template_mapping

LOCAL_MAPPING = "bids_mapping.yaml"  # a mapping kept beside a dataset's own files


def bids_mapping_for(root: Path, mapping_path: str | Path | None) -> BidsMapping:
    """The mapping given, else one beside the dataset, else the shipped one of a known dataset.

    Raises
    ------
    CohortFileError
        For an unknown dataset with no mapping: the message holds a template to start from.
    """
    if mapping_path is not None:
        return load_bids_mapping(mapping_path)
    for candidate in (root / LOCAL_MAPPING, shipped_mapping(root)):
        if candidate is not None and candidate.is_file():
            return load_bids_mapping(candidate)
    raise CohortFileError(
        f"{root}: an unknown BIDS dataset (its dataset_description.json names no dataset this tool ships a "
        f"mapping for) and no {LOCAL_MAPPING} beside it. Write a mapping of its sessions and columns, save "
        f"it as {root / LOCAL_MAPPING} or pass it with --mapping, starting from this template "
        f"(OpenNeuro ds005917's):\n\n{template_mapping()}")


def run_ingest_bids(root: str | Path, out: str | Path, mapping_path: str | Path | None = None,
                    include_controls: bool = False) -> pd.DataFrame:
    """Ingest the BIDS dataset at *root*, write the cohort to *out* and return it."""
    root = Path(root)
    file_kind(Path(out))
    tables = [*root.glob("*.tsv"), *(root / "phenotype").glob("*.tsv")] if root.is_dir() else []
    refuse_overwriting({"--out": out}, [mapping_path, *tables])
    if not (root / "participants.tsv").is_file():
        raise CohortFileError(f"{root}: not a BIDS dataset folder (no participants.tsv)")
    cohort = ingest_bids(root, bids_mapping_for(root, mapping_path), include_controls)
    write_table(cohort, out)
    return cohort
