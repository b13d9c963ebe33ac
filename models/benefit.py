"""Benefit learners: each course's p(response | drug) - p(response | placebo), for one active arm.

One declarative table (:data:`LEARNERS`) read by training, the logged model and the contract
tests, like the family registry. Each learner is fit on the courses of one active arm and the
placebo courses of the sites that give it, with ``treated`` = 1 for the drug course:

* ``s_learner``: one logistic model with the drug indicator and centred feature x drug terms
  (the linear families' fitted tier); benefit = its prediction with the arm set, minus with it unset.
* ``t_learner``: econml's ``TLearner``, a logistic model per arm: the placebo arm's model is as
  flexible as the drug arm's, so prognosis on placebo becomes benefit;
* ``x_learner``: econml's ``XLearner``: per-arm logistic outcome models, imputed individual effects
  regressed on the features by an elastic net per arm, mixed by the propensity;
* ``path``: risk modelling (the PATH statement, Kent et al. 2020): a risk score fitted on both arms
  with the arm as a covariate (a score fitted on placebo courses alone exaggerates heterogeneity),
  then response on the arm, the score and (a candidate) their interaction: benefit as a function of
  predicted placebo-arm risk;
* ``dr_learner``: econml's ``DRLearner``, doubly-robust pseudo-outcomes regressed on the features
  by a linear final stage; outcome nuisance logistic, propensity the allocation ratio.

Training picks one and rescales it (:class:`CalibratedBenefit`).

Learners take each training course's patient (*groups*: the DR-learner's internal cross-fitting keeps a
crossover patient's two courses on one side) and propensity *e* (the probability of the drug course) as data:
the training code supplies the allocation ratio of the course's design stratum (site x parallel or
crossover: a crossover course is 1:1 whatever the parallel ratio) for a randomised trial, or an
in-fold estimate for a cohort that was not (``benefit.propensity``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ARM_COLUMNS, ARM_DOSE, ARM_ROUTE

# imported here too: models logged before the split pickled these classes under this module's name
from ketamine_response.models.benefit_estimators import (
    KnownPropensity,
    ProbabilityRegressor,
    RiskModelling,
    TunedLogistic,
    fit_sharing_transform,
    numeric_pipeline,
    penalised_logistic,
)
from ketamine_response.models.families import linear_pipeline

Propensity = Literal["allocation", "estimated"]


def arm_column(arm: str) -> str:
    """The indicator column of an active arm in the feature table."""
    return f"arm_{arm}"


def with_arm(X: pd.DataFrame, arm: str | None) -> pd.DataFrame:
    """*X* as if every course had been given *arm* (None: placebo, every arm indicator 0), with what comes with the
    arm: a drug's route and, for a course that had another arm, the drug's standard dose; placebo has no dose.
    Changing the indicator alone would pair a drug with a placebo's missing dose (or placebo with a dose), a
    combination no training course had."""
    out = X.copy()
    for column in ARM_COLUMNS:
        if column in out:
            out[column] = 1.0 if arm is not None and column == arm_column(arm) else 0.0
    if arm is not None and "route_intranasal" in out:
        out["route_intranasal"] = ARM_ROUTE[arm]
    for drug, (column, standard) in ARM_DOSE.items():
        if column in out:
            had = X[arm_column(drug)].to_numpy() == 1 if arm_column(drug) in X else np.zeros(len(X), bool)
            out[column] = np.where(arm == drug, np.where(had, X[column].to_numpy(dtype=float), standard), np.nan)
    return out


def covariates(X: pd.DataFrame) -> pd.DataFrame:
    """The features without the arm indicators: what the effect may depend on."""
    return X[[c for c in X.columns if c not in ARM_COLUMNS]]


@dataclass
class BenefitModel:
    """A fitted benefit learner for one active arm; ``effect`` and ``probabilities`` take feature tables."""

    learner: str
    arm: str
    estimator: Any
    columns: tuple[str, ...]  # the feature columns it was fitted on (a scoring table may hold more)
    numeric: Any = None  # the in-fold imputer/scaler of the econml learners
    params: dict[str, Any] = field(default_factory=dict)  # the candidate's hyperparameters (refit on resamples)

    def _x(self, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(self.numeric.transform(covariates(X[list(self.columns)])))

    def probabilities(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
        """(p on the drug, p on placebo) per course, where the learner models both arms' outcomes."""
        X = X[list(self.columns)]
        if self.learner == "s_learner":
            return (self.estimator.predict_proba(with_arm(X, self.arm))[:, 1],
                    self.estimator.predict_proba(with_arm(X, None))[:, 1])
        if self.learner == "t_learner":
            x = self._x(X)
            return self.estimator.models[1].predict(x), self.estimator.models[0].predict(x)
        if self.learner == "path":
            return self.estimator.probabilities(self._x(X))
        return None

    def effect(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted benefit of the drug over placebo, per course (probability scale)."""
        both = self.probabilities(X)
        if both is not None:
            return both[0] - both[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            # a linear final stage is unbounded; a difference of probabilities lies in [-1, 1], and
            # projecting onto it can only bring an estimate closer to the truth
            return np.clip(np.asarray(self.estimator.effect(self._x(X))).ravel(), -1.0, 1.0)


@dataclass
class CalibratedBenefit:
    """A learner's benefit rescaled: ``intercept + slope * (effect - centre)``.

    Training sets *slope* (in (0, 1]: the share of the learner's spread of benefit that the out-of-fold
    tests support, at least *least*) and *intercept* (the doubly robust average benefit); *centre* is the
    learner's mean benefit over the training courses. The ranking of the courses is the learner's.
    """

    arm: str
    model: BenefitModel
    slope: float
    centre: float      # the learner's mean benefit over the training courses
    intercept: float
    least: float = 0.0  # the least slope training keeps: a slope there is a bound, not the data's estimate
    # the same learner and rescaling refit on patient bootstrap resamples: the benefit's interval (models/intervals.py)
    replicates: list[CalibratedBenefit] = field(default_factory=list)

    @property
    def learner(self) -> str:
        """What predicts, in words: ``t_learner x 0.85``, ``t_learner x 0.10 (least kept)``."""
        return f"{self.model.learner} x {self.slope:.2f}" + (" (least kept)" if self.slope <= self.least else "")

    def probabilities(self, X: pd.DataFrame) -> None:
        return None

    def effect(self, X: pd.DataFrame) -> np.ndarray:
        """Predicted benefit of the drug over placebo, per course (probability scale)."""
        return np.clip(self.intercept + self.slope * (self.model.effect(X) - self.centre), -1.0, 1.0)


def _fit_s(X: pd.DataFrame, y: np.ndarray, treated: np.ndarray, arm: str, seed: int, e: np.ndarray,
           groups: np.ndarray | None = None, C: float = 0.1, l1_ratio: float = 1.0) -> BenefitModel:
    columns = tuple(c for c in X.columns if c not in ARM_COLUMNS or c == arm_column(arm))
    model = fit_sharing_transform(linear_pipeline(columns, penalised_logistic(seed, C, l1_ratio)), X, y)
    return BenefitModel("s_learner", arm, model, tuple(X.columns), params={"C": C, "l1_ratio": l1_ratio})


def _fit_t(X: pd.DataFrame, y: np.ndarray, treated: np.ndarray, arm: str, seed: int, e: np.ndarray,
           groups: np.ndarray | None = None) -> BenefitModel:
    from econml.metalearners import TLearner

    numeric = numeric_pipeline().fit(covariates(X))
    learner = TLearner(models=ProbabilityRegressor(TunedLogistic(random_state=seed)))  # cloned per arm, tuned per arm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        learner.fit(y, treated, X=np.asarray(numeric.transform(covariates(X))))
    return BenefitModel("t_learner", arm, learner, tuple(X.columns), numeric)


def _fit_x(X: pd.DataFrame, y: np.ndarray, treated: np.ndarray, arm: str, seed: int, e: np.ndarray,
           groups: np.ndarray | None = None, alpha: float = 0.01) -> BenefitModel:
    from econml.metalearners import XLearner
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import ElasticNet

    numeric = numeric_pipeline().fit(covariates(X))
    # the propensity mixes the two arms' effect models (g = e, Kunzel et al. 2019): the share of drug courses,
    # which is the allocation ratio of a randomised cohort; a non-randomised one still gets a valid mix
    learner = XLearner(models=ProbabilityRegressor(TunedLogistic(random_state=seed)),
                       cate_models=ElasticNet(alpha=alpha, l1_ratio=0.5, random_state=seed),
                       propensity_model=DummyClassifier(strategy="prior"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        learner.fit(y, treated, X=np.asarray(numeric.transform(covariates(X))))
    return BenefitModel("x_learner", arm, learner, tuple(X.columns), numeric, {"alpha": alpha})


def _fit_path(X: pd.DataFrame, y: np.ndarray, treated: np.ndarray, arm: str, seed: int, e: np.ndarray,
              groups: np.ndarray | None = None, C: float = 0.1, interaction: bool = True) -> BenefitModel:
    numeric = numeric_pipeline().fit(covariates(X))
    model = RiskModelling(C, interaction, seed).fit(np.asarray(numeric.transform(covariates(X))), y.astype(int),
                                                    treated.astype(float))
    return BenefitModel("path", arm, model, tuple(X.columns), numeric, {"C": C, "interaction": interaction})


def _fit_dr(X: pd.DataFrame, y: np.ndarray, treated: np.ndarray, arm: str, seed: int, e: np.ndarray,
            groups: np.ndarray | None = None) -> BenefitModel:
    from econml.dr import DRLearner

    numeric = numeric_pipeline().fit(covariates(X))
    # W carries the known propensity: KnownPropensity reads it back (the outcome model sees it as a covariate)
    learner = DRLearner(model_propensity=KnownPropensity(), model_regression=penalised_logistic(seed),
                        discrete_outcome=True, cv=2, random_state=seed, min_propensity=0.05)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        learner.fit(y.astype(int), treated.astype(int), X=np.asarray(numeric.transform(covariates(X))),
                    W=np.asarray(e, dtype=float).reshape(-1, 1), groups=groups)  # a patient's courses on one side
    return BenefitModel("dr_learner", arm, learner, tuple(X.columns), numeric)


Fitter = Callable[..., BenefitModel]


@dataclass(frozen=True)
class Learner:
    """A benefit learner: its fitting function and the hyperparameters searched in the inner loop."""

    name: str
    description: str
    fit: Fitter
    space: tuple[dict[str, Any], ...] = ({},)
    default: bool = True  # in the shipped config's benefit.learners


# L1 matters: only a few of ~30 features modify the effect, and ridge spreads weight over all of them
_SPARSE = tuple({"C": C, "l1_ratio": r} for C in (0.03, 0.1, 0.3) for r in (0.5, 1.0))
_ENTRIES = (
    Learner("s_learner", "S-learner: one elastic-net logistic model with the drug indicator and centred "
            "feature x drug terms", _fit_s, _SPARSE),
    Learner("t_learner", "T-learner (econml TLearner): an elastic-net logistic model per arm, the placebo arm's as "
            "flexible as the drug arm's, each arm's penalty tuned by its own log-loss", _fit_t),
    Learner("x_learner", "X-learner (econml XLearner): elastic-net logistic outcome model per arm (tuned per arm), imputed effects "
            "regressed by an elastic net per arm", _fit_x, ({"alpha": 0.01},)),
    Learner("path", "risk modelling (PATH): benefit as a function of predicted placebo-arm risk, from a risk score "
            "fitted on both arms", _fit_path, ({"interaction": False}, {"interaction": True})),
    Learner("dr_learner", "doubly-robust learner (econml DRLearner): logistic outcome model, allocation-ratio "
            "propensity, linear final stage; not in the default list: in this configuration (ridge outcome models, "
            "2-fold cross-fitting) it ranked true benefit worst on every scenario of benchmarks/benefit_learners.py",
            _fit_dr, default=False),
)
LEARNERS: dict[str, Learner] = {entry.name: entry for entry in _ENTRIES}
DEFAULT_LEARNERS = tuple(entry.name for entry in _ENTRIES if entry.default)


def get_learner(name: str) -> Learner:
    """The registered learner *name*; ValueError lists the known ones."""
    if name not in LEARNERS:
        raise ValueError(f"unknown benefit learner '{name}'; known: {', '.join(LEARNERS)}")
    return LEARNERS[name]
