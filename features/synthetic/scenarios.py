"""The planted truth of every synthetic scenario, in one readable table.

Rates are published figures where one exists (source in ``docs/synthetic-calibration.md``;
``I`` marks an interpolation of ours). Effects are probit coefficients per standard deviation
of the predictor, of two kinds:

* ``effects`` are **predictive**: they act on the active (drug) arms only, because the
  published predictors are moderators of the ketamine response, not of placebo;
* ``prognostic`` effects act on every arm alike: they predict improvement whatever is given,
  so they change nobody's benefit from the drug;
* ``placebo_only`` effects act on placebo courses only: they predict the placebo response and,
  through it, the benefit, while the drug response is the same for everyone.

The drug acts on the probit scale by default (``EffectScale.PROBIT``: its intercepts are solved to
the rates). On the risk scales the drug response is a fixed function of the placebo probability
instead, ``p_drug = p_placebo + effect_size`` or ``p_drug = effect_size * p_placebo``, with
``p_placebo = placebo_ceiling * Phi(linear predictor)`` so that ``p_drug`` never exceeds 1.
This module stays free of numpy: the command line reads the table without loading it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, TypeVar

from ketamine_response.features.synthetic.durability_truth import COURSE_RATES, Durability

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

IV_TIMEPOINTS = ("40min", "4h", "24h", "day3", "day7")
ESK_TIMEPOINTS = ("day2", "day7", "day28")
TIMEPOINTS = ("40min", "4h", "24h", "day2", "day3", "day7", "day28")

# (arm, timepoint) -> (response rate, remission rate, remission MADRS threshold used by that source)
Rates = dict[tuple[str, str], tuple[float, float, int]]

LITERATURE_RATES: Rates = {
    ("ketamine_iv", "40min"): (0.30, 0.10, 10),   # I: early, dissociation-confounded
    ("ketamine_iv", "4h"): (0.45, 0.18, 10),      # I: between 40 min and 24 h
    ("ketamine_iv", "24h"): (0.522, 0.206, 10),   # Han 2016: 52.2% / 20.6%
    ("ketamine_iv", "day3"): (0.479, 0.238, 10),  # Han 2016, 72 h: 47.9% / 23.8%
    ("ketamine_iv", "day7"): (0.398, 0.262, 10),  # Han 2016: 39.8% / 26.2%
    ("placebo_iv", "40min"): (0.08, 0.02, 10),    # I
    ("placebo_iv", "4h"): (0.14, 0.04, 10),       # I
    ("placebo_iv", "24h"): (0.20, 0.07, 10),      # RCT range 12-28% (Taiwan 11.9%, Murrough 28%)
    ("placebo_iv", "day3"): (0.18, 0.07, 10),     # I
    ("placebo_iv", "day7"): (0.15, 0.07, 10),     # I
    ("esketamine_in", "day2"): (0.173, 0.07, 12),  # Turkoz 2021 pooled TRANSFORM: 17.3%
    ("esketamine_in", "day7"): (0.35, 0.18, 12),   # I
    ("esketamine_in", "day28"): (0.587, 0.40, 12),  # Turkoz 2021: 58.7%; TRANSFORM-1/2 remission 36-53%
    ("placebo_in", "day2"): (0.094, 0.04, 12),     # Turkoz 2021: 9.4%
    ("placebo_in", "day7"): (0.25, 0.12, 12),      # I
    ("placebo_in", "day28"): (0.452, 0.31, 12),    # Turkoz 2021: 45.2%; TRANSFORM remission ~31%
}

LITERATURE_EFFECTS: dict[str, float] = {
    "family_history_aud": 0.30,   # Niciu 2014: std beta 0.27-0.41
    "bmi": 0.25,                  # Niciu 2014: std beta 0.30-0.37 acutely
    "benzodiazepine": -0.25,      # Frye/Czech 2020; Feeney 2023 (dose attenuates)
    "bdnf_met_carrier": -0.25,    # Laje 2012
    "prior_suicide_attempt": -0.12,  # Niciu 2014: day 7 only, beta 0.28
    "madrs_baseline": -0.10,      # JAD 2021 CART: higher severity, less response
    "log_episode_months": -0.10,  # JAD 2021 CART: longer episode, less response
    "d_serine_umol_l": -0.10,     # Moaddel 2014: lower D-serine, response (n=21, unreplicated)
}

LITERATURE_PROGNOSTIC: dict[str, float] = {
    "n_failed_treatments": -0.10,  # STAR*D (Rush 2006): remission falls with each failed step, on any treatment
}

# For the benefit benchmark: four clear drug-arm modifiers and two prognostic factors, so that
# roles and benefit can be checked at ~800 courses (the literature effects need thousands).
BENEFIT_EFFECTS = {"family_history_aud": 0.80, "bmi": 0.75, "benzodiazepine": -0.75, "bdnf_met_carrier": -0.75}
BENEFIT_PROGNOSTIC = {"n_failed_treatments": -0.35, "madrs_baseline": -0.30}


class EffectScale(StrEnum):
    """The scale on which the drug's effect is planted."""

    PROBIT = "probit"                    # drug intercept (+ predictive effects) added to the probit predictor
    RISK_DIFFERENCE = "risk_difference"  # p_drug = p_placebo + effect_size, for every patient
    RISK_RATIO = "risk_ratio"            # p_drug = effect_size * p_placebo, for every patient
    LOG_ODDS = "log_odds"                # logit p_drug = logit p_placebo + effect_size, for every patient


