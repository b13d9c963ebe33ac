"""Synthetic TRD cohorts with known ground truth, vectorised end to end.

Response at each timepoint follows a probit model per course::

    z = a_placebo[tp] + g(x) + a_drug[tp] * (1 - h * prior_ect) * active + eta(x) * active + site + noise

with ``eta`` the scenario's planted predictive effects (drug arms only) and ``g`` its prognostic
effects (every arm) on standardised predictors, plus its placebo-only effects on placebo courses, and
``noise`` ~ N(0, 1) shared across a course's timepoints with correlation rho.
So the true probability is ``Phi(z - noise)`` and the oracle is exact. On a risk scale
(``EffectScale.RISK_DIFFERENCE`` / ``RISK_RATIO``) the drug response is a function of the placebo
probability instead, and ``z - noise`` is replaced by ``ndtri(p)``: the same latent noise then gives
P(responder) = p exactly. The
intercepts are solved once per scenario on a fixed reference population so the
marginal rates equal the published ones. A responder's MADRS is
``floor(B * 0.5 * U**k)`` (k solved to hit the remission rate), a non-responder's
``ceil(B * U(0.5, 1.1))``, so response and remission follow from the MADRS
columns exactly as the pipeline derives them.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy.special import ndtr, ndtri

from ketamine_response.features.cohort.schema import REMISSION_THRESHOLD
from ketamine_response.features.synthetic.covariates import draw_patients, standardised_drivers
from ketamine_response.features.synthetic.scenarios import (
    ESK_TIMEPOINTS,
    IV_TIMEPOINTS,
    TIMEPOINTS,
    EffectScale,
    Scenario,
    drug_probability,
    get_scenario,
)

# dropout: share of courses missing each outcome, monotone over time
_DROPOUT = {"40min": 0.01, "4h": 0.02, "24h": 0.03, "day2": 0.04, "day3": 0.05, "day7": 0.08, "day28": 0.12}


def rate_arm(treatment: np.ndarray, esk_site: np.ndarray) -> np.ndarray:
    """The rate table's arm of each course: placebo is split by design (IV midazolam vs intranasal + AD)."""
    placebo = np.where(esk_site, "placebo_in", "placebo_iv")
    return np.where(treatment == "placebo", placebo, treatment)


def solve_increasing(f: Callable[[float], float], lo: float, hi: float, target: float, iters: int = 60) -> float:
    """The x in [lo, hi] where the increasing function *f* meets *target*, by bisection."""
    # f must be increasing; plain bisection keeps the solve deterministic and dependency-free.
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) < target else (lo, mid)
    return 0.5 * (lo + hi)


@lru_cache(maxsize=8)
def calibration(name: str) -> dict[tuple[str, str], tuple[float, float]]:
    """Solved constants per (arm, timepoint): (probit intercept, remission exponent k).

    For a drug arm the intercept is the drug term ``a_drug`` (NaN on a risk scale, where the drug
    response follows from placebo's); for placebo, ``a_placebo``.
    """
    scenario = get_scenario(name)
    rng = np.random.default_rng(20261129)
    ref = draw_patients(rng, 20_000, n_sites=1)
    eta = planted_effect(scenario, ref)
    prog = planted_effect(scenario, ref, "prognostic")
    placebo_only = planted_effect(scenario, ref, "placebo_only")
    ceiling = scenario.placebo_ceiling
    scale = 1.0 - (1.0 - scenario.prior_ect_drug_scale) * ref["prior_ect"]
    site = rng.normal(0.0, scenario.site_sd, size=eta.size) + prog
    out: dict[tuple[str, str], tuple[float, float]] = {}
    # placebo arms first: a drug arm is solved on top of its placebo intercept
    for (arm, tp), (resp, rem, thr) in sorted(scenario.rates.items(), key=lambda kv: not kv[0][0].startswith("placebo")):
        if arm.startswith("placebo"):
            a = solve_increasing(lambda v: (ceiling * ndtr(v + site + placebo_only)).mean(), -8, 8, resp)
        elif scenario.scale is not EffectScale.PROBIT:
            a = np.nan  # the scenario's rates already hold the drug rate its risk scale implies
        else:
            a_p = out[("placebo_" + ("iv" if arm == "ketamine_iv" else "in"), tp)][0]
            a = solve_increasing(lambda v: ndtr(a_p + v * scale + eta + site).mean(), -8, 8, resp)  # noqa: B023 - called here
        bound = np.minimum(1.0, 2.0 * (thr + 1) / ref["madrs_baseline"])
        # a larger k pushes responders' scores down, so the share in remission grows with k
        k = np.exp(solve_increasing(lambda lk: (bound ** np.exp(-lk)).mean(), -5, 5, rem / resp))  # noqa: B023 - called here
        out[(arm, tp)] = (a, k)
    return out


