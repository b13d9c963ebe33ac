"""Patient-level covariates of synthetic TRD cohorts: distributions, standardised drivers, missingness.

Distributions follow the TRD trial literature where it reports them (see
``docs/synthetic-calibration.md``); the rest are plausible clinical ranges.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri

MADRS_MEAN, MADRS_SD, MADRS_CUTOFF = 35.0, 6.0, 20
BMI_MEDIAN, BMI_LOG_SD = 28.0, 0.2
MET_ALLELE_FREQ = 0.2  # rs6265 A (Met) allele, European ancestry
PREVALENCE = {  # share with the condition among TRD trial participants
    "family_history_aud": 0.30, "bipolar": 0.10, "anxious_depression": 0.55, "prior_ect": 0.20,
    "benzodiazepine": 0.40, "prior_suicide_attempt": 0.35,
}
# share missing completely at random per column (outcome dropout lives in synthetic.py)
MISSING = {
    "il6_pg_ml": 0.15, "crp_mg_l": 0.12, "tnf_alpha_pg_ml": 0.15, "bdnf_serum_ng_ml": 0.2,
    "kynurenine_umol_l": 0.25, "tryptophan_umol_l": 0.25, "kynurenic_acid_nmol_l": 0.3,
    "quinolinic_acid_nmol_l": 0.3, "d_serine_umol_l": 0.3, "bdnf_rs6265": 0.2,
    "eeg_gamma_power_db": 0.5, "glx_acc_mmol": 0.6, "shaps_baseline": 0.1,
    "family_history_aud": 0.1, "episode_duration_months": 0.05, "illness_duration_years": 0.05,
}


def truncated_madrs(rng: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    """Baseline MADRS ~ N(mean, 6) truncated at the inclusion cut-off (>= 20), rounded, <= 60."""
    lo = ndtr((MADRS_CUTOFF - 0.5 - mean) / MADRS_SD)
    draw = mean + MADRS_SD * ndtri(lo + rng.random(mean.size) * (1 - lo))
    return np.clip(np.round(draw), MADRS_CUTOFF, 60)


def _lognormal(rng: np.random.Generator, median: float, sd_log: float, n: int) -> np.ndarray:
    return median * np.exp(sd_log * rng.standard_normal(n))


def draw_patients(rng: np.random.Generator, n: int, n_sites: int) -> dict[str, np.ndarray]:
    """Draw *n* patients' true covariates (before missingness), spread over *n_sites* sites."""
    site = rng.integers(0, n_sites, n)
    site_madrs = rng.normal(0.0, 1.5, n_sites)[site]
    site_assay = np.exp(rng.normal(0.0, 0.1, n_sites))[site]  # lab-to-lab calibration drift
    sex_f = rng.random(n) < 0.62
    height = np.where(sex_f, rng.normal(163, 7, n), rng.normal(177, 7, n)).clip(140, 205)
    bmi = np.clip(_lognormal(rng, BMI_MEDIAN, BMI_LOG_SD, n), 16, 60)
    age = np.clip(np.round(rng.normal(46, 12, n)), 18, 80)
    flags = {k: (rng.random(n) < p).astype(float) for k, p in PREVALENCE.items()}
    inflammation = rng.standard_normal(n)  # shared low-grade inflammation drives IL-6, CRP, TNF
    met = rng.binomial(2, MET_ALLELE_FREQ, n)
    cov = {
        "site": site, "age": age, "sex": np.where(sex_f, "F", "M"),
        "height_cm": np.round(height, 1), "weight_kg": np.round(bmi * (height / 100) ** 2, 1),
        "madrs_baseline": truncated_madrs(rng, MADRS_MEAN + site_madrs),
        "n_failed_treatments": 2 + rng.poisson(2.0, n).astype(float),
        "illness_duration_years": np.round(np.minimum(age - 16, rng.gamma(2.0, 8.0, n)), 1).clip(0),
        "episode_duration_months": np.round(_lognormal(rng, 24, 0.8, n).clip(1, 600)),
        **flags,
        "lithium": (rng.random(n) < np.where(flags["bipolar"] == 1, 0.5, 0.05)).astype(float),
        "shaps_baseline": rng.binomial(14, 0.5, n).astype(float),
        "il6_pg_ml": _lab(2.0 * site_assay * np.exp(0.5 * inflammation), rng, 0.4),
        "crp_mg_l": _lab(2.5 * site_assay * np.exp(0.7 * inflammation), rng, 0.6),
        "tnf_alpha_pg_ml": _lab(2.0 * site_assay * np.exp(0.3 * inflammation), rng, 0.3),
        "bdnf_serum_ng_ml": np.round(rng.normal(25, 7, n).clip(1), 2),
        "kynurenine_umol_l": _lab(2.0 * site_assay, rng, 0.25),
        "tryptophan_umol_l": _lab(60.0 * site_assay, rng, 0.2),
        "kynurenic_acid_nmol_l": _lab(45.0 * site_assay, rng, 0.35),
        "quinolinic_acid_nmol_l": _lab(400.0 * site_assay, rng, 0.35),
        "d_serine_umol_l": np.round(rng.normal(3.5, 1.0, n).clip(0.5), 2),
        "bdnf_rs6265": np.array(["GG", "GA", "AA"])[met],
        "eeg_gamma_power_db": np.round(rng.normal(-10, 3, n), 2),
        "glx_acc_mmol": np.round(rng.normal(10, 1.5, n).clip(2), 2),
    }
    cov["bmi"] = np.round(cov["weight_kg"] / (cov["height_cm"] / 100) ** 2, 1)
    return cov


