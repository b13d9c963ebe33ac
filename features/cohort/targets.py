"""Targets derived from outcome columns: ``response_<tp>`` and ``remission_<tp>``."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import REMISSION_THRESHOLD, TIMEPOINT_PATTERN, outcome_timepoints, timepoint_minutes
from ketamine_response.features.errors import CohortFileError

_TARGET = re.compile(rf"^(?P<kind>response|remission|pct_change)_{TIMEPOINT_PATTERN}$")
KINDS = ("response", "remission", "pct_change")


@dataclass(frozen=True)
class Target:
    """A binary outcome at one timepoint."""

    kind: str
    timepoint: str

    @property
    def name(self) -> str:
        return f"{self.kind}_{self.timepoint}"

    @property
    def minutes(self) -> int:
        return timepoint_minutes(self.timepoint)

    @property
    def outcome_column(self) -> str:
        return f"madrs_{self.timepoint}"

    @property
    def continuous(self) -> bool:
        """``pct_change``: the percentage change in MADRS from baseline (negative is improvement)."""
        return self.kind == "pct_change"

    @property
    def task(self) -> str:
        """The model families' task for this target: "regression" or "classification"."""
        return "regression" if self.continuous else "classification"


def parse_target(name: str) -> Target:
    """Parse ``response_<tp>``, ``remission_<tp>`` or ``pct_change_<tp>``; ValueError says what is expected."""
    m = _TARGET.match(name)
    if m is None:
        raise ValueError(
            f"target '{name}' is not of the form response_<tp>, remission_<tp> or pct_change_<tp> "
            "with tp like 40min, 4h, 24h or day7"
        )
    return Target(m["kind"], m["tp"])


def make_target(table: pd.DataFrame, target: Target, source: str = "cohort",
                remission_threshold: float = REMISSION_THRESHOLD) -> pd.Series:
    """The target per course (NaN where the outcome is missing).

    Response: MADRS at tp <= 50% of baseline. Remission: MADRS at tp <= *remission_threshold*.
    Both 0/1. pct_change: 100 x (MADRS at tp - baseline) / baseline, NaN for a baseline of 0.

    Raises
    ------
    CohortFileError
        If the cohort has no ``madrs_<tp>`` column for the target.
    """
    if target.outcome_column not in table.columns:
        tps = outcome_timepoints(list(table.columns))
        supported = ", ".join(f"{k}_{tp}" for tp in tps for k in KINDS) or "none"
        raise CohortFileError(
            f"{source}: target '{target.name}' needs column '{target.outcome_column}', which the cohort "
            f"lacks. Targets this cohort supports: {supported}."
        )
    score = table[target.outcome_column].astype("float64")
    baseline = table["madrs_baseline"].astype("float64")
    if target.continuous:
        change = 100 * (score - baseline) / baseline.where(baseline > 0)
        return pd.Series(change.to_numpy(), index=table.index, name=target.name)
    hit = score <= 0.5 * baseline if target.kind == "response" else score <= remission_threshold
    return pd.Series(np.where(score.isna(), np.nan, hit.astype("float64")), index=table.index, name=target.name)