P = TypeVar("P", float, "NDArray[np.float64]")


def drug_probability(scale: EffectScale, effect_size: float, p_placebo: P) -> P:
    """The drug-arm response probability on a risk scale; plain arithmetic, so floats and arrays alike."""
    if scale is EffectScale.RISK_DIFFERENCE:
        return p_placebo + effect_size
    if scale is EffectScale.RISK_RATIO:
        return p_placebo * effect_size
    if scale is EffectScale.LOG_ODDS:  # expit(logit p + a), written without numpy
        return p_placebo / (p_placebo + (1.0 - p_placebo) * math.exp(-effect_size))
    raise ValueError("on the probit scale the drug acts through the linear predictor, not the probability")


@dataclass(frozen=True)
class Scenario:
    """Planted truth of one synthetic scenario."""

    name: str
    description: str
    rates: Rates = field(default_factory=lambda: dict(LITERATURE_RATES))
    effects: dict[str, float] = field(default_factory=lambda: dict(LITERATURE_EFFECTS))
    prognostic: dict[str, float] = field(default_factory=lambda: dict(LITERATURE_PROGNOSTIC))
    prior_ect_drug_scale: float = 0.5   # PMC3100439: d=0.50 ECT-resistant vs d=1.00 ECT-naive
    site_sd: float = 0.15               # probit SD of between-site shifts in response
    timepoint_correlation: float = 0.6  # shared latent within a course across timepoints
    placebo_only: dict[str, float] = field(default_factory=dict)  # probit per SD, placebo courses only
    scale: EffectScale = EffectScale.PROBIT
    effect_size: float = 0.0            # the drug's constant effect on a risk scale (unused on PROBIT)
    placebo_ceiling: float = 1.0        # p_placebo = ceiling * Phi(predictor): room left for the drug below 1
    durability: Durability | None = None  # repeated-dose courses with relapse follow-up and planted tolerability

    def __post_init__(self) -> None:
        # A risk-scale scenario whose drug probability could pass 1 would need clipping, and a clip
        # breaks the planted constant effect; predictive effects and the ECT scaling act through the
        # drug intercept, which a risk scale does not have.
        if any(r >= self.placebo_ceiling for (arm, _), (r, _, _) in self.rates.items() if arm.startswith("placebo")):
            raise ValueError(f"{self.name}: a placebo rate at or above the placebo ceiling cannot be calibrated")
        if self.scale is EffectScale.PROBIT:
            if self.placebo_ceiling != 1.0:
                raise ValueError(f"{self.name}: a placebo ceiling needs a risk scale")
            return
        if self.effects or self.prior_ect_drug_scale != 1.0:
            raise ValueError(f"{self.name}: predictive effects and ECT scaling exist on the probit scale only")
        if not 0.0 < drug_probability(self.scale, self.effect_size, self.placebo_ceiling) <= 1.0:
            raise ValueError(f"{self.name}: the drug probability must stay within (0, 1] at the placebo ceiling")


def _constant_rates(response: float, remission: float) -> Rates:
    return {key: (response, remission, 10) for key in LITERATURE_RATES}


_PLACEBO_OF = {"ketamine_iv": "placebo_iv", "esketamine_in": "placebo_in"}