def _lab(median: np.ndarray | float, rng: np.random.Generator, sd_log: float) -> np.ndarray:
    median = np.asarray(median, dtype=float)
    return np.round(median * np.exp(sd_log * rng.standard_normal(median.size if median.ndim else 1)), 2)


def standardised_drivers(cov: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The predictors the scenarios plant effects on, each scaled to mean 0, SD 1 in the population."""
    def flag(name: str) -> np.ndarray:
        p = PREVALENCE[name]
        return (cov[name] - p) / np.sqrt(p * (1 - p))

    met_carrier_p = 1 - (1 - MET_ALLELE_FREQ) ** 2
    met = (cov["bdnf_rs6265"] != "GG").astype(float)
    return {
        "family_history_aud": flag("family_history_aud"),
        "benzodiazepine": flag("benzodiazepine"),
        "prior_suicide_attempt": flag("prior_suicide_attempt"),
        "prior_ect": flag("prior_ect"),
        "bdnf_met_carrier": (met - met_carrier_p) / np.sqrt(met_carrier_p * (1 - met_carrier_p)),
        "bmi": (np.log(cov["bmi"]) - np.log(BMI_MEDIAN)) / BMI_LOG_SD,
        "madrs_baseline": (cov["madrs_baseline"] - MADRS_MEAN) / MADRS_SD,
        "log_episode_months": (np.log(cov["episode_duration_months"]) - np.log(24)) / 0.8,
        "d_serine_umol_l": (cov["d_serine_umol_l"] - 3.5) / 1.0,
        "n_failed_treatments": (cov["n_failed_treatments"] - 4.0) / np.sqrt(2.0),  # 2 + Poisson(2)
    }


def mask_missing(rng: np.random.Generator, cov: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A copy of *cov* with cells removed at the MISSING rates; body size partly via BMI only."""
    out = dict(cov)
    n = len(cov["age"])
    for name, share in MISSING.items():
        gone = rng.random(n) < share
        column = out[name]
        out[name] = np.where(gone, None if column.dtype.kind in "OUT" else np.nan, column)  # type: ignore[arg-type]
    body = rng.random(n)
    for name in ("weight_kg", "height_cm"):
        out[name] = np.where(body < 0.10, np.nan, out[name])
    out["bmi"] = np.where((body >= 0.10) & (body < 0.40), np.nan, out["bmi"])
    return out
