"""Inflammatory markers on the log scale (their distributions are right-skewed)."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Assays report 0 below their detection limit; flooring avoids log(0) = -inf.
LOG_FLOOR = 0.01


def _log(df: pd.DataFrame, column: str, out: str) -> pd.DataFrame:
    return pd.DataFrame({out: np.log(df[column].astype("float64").clip(lower=LOG_FLOOR))}, index=df.index)


def log_il6(df: pd.DataFrame) -> pd.DataFrame:
    """ln IL-6 (pg/mL), floored at 0.01."""
    return _log(df, "il6_pg_ml", "log_il6")


def log_crp(df: pd.DataFrame) -> pd.DataFrame:
    """ln CRP (mg/L), floored at 0.01."""
    return _log(df, "crp_mg_l", "log_crp")


def log_tnf_alpha(df: pd.DataFrame) -> pd.DataFrame:
    """ln TNF-α (pg/mL), floored at 0.01."""
    return _log(df, "tnf_alpha_pg_ml", "log_tnf_alpha")


# The markers the fitted inflammation composite combines (a ZScoreComposite inside the linear
# families), and the name of the column it appends.
COMPOSITE_MARKERS = ("log_il6", "log_crp", "log_tnf_alpha")
COMPOSITE = "inflammation_composite"
