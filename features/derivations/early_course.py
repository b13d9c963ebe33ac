"""Early-course measures: MADRS change at timepoints strictly before the target timepoint."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd


def madrs_pct_change(timepoint: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A derivation returning ``madrs_pct_change_<timepoint>``: 100 × (MADRS_tp − baseline) / baseline."""
    column, out = f"madrs_{timepoint}", f"madrs_pct_change_{timepoint}"

    def derive(df: pd.DataFrame) -> pd.DataFrame:
        base = df["madrs_baseline"].astype("float64")
        change = 100.0 * (df[column].astype("float64") - base) / base.where(base > 0)
        return pd.DataFrame({out: change}, index=df.index)

    derive.__name__ = out
    derive.__doc__ = f"Percent MADRS change from baseline at {timepoint} (negative = improvement)."
    return derive
