"""Clinical per-course derivations: body size, severity, treatment resistance, symptom profile."""

from __future__ import annotations

import numpy as np
import pandas as pd

OBESITY_BMI = 30.0
# MADRS bands (Snaith 1986 / Müller 2003): 0-6 normal, 7-19 mild, 20-34 moderate, >= 35 severe
SEVERITY_EDGES = (7.0, 20.0, 35.0)


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    """A column as float, or all-NaN when absent (callers document the fallback)."""
    return df[name].astype("float64") if name in df.columns else pd.Series(np.nan, index=df.index)


def _bmi(df: pd.DataFrame) -> pd.Series:
    from_size = _col(df, "weight_kg") / (_col(df, "height_cm") / 100.0) ** 2
    return _col(df, "bmi").fillna(from_size)


def bmi_kg_m2(df: pd.DataFrame) -> pd.DataFrame:
    """BMI as recorded, else weight / height²."""
    return pd.DataFrame({"bmi_kg_m2": _bmi(df)}, index=df.index)


def obese(df: pd.DataFrame) -> pd.DataFrame:
    """1 if BMI >= 30 kg/m², 0 if below, NaN if unknown."""
    bmi = _bmi(df)
    return pd.DataFrame({"obese": (bmi >= OBESITY_BMI).astype("float64").where(bmi.notna())}, index=df.index)


def madrs_severity_band(df: pd.DataFrame) -> pd.DataFrame:
    """Baseline severity band: 0 normal, 1 mild, 2 moderate, 3 severe."""
    base = df["madrs_baseline"].astype("float64")
    band = pd.Series(np.searchsorted(SEVERITY_EDGES, base.to_numpy(), side="right"), index=df.index)
    return pd.DataFrame({"madrs_severity_band": band.astype("float64").where(base.notna())}, index=df.index)


def maudsley_staging_score(df: pd.DataFrame) -> pd.DataFrame:
    """Maudsley Staging Method total (3-15; Fekadu 2009) from failures, episode duration and severity.

    Augmentation (lithium as the recorded augmenting agent) and ECT add 1 each when recorded;
    when the column is absent they add 0.
    """
    months = df["episode_duration_months"].astype("float64")
    duration = pd.Series(np.select([months <= 12, months <= 24], [1.0, 2.0], 3.0), index=df.index)
    base = df["madrs_baseline"].astype("float64")
    # MSM severity: subsyndromal 1, mild 2, moderate 3, severe 4 (psychosis, 5, is not recorded)
    severity = pd.Series(np.searchsorted(SEVERITY_EDGES, base.to_numpy(), side="right") + 1.0, index=df.index)
    failed = df["n_failed_treatments"].astype("float64")
    failures = pd.Series(np.select([failed <= 2, failed <= 4, failed <= 6, failed <= 10], [1.0, 2.0, 3.0, 4.0], 5.0),
                         index=df.index)
    extra = sum(df[c].astype("float64") for c in ("lithium", "prior_ect") if c in df.columns)
    total = duration.where(months.notna()) + severity.where(base.notna()) + failures.where(failed.notna()) + extra
    return pd.DataFrame({"maudsley_staging_score": total}, index=df.index)


def anhedonia_shaps_ge3(df: pd.DataFrame) -> pd.DataFrame:
    """1 if SHAPS >= 3 (clinically significant anhedonia, Snaith 1995), 0 if below."""
    shaps = df["shaps_baseline"].astype("float64")
    return pd.DataFrame({"anhedonia_shaps_ge3": (shaps >= 3).astype("float64").where(shaps.notna())}, index=df.index)


def log_episode_duration_months(df: pd.DataFrame) -> pd.DataFrame:
    """Natural log of current-episode duration in months (duration is right-skewed)."""
    months = df["episode_duration_months"].astype("float64").clip(lower=0.5)
    return pd.DataFrame({"log_episode_duration_months": np.log(months)}, index=df.index)


def sex_female(df: pd.DataFrame) -> pd.DataFrame:
    """1 for F, 0 for M, NaN if unknown."""
    sex = df["sex"]
    return pd.DataFrame({"sex_female": (sex == "F").astype("float64").where(sex.notna())}, index=df.index)