# constant_log_odds: each drug arm's mean of expit(logit p_placebo + 1.5) over the scenario's own placebo
# risks (a 200,000-course cohort); the map is not linear, so the map of the mean placebo rate would be off
_LOG_ODDS_DRUG_RESPONSE = {("ketamine_iv", "40min"): 0.198, ("ketamine_iv", "4h"): 0.303, ("ketamine_iv", "24h"): 0.392,
                           ("ketamine_iv", "day3"): 0.363, ("ketamine_iv", "day7"): 0.319,
                           ("esketamine_in", "day2"): 0.222, ("esketamine_in", "day7"): 0.456,
                           ("esketamine_in", "day28"): 0.668}


def _risk_scale_rates(scale: EffectScale, effect_size: float) -> Rates:
    """Literature placebo rates; each drug rate follows from its placebo rate, as the risk scale implies.

    On the risk-difference and risk-ratio scales the map is linear in p_placebo, so the drug arm's mean
    is the map of the placebo arm's mean and these rates hold in expectation; on the log-odds scale the
    drug rates are measured means (``_LOG_ODDS_DRUG_RESPONSE``). Drug remission keeps the literature
    remission/response ratio.
    """
    out = dict(LITERATURE_RATES)
    for (arm, tp), (resp, rem, thr) in LITERATURE_RATES.items():
        if not arm.startswith("placebo"):
            p = (_LOG_ODDS_DRUG_RESPONSE[(arm, tp)] if scale is EffectScale.LOG_ODDS
                 else drug_probability(scale, effect_size, LITERATURE_RATES[(_PLACEBO_OF[arm], tp)][0]))
            out[(arm, tp)] = (p, p * rem / resp, thr)
    return out