EffectKind = Literal["predictive", "prognostic", "placebo_only"]


def planted_effect(scenario: Scenario, cov: dict[str, np.ndarray], kind: EffectKind = "predictive") -> np.ndarray:
    """The scenario's predictive effects (eta), its prognostic ones (g) or its placebo-only ones,
    summed over standardised predictors (probit scale)."""
    drivers = standardised_drivers(cov)
    eta = np.zeros(len(cov["age"]))
    coefficients = {"predictive": scenario.effects, "prognostic": scenario.prognostic, "placebo_only": scenario.placebo_only}
    for name, beta in coefficients[kind].items():
        eta += beta * drivers[name]
    return eta


ARMS = ("ketamine_iv", "esketamine_in", "placebo_iv", "placebo_in")
DRUGS = ("ketamine_iv", "esketamine_in")


def _per_arm(masks: dict[str, np.ndarray], values: dict[str, float]) -> np.ndarray:
    out = np.full(next(iter(masks.values())).size, np.nan)
    for arm, mask in masks.items():
        out[mask] = values.get(arm, np.nan)
    return out


def _linear(scenario: Scenario, courses: dict[str, np.ndarray], rate_arms: np.ndarray, tp: str) -> np.ndarray:
    """The probit linear predictor of each course had it been given the arm in *rate_arms* (NaN: no such visit)."""
    cal = calibration(scenario.name)
    masks = {arm: rate_arms == arm for arm in ARMS}
    a = {arm: cal[(arm, tp)][0] for arm in ARMS if (arm, tp) in cal}
    placebo = {drug: a.get(p, np.nan) for drug, p in (("ketamine_iv", "placebo_iv"), ("esketamine_in", "placebo_in"))}
    a_placebo = _per_arm(masks, placebo | {p: a.get(p, np.nan) for p in ("placebo_iv", "placebo_in")})
    a_drug = _per_arm(masks, {d: a.get(d, np.nan) for d in ("ketamine_iv", "esketamine_in")})
    active = np.isin(rate_arms, DRUGS)
    scale = 1.0 - (1.0 - scenario.prior_ect_drug_scale) * courses["prior_ect"]
    drug_term = np.where(active, a_drug * scale + courses["eta"], 0.0)
    placebo_term = np.where(active, 0.0, courses["placebo_only"])
    return a_placebo + courses["prognostic"] + courses["site_effect"] + drug_term + placebo_term


def response_index(scenario: Scenario, courses: dict[str, np.ndarray], rate_arms: np.ndarray, tp: str) -> np.ndarray:
    """Each course's probit index on the arm in *rate_arms*: P(response) = Phi(index) exactly.

    On the probit scale this is the linear predictor itself. On a risk scale the placebo probability
    is ``ceiling * Phi(placebo predictor)`` and the drug's is its fixed map of that, so the index is
    ``ndtri`` of the probability: the latent-noise draw then responds with exactly that probability.
    """
    if scenario.scale is EffectScale.PROBIT:
        return _linear(scenario, courses, rate_arms, tp)
    placebo_arms = rate_arm(np.full(rate_arms.size, "placebo"), courses["esk_site"])
    p_placebo = scenario.placebo_ceiling * ndtr(_linear(scenario, courses, placebo_arms, tp))
    p_drug = drug_probability(scenario.scale, scenario.effect_size, p_placebo)
    return ndtri(np.where(np.isin(rate_arms, DRUGS), np.minimum(1.0, p_drug), p_placebo))


def counterfactual_oracle(scenario: Scenario, courses: dict[str, np.ndarray], tp: str) -> dict[str, np.ndarray]:
    """Each course's true response probability on every arm its site offers, and the drug's benefit over placebo.

    ``p_response_<tp>_<arm>`` for ketamine_iv, esketamine_in and placebo (NaN where the site does not
    give that arm, or the arm has no such visit) and ``benefit_<tp>_<drug>`` = drug minus placebo.
    """
    esk = courses["esk_site"]
    drug_arm = np.where(esk, "esketamine_in", "ketamine_iv")
    p_placebo = ndtr(response_index(scenario, courses, rate_arm(np.full(esk.size, "placebo"), esk), tp))
    p_drug = ndtr(response_index(scenario, courses, drug_arm, tp))
    out = {f"p_response_{tp}_placebo": p_placebo}
    for drug in ("ketamine_iv", "esketamine_in"):
        p = np.where(drug_arm == drug, p_drug, np.nan)
        out[f"p_response_{tp}_{drug}"] = p
        out[f"benefit_{tp}_{drug}"] = p - p_placebo
    return out


