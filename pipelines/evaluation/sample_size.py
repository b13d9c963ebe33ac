"""Is the cohort big enough for the model it fits? Parameters counted honestly, and Riley et al.'s minimum.

Riley RD, Snell KIE, Ensor J, et al. Minimum sample size for developing a multivariable prediction
model: Part II, binary and time-to-event outcomes. Stat Med 2020;39:4441-4457 (criteria as implemented
in the R/Stata package pmsampsize):

1. expected uniform shrinkage S >= 0.9: n = P / ((S - 1) ln(1 - R2_CS / S));
2. optimism in Nagelkerke R2 <= delta = 0.05: S = R2_CS / (R2_CS + delta * max R2_CS), then as in 1;
3. the overall risk estimated within +-0.05: n = (1.96 / 0.05)^2 phi (1 - phi).

A time to relapse follows Part II's time-to-event criteria (pmsampsize type "s"): 1 and 2 as above with the
maximum Cox-Snell R2 of an exponential null model, 1 - exp(2 (d ln d - d)) with d = E / n events per course
(pmsampsize's form since 1.0.2: it does not depend on the time unit), and 3 the relapse risk at 28 days
within +-0.05 under the exponential rate (pmsampsize reports that interval at the larger of 1 and 2; solving
it for n is our extension). With no prior durability model to anticipate from, R2_CS is 15% of its maximum,
the paper's conservative default.

Continuous outcomes follow Part I (Riley et al. Stat Med 2019;38:1262-1275), criteria 1-3.

The anticipated performance is prespecified in the config (``evaluation.anticipated_c_statistic`` for a
binary outcome, converted to a Cox-Snell R2 as pmsampsize's ``cstatistic`` option does: Riley RD, Van
Calster B, Collins GS. Stat Med 2021;40:859-864; ``evaluation.anticipated_r2`` for a continuous one). The
cohort's own nested cross-validated estimate is reported beside it and never feeds the minimum: a
minimum computed from the fit it is meant to judge would be circular, and a worse fit would lower it.

The roles table (treatment x feature interactions) gets its own power calculation,
:func:`interaction_sample_size`.

Written here because no maintained Python package implements pmsampsize; the formulas are the
paper's (checked against its worked example in the tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from ketamine_response.features.tasks import TASKS, Task, TaskKind
from ketamine_response.models.families import get_family
from ketamine_response.pipelines.folds import Data

if TYPE_CHECKING:
    from ketamine_response.pipelines.config import EvaluationConfig

SHRINKAGE = 0.9
OPTIMISM = 0.05
MARGIN = 0.05
POWER = 0.8  # the roles table's interaction test: 80% power at two-sided alpha 0.05
ALPHA = 0.05
PLACEBO = "placebo"
# Gauss-Hermite nodes for the C -> R2_CS conversion: the expectation pmsampsize's simulation estimates
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(120)


def count_parameters(data: Data, families: tuple[str, ...]) -> int:
    """The most parameters any candidate family estimates: non-constant columns after its fitted tier.

    The tier (winsorising, composite, missingness indicators, feature x arm terms) learns nothing
    from the labels, so fitting it on all courses only counts columns. Trees count their input
    columns (a tree's effective number of parameters has no simple count).
    """
    counts = [0]
    for name in families:
        family = get_family(name)
        if family.explainer == "constant":
            continue
        head = family.pipeline(tuple(data.X.columns), data.domains, {}, 0)[:-1]
        matrix = np.asarray(head.fit_transform(data.X), dtype=float)
        # max > min over the observed values: a column with no value at all (every biomarker blank) does not
        # vary, and fmax/fmin skip NaN without nanstd's "degrees of freedom" warning for such a column
        varies = np.fmax.reduce(matrix, axis=0) > np.fmin.reduce(matrix, axis=0) if len(matrix) else np.zeros(0, bool)
        counts.append(int(varies.sum()))
    return max(counts)


def max_r2_cs(prevalence: float) -> float:
    """The largest Cox-Snell R2 a model can reach for this outcome prevalence."""
    ln_null = prevalence * math.log(prevalence) + (1 - prevalence) * math.log(1 - prevalence)
    return 1 - math.exp(2 * ln_null)


def r2_cox_snell(y: np.ndarray, p: np.ndarray) -> float:
    """Cox-Snell R2 of probabilities *p* against the intercept-only model."""
    q = np.clip(p, 1e-12, 1 - 1e-12)
    phi = float(np.mean(y))
    ln_model = float(np.sum(y * np.log(q) + (1 - y) * np.log(1 - q)))
    ln_null = len(y) * (phi * math.log(phi) + (1 - phi) * math.log(1 - phi))
    return 1 - math.exp(2 * (ln_null - ln_model) / len(y))


def c_to_r2_cs(c_statistic: float, prevalence: float) -> float:
    """The Cox-Snell R2 implied by a C statistic at this prevalence (Riley, Van Calster & Collins 2021).

    pmsampsize's ``cstatistic`` option simulates a million courses whose linear predictor is N(0, 1) in
    non-events and N(mu, 1) in events, mu = sqrt(2) Phi^-1(C) (so the C statistic is C), fits the
    logistic calibration model of the outcome on that predictor and returns 1 - exp(-LR / n). With equal
    variances the true log-odds is linear in the predictor, logit(phi) + mu x - mu^2 / 2, so the fitted
    model is that line and LR / n converges to twice the expected log-likelihood gain per course. We
    compute that expectation by Gauss-Hermite quadrature: the simulation's limit, deterministic and fast.
    """
    mu = math.sqrt(2) * NormalDist().inv_cdf(c_statistic)
    offset = math.log(prevalence / (1 - prevalence)) - mu ** 2 / 2

    def mean_log_sigmoid(sign: float, centre: float) -> float:  # E[log sigmoid(sign * eta(x))], x ~ N(centre, 1)
        eta = offset + mu * (centre + _NODES)
        return float(np.sum(_WEIGHTS * -np.logaddexp(0, -sign * eta)) / math.sqrt(2 * math.pi))

    ll_model = prevalence * mean_log_sigmoid(1, mu) + (1 - prevalence) * mean_log_sigmoid(-1, 0)
    ll_null = prevalence * math.log(prevalence) + (1 - prevalence) * math.log(1 - prevalence)
    return 1 - math.exp(-2 * (ll_model - ll_null))


def interaction_sample_size(prevalence: float, delta: float, allocation: float = 0.5) -> int:
    """Patients needed to detect a treatment x feature interaction of *delta* (80% power, two-sided 0.05).

    The roles table tests, per standardised feature z, whether the drug's absolute benefit changes with z.
    In the linear probability model Y = b0 + b1 T + b2 z + b3 T z + e, the interaction b3 is that change
    per SD, and its variance is Var(Y | x) / (n Var(T) Var(z)) once T is independent of z (randomised)
    and z has mean 0, so

        n = (z_{1-alpha/2} + z_{power})^2 Var(Y | x) / (delta^2 Var(T) Var(z)),

    with Var(Y | x) ~ phi (1 - phi) (the event rate's Bernoulli variance: an upper bound once the main
    effects explain something), Var(T) = e (1 - e) for allocation e to the drug, and Var(z) = 1.
    Assumptions: normal approximation, one observation per patient (a crossover's within-patient
    contrast would need fewer), homoscedastic errors, and one feature tested at a time (the FDR control
    over many features needs more).
    """
    z = NormalDist().inv_cdf(1 - ALPHA / 2) + NormalDist().inv_cdf(POWER)
    return math.ceil(z ** 2 * prevalence * (1 - prevalence) / (delta ** 2 * allocation * (1 - allocation)))


def riley_minimum(parameters: int, prevalence: float, r2_cs: float) -> dict[str, int]:
    """The three criteria's minimum numbers of courses (binary outcome)."""
    def shrinkage_n(s: float) -> int:
        return math.ceil(parameters / ((s - 1) * math.log(1 - r2_cs / s)))

    s_optimism = r2_cs / (r2_cs + OPTIMISM * max_r2_cs(prevalence))
    return {"shrinkage": shrinkage_n(SHRINKAGE), "optimism": shrinkage_n(s_optimism),
            "overall_risk": math.ceil((1.96 / MARGIN) ** 2 * prevalence * (1 - prevalence))}


def riley_minimum_continuous(parameters: int, r2: float) -> dict[str, int]:
    """Criteria 1-3 for a continuous outcome (pmsampsize's type "c"): shrinkage >= 0.9, optimism in R2
    <= 0.05, residual variance within a factor 1.1. The fourth (the mean within a margin) needs the
    outcome's SD on the user's scale and is left out."""
    p = parameters

    def shrinkage(n: int) -> float:
        inner = (r2 * (n - p - 1) + p) / (n - 1)
        return 1 + (p - 2) / (n * math.log(1 - inner)) if 0 < inner < 1 else -math.inf

    low, high = p + 2, p + 3
    while shrinkage(high) < SHRINKAGE:  # the expected shrinkage rises with n: bracket, then bisect
        low, high = high, 2 * high
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if shrinkage(mid) >= SHRINKAGE else (mid, high)
    return {"shrinkage": high, "optimism": math.ceil(1 + p * (1 - r2) / OPTIMISM), "residual_variance": 234 + p}


@dataclass(frozen=True)
class SampleSize:
    """Parameters, events per parameter and the Riley minimum for one training run.

    The minimum comes from the anticipated performance (*r2_cs*: prespecified in the config, for a binary
    outcome converted from *anticipated_c*); *nested_r2* is the cohort's own out-of-fold estimate, shown
    beside it and never used. *roles_minimum* is the patients the roles table's interaction test needs
    (0: not computed, a continuous outcome).
    """

    courses: int
    events: int
    parameters: int
    r2_cs: float
    r2_source: str
    criteria: dict[str, int]
    min_events_per_parameter: float = 10.0
    task: Task = TASKS[TaskKind.BINARY]
    patients: int = 0  # Riley's n counts individuals: a crossover patient's two courses are not two people
    nested_r2: float = math.nan
    anticipated_c: float = math.nan
    roles_minimum: int = 0
    roles_interaction: float = 0.0

    @property
    def events_per_parameter(self) -> float:
        """Events (the smaller outcome class) per parameter; courses per parameter for a continuous outcome."""
        if self.task.probabilities:
            informative = min(self.events, self.courses - self.events)
        else:  # relapses for a time to event, courses for a continuous outcome
            informative = self.events if self.task.size_unit == "events" else self.courses
        return informative / max(self.parameters, 1)

    @property
    def minimum(self) -> int:
        return max(self.criteria.values())

    @property
    def below_minimum(self) -> bool:
        return self.patients < self.minimum or self.events_per_parameter < self.min_events_per_parameter

    def roles_exploratory(self, patients: int) -> bool:
        """Whether a roles table from *patients* patients is underpowered for the configured interaction."""
        return patients < self.roles_minimum

    def metrics(self) -> dict[str, float]:
        nested = "nested_r2_cs" if self.task.r2_wording == "Cox-Snell R2" else "nested_r2"
        out = {"n_parameters": float(self.parameters), "events_per_parameter": self.events_per_parameter,
               "min_courses_riley": float(self.minimum), "anticipated_r2_cs": self.r2_cs, nested: self.nested_r2}
        if self.task.probabilities:
            out |= {"anticipated_c_statistic": self.anticipated_c, "min_patients_roles": float(self.roles_minimum)}
        return out

    def note(self) -> str:
        counted = (f"{self.events} events in {self.courses} courses of {self.patients} patients" if self.task.probabilities
                   else f"{self.events} relapses in {self.courses} courses followed after a response, of {self.patients} "
                   "patients" if self.task.size_unit == "events"
                   else f"{self.courses} courses of {self.patients} patients (continuous outcome)")
        r2_name, per = self.task.r2_wording, self.task.size_unit
        text = (f"{counted}; the most flexible candidate model estimates "
                f"{self.parameters} parameters beyond the intercept ({self.events_per_parameter:.2f} {per} per "
                f"parameter; the config asks for {self.min_events_per_parameter:g}), chosen by a search over "
                f"families and hyperparameters. "
                f"Riley et al. 2020 minimum for an anticipated {r2_name} of "
                f"{self.r2_cs:.3f} ({self.r2_source}): {self.minimum} patients ("
                + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.criteria.items()) + "); "
                f"the cohort's own nested cross-validated {r2_name} is {self.nested_r2:.3f} (shown, not used)"
                + self._roles_sentence())
        if not self.below_minimum:
            return text
        return (f"WARNING: too few patients or events for this model: {text}. Expect overfitting and unstable estimates; read "
                "the confidence intervals, not the point estimates. The registered version gets no alias.")

    def _roles_sentence(self) -> str:
        if not self.roles_minimum:
            return ""
        verdict = "so the roles table is exploratory" if self.roles_exploratory(self.patients) else "which this cohort has"
        return (f". Detecting a treatment x feature interaction of {self.roles_interaction:g} in absolute benefit per SD "
                f"(80% power, two-sided alpha 0.05) needs {self.roles_minimum} patients, {verdict}")


