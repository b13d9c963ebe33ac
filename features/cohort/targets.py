"""A target: what one model predicts (``response_24h``, ``pct_change_day7``, ``sbp_change_mmhg_ge40``,
``time_to_relapse``).

Which kinds exist, how a name is parsed and how a target is built from the cohort belong to its
task: see :mod:`ketamine_response.features.tasks`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketamine_response.features.cohort.schema import timepoint_minutes


@dataclass(frozen=True)
class Target:
    """An outcome kind (``response``, ``remission``, ``pct_change``) at one timepoint; a harm (a safety column
    at or above a threshold: *column* and *threshold*, no timepoint); or time to relapse (kind only)."""

    kind: str
    timepoint: str = ""
    column: str = ""
    threshold: float = 0.0

    @property
    def name(self) -> str:
        if self.column:
            return f"{self.column}_ge{self.threshold:g}"
        return f"{self.kind}_{self.timepoint}" if self.timepoint else self.kind

    @property
    def minutes(self) -> int:
        """When the outcome is measured, for the leakage guard: a harm or a relapse is predicted before the
        first dose (0: baseline features only; dissociation at 40 min is an outcome there, not a predictor)."""
        return timepoint_minutes(self.timepoint) if self.timepoint else 0

    @property
    def outcome_column(self) -> str:
        """The cohort column the target is built from (the time column of a time to event)."""
        if self.column:
            return self.column
        return f"madrs_{self.timepoint}" if self.timepoint else "days_to_relapse"
