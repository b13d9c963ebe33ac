"""Tolerability of durability courses: dissociation, SBP surge and nausea from planted factors, exact oracle.

Each harm is a probit model per course, ``P(harm) = Phi(a[harm, arm] + x . beta[harm])`` with the
coefficients of :data:`~features.synthetic.durability_truth.HARM_EFFECTS` (the dose step acts on drug
courses only) and the SBP surge's age >= 65 term; the intercepts and that term are solved per arm on
the durability reference population so the harm rates equal the label's. The recorded columns encode
the harm exactly: ``cadss_40min >= CADSS_THRESHOLD`` is dissociation, ``sbp_change_mmhg >= 40`` a surge.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import ndtr, ndtri

from ketamine_response.features.synthetic.covariates import standardised_drivers
from ketamine_response.features.synthetic.durability import reference
from ketamine_response.features.synthetic.durability_truth import (
    CADSS_THRESHOLD,
    HARM_EFFECTS,
    HARM_RATES,
    SBP_MEAN,
    SBP_SD,
    SBP_SHIFTS,
)
from ketamine_response.features.synthetic.outcomes import ARMS, DRUGS, solve_increasing

SURGE_MMHG, SURGE_EXCESS = 40.0, 6.0  # a surge is 40 + floor(Exponential(6)) mmHg (I)
_SURGE_MEAN = SURGE_MMHG + 1.0 / math.expm1(1.0 / SURGE_EXCESS)  # mean of that floor
CADSS_SCALE = {"ketamine_iv": 8.0, "esketamine_in": 6.0, "placebo_iv": 2.0, "placebo_in": 2.0}  # gamma(2, .) above T (I)
HARM_COLUMNS = {"sbp_surge": "p_harm_sbp_change_mmhg_ge40", "dissociation": f"p_harm_cadss_40min_ge{CADSS_THRESHOLD}",
                "nausea": "p_harm_nausea"}


def harm_drivers(cov: dict[str, np.ndarray], hypertension: np.ndarray, dose_step: np.ndarray) -> dict[str, np.ndarray]:
    """The factors the harm models read: age per 10 years from 46, log BMI per SD, 0/1 flags, dose step."""
    return {"age10": (cov["age"] - 46.0) / 10.0, "bmi": standardised_drivers(cov)["bmi"],
            "hypertension": hypertension, "female": (cov["sex"] == "F").astype(float), "dose": dose_step}


def _linear(harm: str, drivers: dict[str, np.ndarray]) -> np.ndarray:
    return sum((b * drivers[k] for k, b in HARM_EFFECTS[harm].items()), np.zeros(drivers["age10"].size))


@lru_cache(maxsize=4)
def harm_calibration(name: str) -> dict[tuple[str, str], float]:
    """Solved constants per (harm or term, arm): probit intercepts, the SBP surge's age >= 65 term
    (``sbp_surge_65``) and the mean of the SBP change below a surge (``sbp_mean``)."""
    ref = reference(name)
    old = ref["age"] >= 65
    out: dict[tuple[str, str], float] = {}
    for arm in ARMS:
        step = ref["esk_dose_step" if arm == "esketamine_in" else "iv_dose_step"] * (arm in DRUGS)
        x = harm_drivers(ref, ref["hypertension"], step)
        for harm in ("dissociation", "nausea"):
            lin = _linear(harm, x)
            out[(harm, arm)] = solve_increasing(lambda a: float(ndtr(a + lin).mean()), -8, 8, HARM_RATES[harm][arm])  # noqa: B023
        lin = _linear("sbp_surge", x)
        a = solve_increasing(lambda v: float(ndtr(v + lin[~old]).mean()), -8, 8, HARM_RATES["sbp_surge"][arm])  # noqa: B023
        out[("sbp_surge", arm)] = a
        out[("sbp_surge_65", arm)] = solve_increasing(lambda v: float(ndtr(a + v + lin[old]).mean()), -4, 4,  # noqa: B023
                                                      HARM_RATES["sbp_surge_65"][arm])
        p_surge = ndtr(a + lin + out[("sbp_surge_65", arm)] * old)
        p_diss = ndtr(out[("dissociation", arm)] + _linear("dissociation", x))
        shift = _sbp_shift(ref["age"], ref["hypertension"], p_diss, step)
        # the arm's mean change, surges included, is SBP_MEAN (truncation below 40 is negligible)
        out[("sbp_mean", arm)] = float((SBP_MEAN[arm] - np.mean(p_surge * _SURGE_MEAN) - np.mean((1 - p_surge) * shift))
                                       / np.mean(1 - p_surge))
    return out


def _sbp_shift(age: np.ndarray, hypertension: np.ndarray, dissociated: np.ndarray, dose_step: np.ndarray) -> np.ndarray:
    return (SBP_SHIFTS["age50"] * (age >= 50) + SBP_SHIFTS["hypertension"] * hypertension
            + SBP_SHIFTS["dissociation"] * dissociated + SBP_SHIFTS["dose"] * dose_step)


def harm_probabilities(name: str, courses: dict[str, np.ndarray], hypertension: np.ndarray,
                       dose_step: np.ndarray) -> dict[str, np.ndarray]:
    """Each course's true probability of each harm on the arm it was given."""
    cal = harm_calibration(name)
    x = harm_drivers(courses, hypertension, dose_step)
    arm = courses["rate_arm"]
    out = {}
    for harm in ("dissociation", "nausea", "sbp_surge"):
        intercept = np.select([arm == a for a in ARMS], [cal[(harm, a)] for a in ARMS], np.nan)
        lin = intercept + _linear(harm, x)
        if harm == "sbp_surge":
            lin += np.select([arm == a for a in ARMS], [cal[("sbp_surge_65", a)] for a in ARMS]) * (courses["age"] >= 65)
        out[harm] = ndtr(lin)
    return out