def assess(data: Data, families: tuple[str, ...], oof: np.ndarray, evaluation: EvaluationConfig) -> SampleSize:
    """Sample-size assessment from the config's anticipated performance; *oof* only for the nested estimate shown beside it."""
    y = data.y
    parameters = count_parameters(data, families)
    patients = len(np.unique(data.patients))
    if data.task.kind is TaskKind.SURVIVAL:
        return _survival(data, parameters, patients, oof, evaluation)
    if not data.task.probabilities:  # Riley's rules for a continuous outcome
        from ketamine_response.pipelines.evaluation.metrics import r2

        value = float(evaluation.anticipated_r2)
        return SampleSize(len(y), len(y), parameters, value, "from the config", riley_minimum_continuous(parameters, value),
                          evaluation.min_events_per_predictor, data.task, patients, nested_r2=r2(y, oof))
    prevalence = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    c = float(evaluation.anticipated_c_statistic)
    r2_cs = min(c_to_r2_cs(c, prevalence), 0.99 * max_r2_cs(prevalence))
    source = f"converted from the config's anticipated C statistic {c:g} at this prevalence, Riley et al. 2021"
    treated = data.treatments != PLACEBO
    # the cohort's allocation when it has both arms; otherwise the 1:1 trial the roles table would need
    allocation = float(treated.mean()) if 0 < treated.sum() < len(treated) else 0.5
    return SampleSize(len(y), int(y.sum()), parameters, r2_cs, source, riley_minimum(parameters, prevalence, r2_cs),
                      evaluation.min_events_per_predictor, patients=patients, nested_r2=r2_cox_snell(y, oof), anticipated_c=c,
                      roles_minimum=interaction_sample_size(prevalence, evaluation.roles_interaction, allocation)
                      if data.task.benefit else 0,  # a harm has no benefit model, so no roles table
                      roles_interaction=evaluation.roles_interaction)


