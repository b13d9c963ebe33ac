"""The planted truth of the durability scenarios: repeated-dose courses, relapse and tolerability.

Every number is a published figure (source beside it, status as in ``docs/synthetic-calibration.md``)
or marked ``I``: our own interpolation or prior. Like the scenario table, this module stays free of
numpy, so ``synth --describe`` reads it without loading the generator.

Relapse among end-of-course responders follows a Weibull proportional-hazards model,
``H(t) = (t / 28 days) ** shape * exp(relapse_log_hazard)``, with
``relapse_log_hazard = arm term + prognostic terms (every arm) + drug-modified terms (drug arms only)``
on the standardised drivers of :func:`features.synthetic.covariates.standardised_drivers` (log-HR per SD).
So ``exp(-exp(relapse_log_hazard))`` is the probability of staying relapse-free for 28 days.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# end of course: IV ketamine 6 infusions 3x/week over ~12 days (Murrough 2013; Zheng 2019), esketamine
# 8 sessions twice weekly over 4 weeks (TRANSFORM); the end-of-course visit of each design
COURSE_DOSES = {"iv": 6, "in": 8}
END_OF_COURSE = {"iv": "day14", "in": "day28"}
IV_DOSES_MG_PER_KG = (0.5, 1.0)   # Fava 2018 arms that beat midazolam
IV_HIGH_DOSE_SHARE = 0.2          # I: most services give 0.5 mg/kg
ESK_DOSES_MG = (56, 84)           # TRANSFORM-1: 56 or 84 mg
ESK_HIGH_DOSE_SHARE = 0.5         # I
IV_DROPOUT = 0.10                 # I: public clinic dropout 11.27% (S*)
HYPERTENSION_LOGIT = (-0.62, 0.05)  # I: intercept at age 46, per year; ~36% overall (Emory: 36.1% hypertensive, S*)

# dose-to-response trajectory of an IV course: P(responded by infusion 1) and the share of the
# end-of-course responders who had responded by infusion 3 (median infusions to response 3)
RESPONSE_AFTER_FIRST_DOSE = 0.13  # Zheng 2019: 13.0% after infusion 1 (S*)
RESPONDED_BY_THIRD_DOSE = 0.6     # I: puts the median at infusion 3 (Phillips 2019: median 3, S)

CADSS_THRESHOLD = 5  # dissociation := CADSS >= 5 (total > 4): the definition the harm rates are calibrated to (I)

# harm -> arm -> probability in the reference population (SBP: adults < 65, then >= 65)
HARM_RATES: dict[str, dict[str, float]] = {
    # Spravato label pooled short-term TRD: dissociation 41% vs 9%, nausea 28% vs 9% (S);
    # IV: derealisation 69.0% vs 16.7% on midazolam (Taiwan suicidal-TRD RCT, S); IV nausea 6-10% (Freeman 2019, S)
    "dissociation": {"esketamine_in": 0.41, "placebo_in": 0.09, "ketamine_iv": 0.69, "placebo_iv": 0.167},
    "nausea": {"esketamine_in": 0.28, "placebo_in": 0.09, "ketamine_iv": 0.10, "placebo_iv": 0.05},
    # label Table 6, SBP rise >= 40 mmHg: < 65 y 8% vs 0.5%, >= 65 y 17% vs 2% (S); IV figures I
    "sbp_surge": {"esketamine_in": 0.08, "placebo_in": 0.005, "ketamine_iv": 0.01, "placebo_iv": 0.002},
    "sbp_surge_65": {"esketamine_in": 0.17, "placebo_in": 0.02, "ketamine_iv": 0.03, "placebo_iv": 0.005},
}
# probit coefficients (I; directions from the China IV cohort and the label where they exist): per 10
# years of age from 46, per SD of log BMI, per unit of the 0/1 flags; 'dose' is the higher dose step
# (1.0 vs 0.5 mg/kg, 84 vs 56 mg) and acts on drug courses only
HARM_EFFECTS: dict[str, dict[str, float]] = {
    "dissociation": {"dose": 0.35, "age10": -0.15, "bmi": -0.10},
    "sbp_surge": {"dose": 0.25, "hypertension": 0.35, "bmi": 0.10},  # + an age >= 65 term solved per arm
    "nausea": {"dose": 0.20, "age10": -0.15, "female": 0.10},
}
# SBP change below a surge: normal with these arm means (mmHg) plus shifts, SD 7 (I). IV ketamine: mean peak
# rise +3.3 (Riva-Posse 2018, S*) to +7.4 (China, S*), larger with age >= 50, hypertension, dissociation, dose
SBP_MEAN = {"ketamine_iv": 5.0, "esketamine_in": 8.0, "placebo_iv": 1.0, "placebo_in": 2.0}
SBP_SHIFTS = {"age50": 2.0, "hypertension": 3.0, "dissociation": 2.0, "dose": 3.0}
SBP_SD = 7.0

# prognostic: every arm (I; direction of chronicity and treatment resistance as for response, STAR*D)
DURABILITY_PROGNOSTIC = {"n_failed_treatments": 0.5, "log_episode_months": 0.4, "prior_suicide_attempt": 0.4}
# drug-modified: drug arms only (I; extrapolated from the acute moderators Feeney 2023 and PMC3100439, ECT
# non-responders: half the effect). Both fully observed: a modifier with missing values (20% of genotypes) caps
# what any model can recover below the oracle, which the acceptance check compares against
DURABILITY_MODIFIERS = {"benzodiazepine": 0.5, "prior_ect": 0.5}


@dataclass(frozen=True)
class Durability:
    """Relapse truth of a durability scenario (log-HR per SD of the standardised driver)."""

    prognostic: dict[str, float] = field(default_factory=lambda: dict(DURABILITY_PROGNOSTIC))
    drug_modified: dict[str, float] = field(default_factory=lambda: dict(DURABILITY_MODIFIERS))
    hr_drug_vs_placebo: float = 0.49    # SUSTAIN-1 (Daly 2019): HR 0.49 (0.29-0.84), S
    iv_median_days: float = 18.0        # 6-infusion open label (Murrough 2013): median time to relapse 18 d, S*
    # McInnes 2022 real world (maintenance): ~80% relapse-free at 4 weeks, ~60% at 8 weeks, S
    maintained_relapse_free: tuple[tuple[float, float], tuple[float, float]] = ((28.0, 0.80), (56.0, 0.60))
    followed_share: float = 0.85        # I: responders entered into follow-up
    follow_up_days: int = 84            # I: administrative end of follow-up (12 weeks)
    lost_by_end: float = 0.10           # I: share lost to follow-up by the administrative end


# the durability designs' end-of-course rates: (response, remission, threshold), merged into the scenario's rates
COURSE_RATES = {
    ("ketamine_iv", "day14"): (0.675, 0.481, 10),  # Zheng 2019 after 6 infusions: 67.5% / 48.1% (S*)
    ("placebo_iv", "day14"): (0.25, 0.10, 10),     # I: 0.2-0.3 after 6 midazolam infusions
}
