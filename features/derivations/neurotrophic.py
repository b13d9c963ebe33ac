"""Neurotrophic and genetic markers: BDNF rs6265 (Val66Met) coded two ways."""

from __future__ import annotations

import pandas as pd

_MET_ALLELES = {"GG": 0.0, "GA": 1.0, "AA": 2.0}


def bdnf_met_alleles(df: pd.DataFrame) -> pd.DataFrame:
    """Number of Met (A) alleles at rs6265: 0, 1 or 2 (additive coding)."""
    return pd.DataFrame({"bdnf_met_alleles": df["bdnf_rs6265"].map(_MET_ALLELES).astype("float64")}, index=df.index)


def bdnf_met_carrier(df: pd.DataFrame) -> pd.DataFrame:
    """1 if at least one Met allele (dominant coding), 0 for Val/Val."""
    alleles = df["bdnf_rs6265"].map(_MET_ALLELES).astype("float64")
    return pd.DataFrame({"bdnf_met_carrier": (alleles > 0).astype("float64").where(alleles.notna())}, index=df.index)