def madrs_scores(rng: np.random.Generator, base: np.ndarray, responder: np.ndarray, k: np.ndarray) -> np.ndarray:
    """A responder's MADRS ``floor(B * 0.5 * U**k)``, a non-responder's ``ceil(B * U(0.5, 1.1))``: response
    (<= 50% of baseline) follows from the score exactly, and k sets the share in remission."""
    u = rng.random(base.size)
    low = np.floor(base * 0.5 * u ** k)
    high = np.minimum(60.0, np.ceil(base * (0.5 + 0.6 * np.maximum(u, 1e-9))))
    return np.where(responder, low, high)


def simulate_outcomes(rng: np.random.Generator, scenario: Scenario,
                      courses: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """MADRS at every timepoint and the oracle probabilities, per course.

    Returns
    -------
    madrs : dict
        ``madrs_<tp>`` arrays (NaN where the arm has no such visit or the course dropped out).
    oracle : dict
        ``p_response_<tp>`` and ``p_remission_<tp>`` (remission at MADRS <= 10) of the arm given,
        then the counterfactual columns of :func:`counterfactual_oracle`.
    """
    n = courses["treatment"].size
    base = courses["madrs_baseline"]
    rho = scenario.timepoint_correlation
    shared = rng.standard_normal(n)
    dropout = rng.random(n)
    madrs: dict[str, np.ndarray] = {}
    oracle: dict[str, np.ndarray] = {}
    arms: dict[str, np.ndarray] = {}
    masks = {arm: courses["rate_arm"] == arm for arm in ARMS}
    cal = calibration(scenario.name)
    for tp in TIMEPOINTS:
        visit = np.where(courses["esk_site"], tp in ESK_TIMEPOINTS, tp in IV_TIMEPOINTS)
        lin = response_index(scenario, courses, courses["rate_arm"], tp)
        k = _per_arm(masks, {arm: cal[(arm, tp)][1] for arm in ARMS if (arm, tp) in cal})
        noise = np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.standard_normal(n)
        score = madrs_scores(rng, base, lin + noise > 0, k)
        madrs[f"madrs_{tp}"] = np.where(visit & (dropout >= _DROPOUT[tp]), score, np.nan)
        p = np.where(visit, ndtr(lin), np.nan)
        oracle[f"p_response_{tp}"] = p
        oracle[f"p_remission_{tp}"] = p * np.minimum(1.0, 2.0 * (REMISSION_THRESHOLD + 1) / base) ** (1 / k)
        arms |= {name: np.where(visit, v, np.nan) for name, v in counterfactual_oracle(scenario, courses, tp).items()}
    return madrs, oracle | arms


def simulate_safety(rng: np.random.Generator, courses: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Dissociation at 40 min, peak SBP change and nausea, by arm (see docs for sources)."""
    arm = courses["rate_arm"]
    n = arm.size
    params = {  # arm: (CADSS gamma shape, scale, SBP mean, SD, P(SBP surge >= 40), P(nausea))
        "ketamine_iv": (1.2, 10.0, 5.0, 8.0, 0.01, 0.10),
        "esketamine_in": (0.8, 10.0, 8.0, 9.0, 0.08, 0.28),
        "placebo_iv": (0.5, 3.0, 1.0, 6.0, 0.0, 0.05),
        "placebo_in": (0.5, 3.0, 2.0, 7.0, 0.005, 0.09),
    }
    p = np.zeros((n, 6))
    for key, row in params.items():
        p[arm == key] = row
    cadss = np.minimum(92, np.round(rng.gamma(p[:, 0], p[:, 1])))
    surge = rng.random(n) < p[:, 4]
    sbp = np.where(surge, rng.normal(46.0, 5.0, n), rng.normal(p[:, 2], p[:, 3]))
    return {
        "cadss_40min": cadss,
        "sbp_change_mmhg": np.clip(np.round(sbp), -60, 120),
        "nausea": (rng.random(n) < p[:, 5]).astype(float),
    }
