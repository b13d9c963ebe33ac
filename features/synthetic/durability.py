"""Repeated-dose courses and relapse after response, for the durability scenarios, with the exact oracle.

A course is 6 IV infusions (end-of-course visit ``madrs_day14``) or 8 esketamine sessions (``madrs_day28``,
drawn by :func:`~features.synthetic.outcomes.simulate_outcomes`); courses that drop out get fewer doses and
no end-of-course score. An IV course has responded by infusion d when ``z + e + c_d > 0``: ``z`` the
day-14 probit index, ``e`` ~ N(0, 1) shared over the course and ``c_6 = 0 > ... > c_1``, so the
cumulative response rises over the course and ``Phi(z)`` is the end-of-course probability.

End-of-course responders (MADRS <= 50% of baseline) are followed for relapse under the Weibull
proportional-hazards truth of :mod:`features.synthetic.durability_truth`; the arm terms and the Weibull
shape are solved, like the response intercepts, on a fixed reference population, there weighted by
each patient's probability of responding (only responders are followed).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from scipy.special import expit, ndtr

from ketamine_response.features.cohort.schema import REMISSION_THRESHOLD
from ketamine_response.features.synthetic.covariates import draw_patients, standardised_drivers
from ketamine_response.features.synthetic.durability_truth import (
    COURSE_DOSES,
    ESK_DOSES_MG,
    ESK_HIGH_DOSE_SHARE,
    HYPERTENSION_LOGIT,
    IV_DOSES_MG_PER_KG,
    IV_DROPOUT,
    IV_HIGH_DOSE_SHARE,
    RESPONDED_BY_THIRD_DOSE,
    RESPONSE_AFTER_FIRST_DOSE,
    Durability,
)
from ketamine_response.features.synthetic.outcomes import (
    ARMS,
    DRUGS,
    calibration,
    madrs_scores,
    planted_effect,
    response_index,
    solve_increasing,
)
from ketamine_response.features.synthetic.scenarios import Scenario, get_scenario

REFERENCE_SEED, REFERENCE_N = 20261130, 20_000
HAZARD_DAYS = 28.0  # H(t) = (t / 28 d) ** shape * exp(log hazard): exp(-exp(lp)) is relapse-free at 28 days


def hypertension_probability(age: np.ndarray) -> np.ndarray:
    """P(hypertension) by age: rises with age, about 36% over the cohort's age range."""
    return expit(HYPERTENSION_LOGIT[0] + HYPERTENSION_LOGIT[1] * (age - 46.0))


@lru_cache(maxsize=4)
def reference(name: str) -> dict[str, np.ndarray]:
    """The fixed population every durability constant is solved on (one site, no site effect); read only."""
    scenario = get_scenario(name)
    rng = np.random.default_rng(REFERENCE_SEED)
    ref = draw_patients(rng, REFERENCE_N, n_sites=1)
    ref["site_effect"] = np.zeros(REFERENCE_N)
    ref["esk_site"] = np.zeros(REFERENCE_N, dtype=bool)
    ref["eta"] = planted_effect(scenario, ref)
    ref["prognostic"] = planted_effect(scenario, ref, "prognostic")
    ref["placebo_only"] = planted_effect(scenario, ref, "placebo_only")
    ref["hypertension"] = (rng.random(REFERENCE_N) < hypertension_probability(ref["age"])).astype(float)
    ref["iv_dose_step"] = (rng.random(REFERENCE_N) < IV_HIGH_DOSE_SHARE).astype(float)
    ref["esk_dose_step"] = (rng.random(REFERENCE_N) < ESK_HIGH_DOSE_SHARE).astype(float)
    return ref


def _truth(scenario: Scenario) -> Durability:
    if scenario.durability is None:
        raise ValueError(f"scenario '{scenario.name}' has no durability truth")
    return scenario.durability


