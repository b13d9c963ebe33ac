"""Is the cohort big enough for the model it fits? Parameters counted honestly, and Riley et al.'s minimum.

Riley RD, Snell KIE, Ensor J, et al. Minimum sample size for developing a multivariable prediction
model: Part II, binary and time-to-event outcomes. Stat Med 2020;39:4441-4457 (criteria as implemented
in the R/Stata package pmsampsize):

1. expected uniform shrinkage S >= 0.9: n = P / ((S - 1) ln(1 - R2_CS / S));
2. optimism in Nagelkerke R2 <= delta = 0.05: S = R2_CS / (R2_CS + delta * max R2_CS), then as in 1;
3. the overall risk estimated within +-0.05: n = (1.96 / 0.05)^2 phi (1 - phi).

Continuous outcomes follow Part I (Riley et al. Stat Med 2019;38:1262-1275), criteria 1-3.

Written here because no maintained Python package implements pmsampsize; the formulas are the
paper's (checked against its worked example in the tests).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ketamine_response.features.tasks import TASKS, Task, TaskKind
from ketamine_response.models.families import get_family
from ketamine_response.pipelines.folds import Data

SHRINKAGE = 0.9
OPTIMISM = 0.05
MARGIN = 0.05
# Riley et al.'s fallback when nothing is known: a Nagelkerke R2 of 0.15, i.e. 15% of the maximum R2_CS
FALLBACK_NAGELKERKE = 0.15


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
        varies = np.nanstd(matrix, axis=0) > 0 if len(matrix) else np.zeros(0, bool)
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
    """Parameters, events per parameter and the Riley minimum for one training run."""

    courses: int
    events: int
    parameters: int
    r2_cs: float
    r2_source: str
    criteria: dict[str, int]
    min_events_per_parameter: float = 10.0
    task: Task = TASKS[TaskKind.BINARY]
    patients: int = 0  # Riley's n counts individuals: a crossover patient's two courses are not two people

    @property
    def events_per_parameter(self) -> float:
        """Events (the smaller outcome class) per parameter; courses per parameter for a continuous outcome."""
        informative = min(self.events, self.courses - self.events) if self.task.probabilities else self.courses
        return informative / max(self.parameters, 1)

    @property
    def minimum(self) -> int:
        return max(self.criteria.values())

    @property
    def below_minimum(self) -> bool:
        return self.patients < self.minimum or self.events_per_parameter < self.min_events_per_parameter

    def metrics(self) -> dict[str, float]:
        return {"n_parameters": float(self.parameters), "events_per_parameter": self.events_per_parameter,
                "min_courses_riley": float(self.minimum), "anticipated_r2_cs": self.r2_cs}

    def note(self) -> str:
        counted = (f"{self.events} events in {self.courses} courses of {self.patients} patients" if self.task.probabilities
                   else f"{self.courses} courses of {self.patients} patients (continuous outcome)")
        r2_name, per = self.task.r2_wording, self.task.size_unit
        text = (f"{counted}; the most flexible candidate model estimates "
                f"{self.parameters} parameters beyond the intercept ({self.events_per_parameter:.2f} {per} per "
                f"parameter; the config asks for {self.min_events_per_parameter:g}), chosen by a search over "
                f"families and hyperparameters. "
                f"Riley et al. 2020 minimum for an anticipated {r2_name} of "
                f"{self.r2_cs:.3f} ({self.r2_source}): {self.minimum} patients ("
                + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in self.criteria.items()) + ")")
        if not self.below_minimum:
            return text
        return (f"WARNING: too few patients or events for this model: {text}. Expect overfitting and unstable estimates; read "
                "the confidence intervals, not the point estimates. The registered version gets no alias.")


def assess(data: Data, families: tuple[str, ...], oof: np.ndarray, anticipated: str | float,
           min_events_per_parameter: float = 10.0) -> SampleSize:
    """Sample-size assessment; *anticipated* is an R2_CS from the config, or "auto" for the nested estimate."""
    y = data.y
    parameters = count_parameters(data, families)
    if not data.task.probabilities:  # Riley's rules for a continuous outcome
        return _assess_continuous(y, oof, parameters, anticipated, min_events_per_parameter, len(np.unique(data.patients)),
                                  data.task)
    prevalence = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    if anticipated == "auto":
        own = r2_cox_snell(y, oof)
        fallback = FALLBACK_NAGELKERKE * max_r2_cs(prevalence)
        r2, source = ((own, "the cohort's nested cross-validated estimate") if own > 0 else
                      (fallback, "Riley's fallback of Nagelkerke 0.15: the nested estimate is not above 0"))
    else:
        r2, source = float(anticipated), "from the config"
    r2 = min(r2, 0.99 * max_r2_cs(prevalence))
    return SampleSize(len(y), int(y.sum()), parameters, r2, source, riley_minimum(parameters, prevalence, r2),
                      min_events_per_parameter, patients=len(np.unique(data.patients)))


def _assess_continuous(y: np.ndarray, oof: np.ndarray, parameters: int, anticipated: str | float,
                       min_per_parameter: float, patients: int, task: Task) -> SampleSize:
    from ketamine_response.pipelines.evaluation.metrics import r2

    own = r2(y, oof)
    if anticipated != "auto":
        value, source = float(anticipated), "from the config"
    elif own > 0:
        value, source = own, "the cohort's nested cross-validated estimate"
    else:
        # an ad hoc choice: Riley's 15% fallback is stated for binary outcomes
        value, source = FALLBACK_NAGELKERKE, "a fallback of 0.15 (ad hoc): the nested estimate is not above 0"
    return SampleSize(len(y), len(y), parameters, value, source, riley_minimum_continuous(parameters, min(value, 0.99)),
                      min_per_parameter, task, patients=patients)