PLACEBO_PROGNOSIS = {"n_failed_treatments": -0.6, "madrs_baseline": -0.5, "bmi": 0.5}
# the benefit suite's placebo-driven case: weaker, so that plain learners rank true benefit with Spearman
# 0.75-0.9 at 1,400 courses, as on the independent generator that found the failure (T-learner 0.78)
PLACEBO_DRIVEN = {"n_failed_treatments": -0.35, "madrs_baseline": -0.3, "bmi": 0.3}
RISK_PROGNOSTIC = {"n_failed_treatments": -0.8, "madrs_baseline": -0.6}


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("literature", "effects as published: weak predictors, realistic AUROC ceiling"),
        Scenario(
            "strong", "same structure, effects x3.5: for demos and for checking the pipeline finds signal",
            effects={k: 3.5 * v for k, v in LITERATURE_EFFECTS.items()},
            prognostic={k: 3.5 * v for k, v in LITERATURE_PROGNOSTIC.items()},
        ),
        Scenario(
            "null", "outcome independent of every column, arm included: the pipeline must find nothing",
            rates=_constant_rates(0.35, 0.15), effects={}, prognostic={}, prior_ect_drug_scale=1.0, site_sd=0.0,
        ),
        Scenario(
            "benefit", "four clear drug-arm modifiers and two prognostic factors: benefit and roles have a known truth",
            effects=dict(BENEFIT_EFFECTS), prognostic=dict(BENEFIT_PROGNOSTIC), prior_ect_drug_scale=1.0,
        ),
        Scenario(
            "constant_effect", "the drug shifts everyone's probit by the same amount, prognostic factors act on "
            "every arm: no feature modifies the effect, so none may be called predictive",
            effects={}, prognostic=dict(BENEFIT_PROGNOSTIC), prior_ect_drug_scale=1.0,
        ),
        Scenario(
            "high_placebo", "anaesthesia-masked trial (Lii 2023): placebo 24 h response 50%, ketamine 60%",
            rates=dict(LITERATURE_RATES) | {
                ("ketamine_iv", "24h"): (0.60, 0.50, 12), ("placebo_iv", "24h"): (0.50, 0.35, 12),
                ("ketamine_iv", "day7"): (0.316, 0.20, 12), ("placebo_iv", "day7"): (0.368, 0.20, 12),
                ("placebo_iv", "40min"): (0.25, 0.08, 10), ("placebo_iv", "4h"): (0.40, 0.15, 10),
                ("placebo_iv", "day3"): (0.45, 0.25, 10),
            },
        ),
        Scenario(
            "placebo_prognosis", "features predict the placebo response only; the drug response is the same for "
            "everyone, so within a drug arm no model beats AUROC 0.5 and every benefit difference is placebo's",
            effects={}, prognostic={}, placebo_only=dict(PLACEBO_PROGNOSIS), prior_ect_drug_scale=1.0, site_sd=0.0,
        ),
        Scenario(
            "placebo_driven", "benefit driven by placebo prognosis, milder than placebo_prognosis: features predict "
            "the placebo response only (true benefit SD about 0.14 at the IV sites), the drug response is the same "
            "for everyone",
            effects={}, prognostic={}, placebo_only=dict(PLACEBO_DRIVEN), prior_ect_drug_scale=1.0, site_sd=0.0,
        ),
        Scenario(
            "constant_risk_difference", "every patient's benefit is +0.25 on the probability scale "
            "(p_drug = p_placebo + 0.25, p_placebo = 0.72 * Phi(predictor)) under strong prognosis: no feature "
            "modifies the absolute effect; drug rates are placebo + 0.25, not the literature's",
            rates=_risk_scale_rates(EffectScale.RISK_DIFFERENCE, 0.25), effects={}, prognostic=dict(RISK_PROGNOSTIC),
            prior_ect_drug_scale=1.0, site_sd=0.0, scale=EffectScale.RISK_DIFFERENCE, effect_size=0.25,
            placebo_ceiling=0.72,
        ),
        Scenario(
            "constant_log_odds", "every patient's drug effect is +1.5 on the log-odds scale (odds ratio 4.5; "
            "logit p_drug = logit p_placebo + 1.5) under strong prognosis: no feature modifies the log odds "
            "ratio, yet the absolute benefit varies through baseline risk alone (largest near p_placebo 0.32)",
            rates=_risk_scale_rates(EffectScale.LOG_ODDS, 1.5), effects={}, prognostic=dict(RISK_PROGNOSTIC),
            prior_ect_drug_scale=1.0, site_sd=0.0, scale=EffectScale.LOG_ODDS, effect_size=1.5,
        ),
        Scenario(
            "constant_risk_ratio", "every patient's risk ratio is 1.8 (p_drug = 1.8 * p_placebo, p_placebo = "
            "0.5 * Phi(predictor)) under strong prognosis: the absolute benefit (0.8 * p_placebo) varies through "
            "baseline risk alone, no feature modifies the log risk ratio; drug rates are 1.8 x placebo",
            rates=_risk_scale_rates(EffectScale.RISK_RATIO, 1.8), effects={}, prognostic=dict(RISK_PROGNOSTIC),
            prior_ect_drug_scale=1.0, site_sd=0.0, scale=EffectScale.RISK_RATIO, effect_size=1.8,
            placebo_ceiling=0.5,
        ),
        Scenario(
            "durability", "repeated-dose courses (6 IV infusions, 8 esketamine sessions) with end-of-course "
            "response, relapse follow-up of responders under planted proportional hazards, and tolerability "
            "driven by age, BMI, hypertension, dose and drug",
            rates=dict(LITERATURE_RATES) | COURSE_RATES, durability=Durability(),
        ),
        Scenario(
            "durability_null", "the durability design with no patient factor in the relapse hazard: only the "
            "arm sets it (drug vs placebo HR 0.49 kept), so no model may find a durability predictor",
            rates=dict(LITERATURE_RATES) | COURSE_RATES, durability=Durability(prognostic={}, drug_modified={}),
        ),
    )
}

# Where the benefit of the drug over placebo comes from, one scenario per source (and none): the
# benefit benchmark and tests run the benefit model on each against its oracle.
BENEFIT_SUITE = ("benefit", "constant_log_odds", "constant_risk_difference", "placebo_driven", "null")

# Nulls planted in every scenario: columns generated but given no effect on response.
NULL_FEATURES = ("age", "sex", "il6_pg_ml", "crp_mg_l", "tnf_alpha_pg_ml", "kynurenine_umol_l",
                 "eeg_gamma_power_db", "glx_acc_mmol", "anxious_depression", "lithium", "shaps_baseline")


def get_scenario(name: str) -> Scenario:
    """Look a scenario up by name; ValueError lists the known ones."""
    if name not in SCENARIOS:
        raise ValueError(f"unknown scenario '{name}'; choose one of {', '.join(SCENARIOS)}")
    return SCENARIOS[name]

