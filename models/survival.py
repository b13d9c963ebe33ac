"""Durability models: time to relapse after a response, as scikit-learn estimators on scikit-survival.

Each takes the structured ``(event, time)`` label scikit-survival uses and predicts the probability of
relapse within the first horizon (28 days): one number per course that ranks like the model's risk score
(every family here has proportional hazards, so the 28-day cumulative hazard is monotone in it) and that
the in-fold machinery pools, tests and calibrates like any other prediction. ``survival`` gives the whole
relapse-free curve (scoring, the integrated Brier score), ``decision_function`` the log relapse hazard
that SHAP explains.

Why wrappers: scikit-survival's estimators return a risk score from ``predict`` and step functions from
``predict_survival_function``; the pipeline's folds, scorer and logged model read one ``predict``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from ketamine_response.features.tasks import HORIZONS


def _step(times: np.ndarray, curves: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Right-continuous step functions (rows of *curves* on *times*) evaluated at *at*; 1 before the first time,
    the last value after the last (a curve is not extrapolated past the follow-up it was fitted on)."""
    index = np.searchsorted(times, at, side="right") - 1
    padded = np.hstack([np.ones((curves.shape[0], 1)), curves])
    return np.asarray(padded[:, index + 1], dtype=float)


class RelapseModel(BaseEstimator):
    """Shared behaviour: the survival curve, the horizon probability, the median."""

    times_: np.ndarray

    def _curves(self, X: Any) -> np.ndarray:
        raise NotImplementedError

    def survival(self, X: Any, at: np.ndarray | tuple[int, ...]) -> np.ndarray:
        """Relapse-free probability of each course at each day in *at* (rows = courses)."""
        return _step(self.times_, self._curves(X), np.asarray(at, dtype=float))

    def predict(self, X: Any) -> np.ndarray:
        """The probability of relapse within the first horizon (28 days)."""
        return 1.0 - self.survival(X, (HORIZONS[0],))[:, 0]

    def median_days(self, X: Any) -> np.ndarray:
        """The first day the relapse-free probability is at or below one half; NaN if not reached in follow-up."""
        curves = self._curves(X)
        below = curves <= 0.5
        first = np.argmax(below, axis=1)
        return np.where(below.any(axis=1), self.times_[first], np.nan)


