"""Pharmacological context: concomitant medication, prior ECT, the treatment arm."""

from __future__ import annotations

import pandas as pd

ACTIVE_ARMS = ("ketamine_iv", "esketamine_in")


def treatment_arm_indicators(df: pd.DataFrame) -> pd.DataFrame:
    """One 0/1 column per active arm (placebo is the reference); fixed categories, nothing learnt."""
    return pd.DataFrame({f"arm_{a}": (df["treatment"] == a).astype("float64") for a in ACTIVE_ARMS},
                        index=df.index)
