"""A target: an outcome kind at one timepoint (``response_24h``, ``pct_change_day7``).

Which kinds exist, how a name is parsed and how a target is built from the cohort belong to its
task: see :mod:`ketamine_response.features.tasks`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ketamine_response.features.cohort.schema import timepoint_minutes


@dataclass(frozen=True)
class Target:
    """An outcome kind (``response``, ``remission``, ``pct_change``) at one timepoint."""

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
