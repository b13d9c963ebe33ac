"""Pharmacological context: concomitant medication, prior ECT, the treatment arm."""

from __future__ import annotations

import pandas as pd

from ketamine_response.features.cohort.schema import ACTIVE_ARMS, ARM_COLUMNS


def treatment_arm_indicators(df: pd.DataFrame) -> pd.DataFrame:
    """One 0/1 column per active arm (placebo is the reference); fixed categories, nothing learnt."""
    return pd.DataFrame({c: (df["treatment"] == a).astype("float64") for a, c in zip(ACTIVE_ARMS, ARM_COLUMNS)},
                        index=df.index)


def route_intranasal(df: pd.DataFrame) -> pd.DataFrame:
    """1 for an intranasal course, 0 for IV, NaN where the route is not recorded."""
    route = df["route"].astype("string")
    return pd.DataFrame({"route_intranasal": (route == "intranasal").astype("float64").where(route.notna())},
                        index=df.index)