SURVIVAL_R2_SHARE = 0.15  # of the maximum Cox-Snell R2: Riley et al. 2020's default without a prior model


def max_r2_survival(events_per_course: float) -> float:
    """The largest Cox-Snell R2 of a time-to-event model with *events_per_course* events per course (pmsampsize)."""
    d = events_per_course
    return 1 - math.exp(2 * (d * math.log(d) - d))


def riley_minimum_survival(parameters: int, rate: float, mean_followup: float, r2_cs: float,
                           day: float = 28.0) -> dict[str, int]:
    """The three criteria's minimum numbers of courses for a time to event (Riley et al. 2020, Part II).

    *rate* is relapses per person-day and *mean_followup* the mean days of follow-up (exponential null model).
    """
    max_r2 = max_r2_survival(rate * mean_followup)

    def shrinkage_n(s: float) -> int:
        return math.ceil(parameters / ((s - 1) * math.log(1 - r2_cs / s)))

    # the 95% interval of the rate, rate +- 1.96 sqrt(rate / (n mean_followup)), must keep the 28-day risk
    # 1 - exp(-rate day) within the margin on both sides: the largest half-width of the rate that does, then n
    free = math.exp(-rate * day)
    up = -math.log(1 - MARGIN / free) / day if free > MARGIN else math.inf
    half = min(up, math.log(1 + MARGIN / free) / day)
    return {"shrinkage": shrinkage_n(SHRINKAGE), "optimism": shrinkage_n(r2_cs / (r2_cs + OPTIMISM * max_r2)),
            "risk_at_28_days": math.ceil(1.96 ** 2 * rate / (mean_followup * half ** 2))}


def _survival(data: Data, parameters: int, patients: int, oof: np.ndarray, evaluation: EvaluationConfig) -> SampleSize:
    from ketamine_response.pipelines.evaluation.survival import partial_log_likelihood

    y = data.y
    events, days = int(y["event"].sum()), float(y["time"].sum())
    rate, followup = max(events, 1) / max(days, 1.0), float(y["time"].mean())
    r2_cs = SURVIVAL_R2_SHARE * max_r2_survival(events / len(y))
    gain = events * (partial_log_likelihood(y, oof) - partial_log_likelihood(y, np.full(len(y), 0.5)))
    nested = 1 - math.exp(-2 * gain / len(y)) if np.isfinite(gain) else math.nan
    return SampleSize(len(y), events, parameters, r2_cs, f"{SURVIVAL_R2_SHARE:.0%} of the maximum for this relapse rate",
                      riley_minimum_survival(parameters, rate, followup, r2_cs), evaluation.min_events_per_predictor,
                      data.task, patients, nested_r2=nested)
