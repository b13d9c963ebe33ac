"""Ingest a BIDS dataset's participant and phenotype tables into the cohort format.

The dataset-specific part (which sessions are baseline, which arm and timepoint a session
belongs to, which columns hold the infusion order) lives in a small YAML mapping file, so the
same code serves other BIDS datasets with other session names. Mappings of known public datasets
ship with the package (their DOIs are the ``bids`` entry's ``known_datasets`` in :mod:`.registry`) and
are found from the dataset's ``dataset_description.json``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.reader import read_text_table
from ketamine_response.features.cohort.schema import TIMEPOINT_PATTERN, TREATMENTS, spec_for
from ketamine_response.features.errors import CohortFileError
from ketamine_response.features.sources.dataset_files import check, files_in, opening, present, read_json_object
from ketamine_response.features.yaml_file import read_yaml

_TYPES = {"site": str, "participant_columns": dict, "group_column": str, "groups": dict, "arms": dict,
          "period_columns": list, "score_column": str, "baseline_session": str, "sessions": dict}
_KEYS = set(_TYPES)
# columns the ingest fills itself; a mapping may not write onto them
_WRITTEN = ("patient_id", "site", "treatment", "period", "bipolar", "madrs_baseline")
LOCAL_MAPPING = "bids_mapping.yaml"  # a mapping kept beside a dataset's own files
DESCRIPTION = "dataset_description.json"


@dataclass(frozen=True)
class BidsMapping:
    site: str
    participant_columns: dict[str, str]
    group_column: str
    groups: dict[str, object]
    arms: dict[str, str]
    period_columns: list[str]
    score_column: str
    baseline_session: str
    sessions: dict[str, list[str]]


def load_bids_mapping(path: str | Path) -> BidsMapping:
    """Parse a BIDS mapping YAML; a malformed one is a CohortFileError naming the file."""
    path = check(Path(path), "BIDS mapping file")  # a symlink loop named as one, not as a missing file
    raw = read_yaml(path, "BIDS mapping file")
    if not isinstance(raw, dict) or set(raw) != _KEYS:
        got = set(raw) if isinstance(raw, dict) else set()
        extra, missing = sorted(map(str, got - _KEYS)), sorted(_KEYS - got)
        raise CohortFileError(f"{path}: the BIDS mapping must be a YAML mapping with exactly the keys "
                              f"{sorted(_KEYS)} (unknown: {extra or 'none'}; missing: {missing or 'none'}).")
    wrong = [f"{k} ({_TYPES[k].__name__} expected)" for k in sorted(_KEYS) if not isinstance(raw[k], _TYPES[k])]
    if wrong:
        raise CohortFileError(f"{path}: wrong kind of value for {', '.join(wrong)}.")
    texts = [*raw["participant_columns"], *raw["participant_columns"].values(), *raw["period_columns"], *raw["arms"]]
    if not all(isinstance(t, str) for t in texts) or not raw["period_columns"] or not raw["site"].strip():
        raise CohortFileError(f"{path}: participant_columns, period_columns and the arm codes must be column "
                              "names or codes written as text, with at least one period column and a site name.")
    targets = list(raw["participant_columns"].values())
    reserved = [t for t in targets if t in _WRITTEN or t.startswith("madrs_") or spec_for(t) is None]
    repeated = sorted({t for t in targets if targets.count(t) > 1})
    if reserved or repeated or raw["score_column"] in ("participant_id", "session_id"):
        raise CohortFileError(f"{path}: participant_columns must map onto distinct canonical covariate columns "
                              f"(not {', '.join(map(repr, reserved + repeated)) or 'the ID columns'}: the ingest "
                              "writes those itself), and score_column must name a score, not an ID column.")
    bad_arms = [str(a) for a in raw["arms"].values() if a not in TREATMENTS]
    bad_sessions = [str(s) for s, v in raw["sessions"].items() if not _session_ok(v, raw["arms"])]
    if bad_arms or bad_sessions:
        raise CohortFileError(f"{path}: arms must map to {', '.join(TREATMENTS)} and each session to "
                              f"[arm code, timepoint such as 24h or day2] (bad: {bad_arms + bad_sessions}).")
    return BidsMapping(**{k: raw[k] for k in _KEYS})


def _session_ok(value: object, arms: dict[str, str]) -> bool:
    return (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)
            and value[0] in arms and re.fullmatch(TIMEPOINT_PATTERN, value[1]) is not None)


def dataset_doi(root: str | Path) -> str | None:
    """The DOI in the dataset's ``dataset_description.json``, without a ``doi:`` prefix or version;
    None when there is no such file or it gives no DOI.

    Raises
    ------
    CohortFileError
        When the file is there but cannot be read, is not valid JSON or is not a JSON object: a broken
        description is reported as such, not as a dataset this tool does not know.
    """
    path = Path(root) / DESCRIPTION
    if not present(path):
        return None
    doi = read_json_object(path, "dataset description").get("DatasetDOI")
    if not isinstance(doi, str):
        return None
    doi = doi.removeprefix("doi:").removeprefix("https://doi.org/")
    return doi.split(".v")[0]


def shipped_mapping(root: str | Path, known: Mapping[str, Path]) -> Path | None:
    """The shipped mapping of a known public dataset at *root*, recognised by its DOI; None if unknown.

    *known* is the source entry's DOI stem -> mapping file (``SOURCES["bids"].mappings``).
    """
    return known.get(dataset_doi(root) or "")


def mapping_for(root: Path, mapping_path: Path | None, known: Mapping[str, Path]) -> BidsMapping:
    """The mapping given, else one beside the dataset, else the shipped one of a known dataset.

    Raises
    ------
    CohortFileError
        For an unknown dataset with no mapping: the message holds a template to start from.
    """
    if mapping_path is not None:
        return load_bids_mapping(mapping_path)
    if present(root / LOCAL_MAPPING):  # even a broken one: say so rather than fall back to another silently
        return load_bids_mapping(root / LOCAL_MAPPING)
    shipped = shipped_mapping(root, known)  # read only now: a dataset with its own mapping needs no description
    if shipped is not None:
        return load_bids_mapping(shipped)
    doi, template = next(iter(known.items()))  # a shipped mapping, with its comments, to start from
    why = (f"its {DESCRIPTION} names no dataset this tool ships a mapping for" if present(root / DESCRIPTION)
           else f"it has no {DESCRIPTION}")
    raise CohortFileError(
        f"{root}: an unknown BIDS dataset ({why}) and no {LOCAL_MAPPING} beside it. Write a mapping of its "
        f"sessions and columns, save it as {root / LOCAL_MAPPING} or pass it with --mapping, starting from this template "
        f"(that of {doi}):\n\n{template.read_text(encoding='utf-8')}")


def inputs(root: Path) -> list[Path]:
    """The tables the ingest reads (the source entry's ``inputs``), and its description and mapping
    where they are files. Empty if *root* is no folder: :func:`ingest_dataset` says why.

    Raises
    ------
    CohortFileError
        For a table that cannot be opened (a symlink loop, a folder), before any output is checked.
    """
    if not root.is_dir():
        return []
    people = [check(root / "participants.tsv", "participants table")] if present(root / "participants.tsv") else []
    sidecars = [p for p in (root / DESCRIPTION, root / LOCAL_MAPPING) if p.is_file()]  # False for a loop
    return [*people, *_phenotype_tables(root), *sidecars]


def _phenotype_tables(root: Path) -> list[Path]:
    return files_in(root / "phenotype", ".tsv", "phenotype table")


def ingest_dataset(root: Path, mapping_path: Path | None, known: Mapping[str, Path],
                   options: Mapping[str, bool]) -> pd.DataFrame:
    """The source entry's ``ingest``: a BIDS folder, its mapping found as :func:`mapping_for` says."""
    check(root, "BIDS dataset folder", folder=True)
    if not present(root / "participants.tsv"):
        raise CohortFileError(f"{root}: not a BIDS dataset folder (no participants.tsv). Pass the folder "
                              "that holds participants.tsv and phenotype/.")
    return ingest_bids(root, mapping_for(root, mapping_path, known), bool(options.get("include_controls")))


def _tsv(path: Path, needed: tuple[str, ...] = ()) -> pd.DataFrame:
    """A BIDS table through the cohort reader's checks (encoding, compression, ragged rows, no rows),
    with BIDS's ``n/a`` and blank cells as missing."""
    with opening(path, "BIDS table"):  # also a file made unreadable between the check and the read
        table = read_text_table(check(path, "BIDS table"), delimiter="\t")
    table = table.mask(table.isin(["n/a", ""]))
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise CohortFileError(f"{path}: no column {', '.join(repr(c) for c in missing)}; the BIDS mapping "
                              "names it (check the file, or its column names in the mapping).")
    return table


def _scores(root: Path, m: BidsMapping) -> pd.DataFrame:
    """participant × session score table from every phenotype TSV that has the score column."""
    frames = [t for t in map(_tsv, _phenotype_tables(root)) if m.score_column in t.columns]
    frames = [t for t in frames if {"participant_id", "session_id"} <= set(t.columns)]
    if not frames:
        raise CohortFileError(f"{root}/phenotype: no TSV has the score column '{m.score_column}'.")
    long = pd.concat(frames)[["participant_id", "session_id", m.score_column]]
    long[m.score_column] = pd.to_numeric(long[m.score_column], errors="coerce")
    table = long.pivot_table(index="participant_id", columns="session_id", values=m.score_column, aggfunc="first")
    absent = [s for s in (m.baseline_session, *m.sessions) if s not in table.columns]
    if m.baseline_session in absent:
        raise CohortFileError(f"{root}/phenotype: no '{m.score_column}' score at the baseline session "
                              f"'{m.baseline_session}' the mapping names (sessions found: {', '.join(map(str, table.columns))}).")
    return table


def ingest_bids(root: str | Path, mapping: BidsMapping, include_controls: bool = False) -> pd.DataFrame:
    """One row per treatment course: design, covariates, baseline and post-infusion MADRS by timepoint."""
    root = Path(root)
    people = _tsv(root / "participants.tsv", ("participant_id", mapping.group_column, *mapping.period_columns,
                                               *mapping.participant_columns))
    repeated = people["participant_id"][people["participant_id"].duplicated(keep=False)]
    if len(repeated):  # two rows of one participant would make two courses with one key
        lines = ", ".join(str(i + 2) for i in repeated.index[:10])  # +2: 1-based, after the header line
        raise CohortFileError(f"{root / 'participants.tsv'}: participant_id {repeated.iloc[0]!r} appears more than "
                              f"once (lines {lines}); keep one row per participant.")
    scores = _scores(root, mapping)
    groups = people[mapping.group_column].map(mapping.groups)
    if not include_controls:
        people, groups = people[groups != "control"], groups[groups != "control"]
    rows = []
    for (_, person), group in zip(people.iterrows(), groups):
        pid = person["participant_id"]
        for period, column in enumerate(mapping.period_columns, start=1):
            code = person[column]
            if pd.isna(code) or code not in mapping.arms:
                continue
            row = {"patient_id": pid, "site": mapping.site, "treatment": mapping.arms[code], "period": period,
                   **{dst: person[src] for src, dst in mapping.participant_columns.items()},
                   "bipolar": np.nan if group == "control" else group,
                   "madrs_baseline": scores.at[pid, mapping.baseline_session] if pid in scores.index else np.nan}
            for session, (arm, timepoint) in mapping.sessions.items():
                if arm == code:
                    value = scores.at[pid, session] if pid in scores.index and session in scores.columns else np.nan
                    row[f"madrs_{timepoint}"] = value
            rows.append(row)
    return pd.DataFrame(rows)