class CoxnetRelapse(RelapseModel):
    """Elastic-net penalised Cox model (scikit-survival ``CoxnetSurvivalAnalysis``) at one penalty, with its
    Breslow baseline hazard for the curves."""

    def __init__(self, alpha: float = 0.05, l1_ratio: float = 0.5):
        self.alpha = alpha
        self.l1_ratio = l1_ratio

    def fit(self, X: Any, y: np.ndarray) -> CoxnetRelapse:
        from sksurv.linear_model import CoxnetSurvivalAnalysis
        from sksurv.linear_model.coxph import BreslowEstimator
        from sksurv.util import check_y_survival

        X = np.asarray(X, dtype=float)
        with warnings.catch_warnings():  # "all coefficients are zero" at a large penalty is an answer, not a fault
            warnings.simplefilter("ignore")
            # the data's largest useful penalty (every coefficient zero above it): where the path starts
            top = float(CoxnetSurvivalAnalysis(n_alphas=2, alpha_min_ratio=0.5, l1_ratio=self.l1_ratio).fit(X, y).alphas_[0])
            self.model_ = self._path(X, y, top, self.alpha)
        # glmnet ends a path early when the deviance stops changing: the penalty actually fitted is its last
        self.alpha_ = float(self.model_.alphas_[-1])
        self.coef_ = np.asarray(self.model_.coef_)[:, -1]
        self.intercept_ = 0.0  # a Cox model's log hazard has no intercept: the baseline hazard carries it
        # Breslow's baseline at that penalty only, on the centred log hazard as scikit-survival fits it: its own
        # fit_baseline_model fits one at every penalty of the path (up to 30), most of a fit's time, for one used
        event, time = check_y_survival(y)
        self.baseline_ = BreslowEstimator().fit(self.decision_function(X), event.astype(np.uint8), time)
        self.times_ = np.asarray(self.baseline_.unique_times_, dtype=float)
        return self

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A model pickled before ``baseline_`` carries its baselines in ``model_``: the last is the one fitted."""
        if "baseline_" not in state and "model_" in state:
            state["baseline_"] = state["model_"]._baseline_models[-1]
        super().__setstate__(state)

    def _path(self, X: np.ndarray, y: np.ndarray, top: float, alpha: float) -> Any:
        """The penalty path from *top* down to *alpha*, warm-started (cold at a small penalty, coordinate descent
        overflows); where even that overflows (near-separation), the path stops at twice the penalty, and so on:
        ``alpha_`` records the penalty fitted."""
        from sksurv.linear_model import CoxnetSurvivalAnalysis

        while True:
            path = np.geomspace(top, alpha, 30) if alpha < top else np.array([alpha])
            try:
                return CoxnetSurvivalAnalysis(alphas=path, l1_ratio=self.l1_ratio, max_iter=100_000).fit(X, y)
            except ArithmeticError:
                if alpha >= top:
                    raise
                alpha = min(2 * alpha, top)

    def decision_function(self, X: Any) -> np.ndarray:
        return np.asarray(self.model_.predict(np.asarray(X, dtype=float), alpha=self.alpha_), dtype=float)

    def _curves(self, X: Any) -> np.ndarray:
        """S0(t) ** exp(log hazard) at the baseline's event times: what scikit-survival's
        ``predict_survival_function(return_array=True)`` gives, without a step function per course."""
        return np.power(self.baseline_.baseline_survival_.y[None, :], np.exp(self.decision_function(X))[:, None])


class BoostedRelapse(RelapseModel):
    """Gradient-boosted Cox model with regression trees (scikit-survival ``GradientBoostingSurvivalAnalysis``,
    Cox partial-likelihood loss)."""

    def __init__(self, n_estimators: int = 100, learning_rate: float = 0.1, max_depth: int = 2,
                 min_samples_leaf: int = 20, subsample: float = 0.8, random_state: int = 0):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.min_samples_leaf = min_samples_leaf
        self.subsample = subsample
        self.random_state = random_state

    def fit(self, X: Any, y: np.ndarray) -> BoostedRelapse:
        from sksurv.ensemble import GradientBoostingSurvivalAnalysis

        self.model_ = GradientBoostingSurvivalAnalysis(
            loss="coxph", n_estimators=self.n_estimators, learning_rate=self.learning_rate, max_depth=self.max_depth,
            min_samples_leaf=self.min_samples_leaf, subsample=self.subsample, random_state=self.random_state,
        ).fit(np.asarray(X, dtype=float), y)
        self.times_ = np.asarray(self.model_.unique_times_, dtype=float)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        return np.asarray(self.model_.predict(np.asarray(X, dtype=float)), dtype=float)

    def _curves(self, X: Any) -> np.ndarray:
        return np.asarray(self.model_.predict_survival_function(np.asarray(X, dtype=float), return_array=True))

    def trees(self) -> dict[str, Any]:
        """The ensemble in shap's generic tree format (shap's TreeExplainer does not know this estimator; its
        trees are scikit-learn regression trees whose sum, times the learning rate, is the log hazard)."""
        out = []
        for est in self.model_.estimators_[:, 0]:
            t = est.tree_
            out.append({"children_left": t.children_left, "children_right": t.children_right,
                        "children_default": t.children_left, "features": t.feature, "thresholds": t.threshold,
                        "values": t.value[:, 0, :] * self.learning_rate, "node_sample_weight": t.weighted_n_node_samples})
        return {"trees": out, "base_offset": 0.0}


class KaplanMeierRelapse(RelapseModel):
    """The floor: the training courses' Kaplan-Meier curve for everyone (no feature)."""

    constant_ = 0.0  # log relapse hazard relative to the baseline: the same for all

    def fit(self, X: Any, y: np.ndarray) -> KaplanMeierRelapse:
        from sksurv.nonparametric import kaplan_meier_estimator

        times, curve = kaplan_meier_estimator(y["event"], y["time"])
        self.times_, self.curve_ = np.asarray(times, dtype=float), np.asarray(curve, dtype=float)
        return self

    def _curves(self, X: Any) -> np.ndarray:
        return np.tile(self.curve_, (len(X), 1))


def relapse_free(pipeline: Any, X: Any, days: tuple[int, ...] | np.ndarray) -> np.ndarray:
    """A fitted durability pipeline's relapse-free probabilities of the courses in *X* at *days*."""
    return np.asarray(pipeline[-1].survival(pipeline[:-1].transform(X), days))


def median_days(pipeline: Any, X: Any) -> np.ndarray:
    """A fitted durability pipeline's median days to relapse (NaN where not reached in follow-up)."""
    return np.asarray(pipeline[-1].median_days(pipeline[:-1].transform(X)))
