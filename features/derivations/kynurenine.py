"""Kynurenine pathway ratios (per course; a zero denominator gives NaN, not infinity)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def _ratio(num: pd.Series, den: pd.Series) -> pd.Series:
    den = den.astype("float64")
    return num.astype("float64") / den.where(den > 0)


def kyn_trp_ratio(df: pd.DataFrame) -> pd.DataFrame:
    """Kynurenine / tryptophan × 1000 (µmol/mmol), an index of IDO/TDO activity."""
    ratio = 1000.0 * _ratio(df["kynurenine_umol_l"], df["tryptophan_umol_l"])
    return pd.DataFrame({"kyn_trp_ratio": ratio}, index=df.index)


def kyna_quin_ratio(df: pd.DataFrame) -> pd.DataFrame:
    """Kynurenic acid / quinolinic acid: the neuroprotective-to-neurotoxic balance."""
    ratio = _ratio(df["kynurenic_acid_nmol_l"], df["quinolinic_acid_nmol_l"])
    return pd.DataFrame({"kyna_quin_ratio": ratio.replace([np.inf, -np.inf], np.nan)}, index=df.index)