def simulate_tolerability(rng: np.random.Generator, name: str, courses: dict[str, np.ndarray],
                          hypertension: np.ndarray, dose_step: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``cadss_40min``, ``sbp_change_mmhg`` and ``nausea`` per course, and the oracle ``p_harm_*`` columns."""
    arm, n = courses["rate_arm"], courses["rate_arm"].size
    p = harm_probabilities(name, courses, hypertension, dose_step)
    dissociated = rng.random(n) < p["dissociation"]
    scale = np.select([arm == a for a in ARMS], [CADSS_SCALE[a] for a in ARMS])
    above = CADSS_THRESHOLD + np.floor(rng.gamma(2.0, scale))
    below = np.floor(CADSS_THRESHOLD * rng.random(n) ** 2)
    cadss = np.minimum(92.0, np.where(dissociated, above, below))
    surge = rng.random(n) < p["sbp_surge"]
    high = SURGE_MMHG + np.floor(rng.exponential(SURGE_EXCESS, n))
    cal = harm_calibration(name)
    mean = np.select([arm == a for a in ARMS], [cal[("sbp_mean", a)] for a in ARMS])
    mean = mean + _sbp_shift(courses["age"], hypertension, dissociated, dose_step)
    # below a surge: normal truncated under 39.5, so the rounded change stays <= 39 and the harm is exact
    top = ndtr((SURGE_MMHG - 0.5 - mean) / SBP_SD)
    low = np.rint(mean + SBP_SD * ndtri(np.maximum(rng.random(n) * top, 1e-12)))
    sbp = np.clip(np.where(surge, np.minimum(high, 120.0), low), -60, 120)
    nausea = (rng.random(n) < p["nausea"]).astype(float)
    oracle = {HARM_COLUMNS[h]: p[h] for h in ("sbp_surge", "dissociation", "nausea")}
    return {"cadss_40min": cadss, "sbp_change_mmhg": sbp, "nausea": nausea}, oracle