def relapse_terms(truth: Durability, cov: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The prognostic (every arm) and drug-modified (drug arms only) parts of the log hazard."""
    drivers = standardised_drivers(cov)
    prognostic = sum((b * drivers[k] for k, b in truth.prognostic.items()), np.zeros(len(cov["age"])))
    modified = sum((b * drivers[k] for k, b in truth.drug_modified.items()), np.zeros(len(cov["age"])))
    return prognostic, modified


def _relapse_free(a: float, base: np.ndarray, w: np.ndarray, days: float, shape: float) -> float:
    return float(np.average(np.exp(-np.exp(a + base) * (days / HAZARD_DAYS) ** shape), weights=w))


@lru_cache(maxsize=4)
def relapse_calibration(name: str) -> tuple[float, dict[str, float]]:
    """The Weibull shape and each arm's log-hazard term.

    Esketamine (maintenance) responders: relapse-free 80% at 28 and 60% at 56 days fix its term and the
    shape; IV ketamine responders: median 18 days fixes its term; each placebo term is its drug's less
    log(HR), so the hazard ratio drug vs placebo is 0.49 wherever the drug-modified factors are at their mean.
    """
    scenario = get_scenario(name)
    truth, ref = _truth(scenario), reference(name)
    prognostic, modified = relapse_terms(truth, ref)
    drug = prognostic + modified
    w_esk = ndtr(response_index(scenario, ref, np.full(REFERENCE_N, "esketamine_in"), "day28"))
    w_iv = ndtr(response_index(scenario, ref, np.full(REFERENCE_N, "ketamine_iv"), "day14"))
    (t1, s1), (t2, s2) = truth.maintained_relapse_free

    def esk_term(shape: float) -> float:
        return solve_increasing(lambda a: -_relapse_free(a, drug, w_esk, t1, shape), -12, 8, -s1, iters=45)

    # a larger shape, with S(28) held, lowers S(56)
    shape = solve_increasing(lambda k: -_relapse_free(esk_term(k), drug, w_esk, t2, k), 0.2, 5.0, -s2, iters=45)
    a_iv = solve_increasing(lambda a: -_relapse_free(a, drug, w_iv, truth.iv_median_days, shape), -12, 8, -0.5)
    a_esk, log_hr = esk_term(shape), math.log(truth.hr_drug_vs_placebo)
    return shape, {"ketamine_iv": a_iv, "esketamine_in": a_esk, "placebo_iv": a_iv - log_hr, "placebo_in": a_esk - log_hr}


def relapse_log_hazard(scenario: Scenario, cov: dict[str, np.ndarray], rate_arms: np.ndarray) -> np.ndarray:
    """Each course's true log relapse hazard on the arm in *rate_arms* (as if it had responded)."""
    _, terms = relapse_calibration(scenario.name)
    prognostic, modified = relapse_terms(_truth(scenario), cov)
    arm_term = np.zeros(rate_arms.size)
    for arm in ARMS:
        arm_term[rate_arms == arm] = terms[arm]
    return arm_term + prognostic + np.where(np.isin(rate_arms, DRUGS), modified, 0.0)


@lru_cache(maxsize=4)
def dose_offsets(name: str) -> np.ndarray:
    """Probit offsets ``c_1 .. c_6`` of an IV course (``c_6 = 0``), solved on the IV ketamine reference:
    13% respond by infusion 1 and 60% of the end-of-course responders by infusion 3."""
    scenario = get_scenario(name)
    z = response_index(scenario, reference(name), np.full(REFERENCE_N, "ketamine_iv"), "day14")
    c1 = solve_increasing(lambda c: float(ndtr(z + c).mean()), -10.0, 0.0, RESPONSE_AFTER_FIRST_DOSE)
    third = (COURSE_DOSES["iv"] - 3) / (COURSE_DOSES["iv"] - 1)
    target = RESPONDED_BY_THIRD_DOSE * float(ndtr(z).mean())
    power = solve_increasing(lambda g: float(ndtr(z + c1 * third ** g).mean()), 0.01, 20.0, target)
    left = (COURSE_DOSES["iv"] - np.arange(1, COURSE_DOSES["iv"] + 1)) / (COURSE_DOSES["iv"] - 1)
    return c1 * left ** power


def _design(rng: np.random.Generator, courses: dict[str, np.ndarray],
            madrs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Hypertension (per patient), doses given, dose per dose and the higher-dose flag of every course."""
    esk, drug = courses["esk_site"], np.isin(courses["rate_arm"], DRUGS)
    patients = courses["patient_index"]
    age = np.zeros(patients.max() + 1)
    age[patients] = courses["age"]
    hypertension = (rng.random(age.size) < hypertension_probability(age)).astype(float)[patients]
    dropped = np.where(esk, np.isnan(madrs["madrs_day28"]), rng.random(esk.size) < IV_DROPOUT)
    planned = np.where(esk, COURSE_DOSES["in"], COURSE_DOSES["iv"])
    # a course seen at day 7 had its first 2 (twice weekly) or 3 (3x/week) doses before dropping out
    first = np.where(np.isnan(madrs["madrs_day7"]), 1, np.where(esk, 2, 3))
    n_doses = np.where(dropped, rng.integers(first, planned), planned).astype(float)
    high = drug & (rng.random(esk.size) < np.where(esk, ESK_HIGH_DOSE_SHARE, IV_HIGH_DOSE_SHARE))
    return {"hypertension": hypertension, "n_doses": n_doses, "dropped": dropped, "dose_step": high.astype(float),
            "dose_mg_per_kg": np.where(drug & ~esk, np.where(high, *IV_DOSES_MG_PER_KG[::-1]), np.nan),
            "dose_mg": np.where(drug & esk, np.where(high, *ESK_DOSES_MG[::-1]), np.nan).astype(float)}


def _iv_course(rng: np.random.Generator, scenario: Scenario, courses: dict[str, np.ndarray],
               design: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The day-14 MADRS of IV courses that finished and the trajectory oracle (NaN at esketamine sites)."""
    iv, base = ~courses["esk_site"], courses["madrs_baseline"]
    z = response_index(scenario, courses, courses["rate_arm"], "day14")
    latent = z + rng.standard_normal(z.size)
    k = np.ones(z.size)
    for arm in ("ketamine_iv", "placebo_iv"):
        k[courses["rate_arm"] == arm] = calibration(scenario.name)[(arm, "day14")][1]
    score = madrs_scores(rng, base, latent > 0, k)
    by_dose = latent[:, None] + dose_offsets(scenario.name)[None, :] > 0
    first = np.argmax(by_dose, axis=1) + 1.0
    reached = iv & by_dose[:, -1] & (first <= design["n_doses"])
    remission = np.minimum(1.0, 2.0 * (REMISSION_THRESHOLD + 1) / base) ** (1 / k)  # P(remission | response)
    oracle = {"p_response_day14": np.where(iv, ndtr(z), np.nan),
              "p_remission_day14": np.where(iv, ndtr(z) * remission, np.nan),
              "doses_to_response": np.where(reached, first, np.nan)}
    return np.where(iv & ~design["dropped"], score, np.nan), oracle


def _follow_up(rng: np.random.Generator, truth: Durability, shape: float, log_hazard: np.ndarray,
               followed: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Days to relapse or censoring and the event flag, both NaN where a course is not followed."""
    n = log_hazard.size
    relapse = HAZARD_DAYS * (rng.exponential(size=n) * np.exp(-log_hazard)) ** (1.0 / shape)
    loss_rate = -math.log(1.0 - truth.lost_by_end) / truth.follow_up_days
    censor = np.minimum(rng.exponential(1.0 / loss_rate, n), truth.follow_up_days)
    days = np.rint(np.minimum(relapse, censor))
    return np.where(followed, days, np.nan), np.where(followed, (relapse <= censor).astype(float), np.nan)


def simulate_durability(rng: np.random.Generator, scenario: Scenario, courses: dict[str, np.ndarray],
                        madrs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The course, end-of-course and follow-up columns of a durability cohort, and their oracle.

    ``dose_step`` (1 for the higher dose of a drug course) is for the tolerability model, not the table.

    Follow-up (``days_to_relapse``, ``relapse_observed``) is filled for end-of-course responders entered
    into follow-up only; the oracle's relapse columns are defined for every course, as if it had responded.
    """
    truth = _truth(scenario)
    design = _design(rng, courses, madrs)
    day14, oracle = _iv_course(rng, scenario, courses, design)
    end = np.where(courses["esk_site"], madrs["madrs_day28"], day14)
    with np.errstate(invalid="ignore"):
        responder = end <= 0.5 * courses["madrs_baseline"]  # NaN (no end-of-course score) compares False
    followed = responder & (rng.random(end.size) < truth.followed_share)
    shape, _ = relapse_calibration(scenario.name)
    log_hazard = relapse_log_hazard(scenario, courses, courses["rate_arm"])
    days, event = _follow_up(rng, truth, shape, log_hazard, followed)
    columns = {name: design[name] for name in ("n_doses", "dose_mg_per_kg", "dose_mg", "hypertension", "dose_step")}
    # the route of every course, placebo's included (intranasal spray vs IV midazolam/saline): the two placebo
    # arms relapse at their own drug's pace, and a clinic knows which it gave
    columns["route"] = np.where(courses["esk_site"], "intranasal", "iv")
    columns |= {"madrs_day14": day14, "days_to_relapse": days, "relapse_observed": event}
    oracle |= {"relapse_log_hazard": log_hazard, "relapse_free_28d": np.exp(-np.exp(log_hazard)),
               "relapse_free_56d": np.exp(-np.exp(log_hazard) * (56.0 / HAZARD_DAYS) ** shape)}
    return columns, oracle
