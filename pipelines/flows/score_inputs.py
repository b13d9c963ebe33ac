"""What ``score`` checks of its input before and while it scores (both engines): the key columns, whether
the file is blind (no treatment column), the duplicated keys across the whole file, which columns can reject
a row, and the rejected-rows text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ketamine_response.features.cohort.reader import cohort_columns, iter_cohort_chunks
from ketamine_response.features.cohort.schema import REQUIRED
from ketamine_response.features.cohort.validation import key_problems
from ketamine_response.features.errors import CohortFileError, UsageError
from ketamine_response.models.wrapper import ScoringModel

BLIND_ARM = "placebo"  # placeholder treatment of a blind file (never written out)


def model_inputs(models: Sequence[Any]) -> set[str]:
    """The cohort columns that can reject a row: the keys and required columns, and every column a model's
    features read (a bad value elsewhere, in an outcome column say, is never seen by the models)."""
    from ketamine_response.features.build import registry_for

    used = {*REQUIRED, "(all)"}  # "(all)": a blank row
    for model in models:
        wanted = set(model.derivations)
        used |= {c for f in registry_for(list(model.training_columns), model.extra_features) if f.name in wanted
                 for c in f.inputs}
    return used


def rejected_rows(raw: pd.DataFrame, problems: pd.DataFrame) -> pd.DataFrame:
    """The rows of *raw* that have *problems*, unchanged, after their ``row`` number and before a ``problems``
    text joining every problem of the row: the rejected-rows file of both engines."""
    text = (problems["column"] + ": " + problems["problem"]).groupby(problems["row"]).agg("; ".join)
    original = raw.loc[text.index].copy()
    original.insert(0, "row", text.index)
    original["problems"] = text.to_numpy()
    return original


def key_duplicates(path: Path, mapping, chunk_rows: int, blind: bool) -> pd.DataFrame:
    if blind:  # no course key without a treatment; each row gets every arm's prediction on its own
        return pd.DataFrame(columns=["row", "column", "value", "problem"])
    inverse = {v: k for k, v in mapping.columns.items()}
    names = [inverse.get(c, c) for c in ("patient_id", "treatment")]
    keys = pd.concat(list(iter_cohort_chunks(path, chunk_rows, names)), ignore_index=True)
    return key_problems(keys.rename(columns=dict(zip(names, ("patient_id", "treatment")))))[1]


def require_keys(path: Path, mapping, blind: bool) -> None:
    """The key columns must exist before the first pass reads them (a clear exit 2, not a reader error);
    a blind file needs ``patient_id`` only."""
    inverse = {v: k for k, v in mapping.columns.items()}
    columns = cohort_columns(path)
    for key in ("patient_id",) if blind else ("patient_id", "treatment"):
        if inverse.get(key, key) not in columns:
            raise CohortFileError(f"{path}: no '{inverse.get(key, key)}' column; it is required (one row per "
                                  "treatment course, keyed by patient_id and treatment). Add it, or map your "
                                  "column to it with --mapping.")


def is_blind(path: Path, mapping, model: ScoringModel, label: str = "this model") -> bool:
    """Whether the file has no treatment column and the model (*label*, in the message) can score every arm."""
    inverse = {v: k for k, v in mapping.columns.items()}
    if inverse.get("treatment", "treatment") in cohort_columns(path):
        return False
    if not model.arm_columns():
        raise UsageError(f"{path}: there is no treatment column, and {label} predicts for the arm given only "
                         "(it was trained without a placebo arm, or on a continuous target). Add the treatment "
                         "column (ketamine_iv, esketamine_in or placebo).")
    return True
