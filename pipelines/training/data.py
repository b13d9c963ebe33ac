"""The design the training loops work on: features, outcome and grouping arrays of the usable courses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Data:
    """What the nested CV needs: the feature table and the design arrays (no identifiers leave here).

    Attributes
    ----------
    X : tier-1 feature table, one row per course
    y : 0/1 outcome per course (float)
    patients, sites, treatments : per-course grouping arrays (patient ids never reach the store)
    domains : feature -> domain, for the families' column policies
    """

    X: pd.DataFrame
    y: np.ndarray
    patients: np.ndarray
    sites: np.ndarray
    treatments: np.ndarray
    domains: Mapping[str, str]

    def take(self, rows: np.ndarray) -> Data:
        """The courses at positions *rows*."""
        return Data(self.X.iloc[rows], self.y[rows], self.patients[rows], self.sites[rows],
                    self.treatments[rows], self.domains)
