"""Ingest a BIDS dataset's participant and phenotype tables into the cohort format.

The dataset-specific part (which sessions are baseline, which arm and timepoint a session
belongs to, which columns hold the infusion order) lives in a small YAML mapping file, so the
same code serves other BIDS datasets with other session names.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.errors import CohortFileError
from features.schema import TREATMENTS

_KEYS = {"site", "participant_columns", "group_column", "groups", "arms", "period_columns", "score_column",
         "baseline_session", "sessions"}


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
    """Parse a BIDS mapping YAML; unknown keys, unknown arms and malformed sessions are CohortFileErrors."""
    import yaml

    path = Path(path)
    if not path.is_file():
        raise CohortFileError(f"{path}: the BIDS mapping file does not exist.")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict) or set(raw) != _KEYS:
        extra, missing = sorted(set(raw) - _KEYS), sorted(_KEYS - set(raw))
        raise CohortFileError(f"{path}: the BIDS mapping needs exactly the keys {sorted(_KEYS)} "
                              f"(unknown: {extra or 'none'}; missing: {missing or 'none'}).")
    bad_arms = [a for a in raw["arms"].values() if a not in TREATMENTS]
    bad_sessions = [s for s, v in raw["sessions"].items() if not (isinstance(v, list) and len(v) == 2
                                                                  and v[0] in raw["arms"])]
    if bad_arms or bad_sessions:
        raise CohortFileError(f"{path}: arms must map to {', '.join(TREATMENTS)} and each session to "
                              f"[arm code, timepoint] (bad: {bad_arms + bad_sessions}).")
    return BidsMapping(**{k: raw[k] for k in _KEYS})


def _tsv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise CohortFileError(f"{path}: not found; a BIDS dataset needs participants.tsv and phenotype/*.tsv.")
    return pd.read_csv(path, sep="\t", dtype=str, na_values=["n/a"], keep_default_na=False)


def _scores(root: Path, m: BidsMapping) -> pd.DataFrame:
    """participant × session score table from every phenotype TSV that has the score column."""
    frames = [t for t in map(_tsv, sorted((root / "phenotype").glob("*.tsv"))) if m.score_column in t.columns]
    if not frames:
        raise CohortFileError(f"{root}/phenotype: no TSV has the score column '{m.score_column}'.")
    long = pd.concat(frames)[["participant_id", "session_id", m.score_column]]
    long[m.score_column] = pd.to_numeric(long[m.score_column], errors="coerce")
    return long.pivot_table(index="participant_id", columns="session_id", values=m.score_column, aggfunc="first")


def ingest_bids(root: str | Path, mapping: BidsMapping, include_controls: bool = False) -> pd.DataFrame:
    """One row per treatment course: design, covariates, baseline and post-infusion MADRS by timepoint."""
    root = Path(root)
    people = _tsv(root / "participants.tsv")
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
