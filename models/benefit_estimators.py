"""The estimators the benefit learners are built from (scikit-learn style; econml calls some of them).

Kept apart from the learner registry (:mod:`ketamine_response.models.benefit`) so that each module
stays readable; every class here is part of a logged benefit model and must unpickle from this path.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


class SafeLogistic(ClassifierMixin, BaseEstimator):
    """Penalised logistic regression that predicts the training rate when the training labels have one class.

    Benefit learners fit one arm, or one cross-fitting fold, at a time; in a trial of tens of
    patients (ds005917: one placebo responder) such a part can hold no responder at all.
    """

    def __init__(self, C: float = 0.3, l1_ratio: float = 0.0, random_state: int | None = None):
        self.C = C
        self.l1_ratio = l1_ratio
        self.random_state = random_state

    def _estimator(self, y: np.ndarray) -> Any:
        """The model to fit on labels *y*, or None where they cannot carry one."""
        if len(np.unique(y)) < 2:
            return None
        # saga is the solver that takes an L1 part
        solver = {"solver": "saga", "max_iter": 5000} if self.l1_ratio else {"max_iter": 2000}
        return LogisticRegression(C=self.C, l1_ratio=self.l1_ratio, tol=1e-4, random_state=self.random_state, **solver)

    def fit(self, X: Any, y: Any) -> SafeLogistic:
        y = np.asarray(y).ravel().astype(int)
        self.classes_ = np.array([0, 1])
        self.rate_ = float(y.mean()) if len(y) else 0.0
        estimator = self._estimator(y)
        self.model_ = estimator.fit(X, y) if estimator is not None else None
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        p = self.model_.predict_proba(X)[:, 1] if self.model_ is not None else np.full(len(X), self.rate_)
        return np.column_stack([1 - p, p])

    def predict(self, X: Any) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype(int)


class TunedLogistic(SafeLogistic):
    """Elastic-net logistic regression whose penalty is chosen by its own cross-validated log-loss
    (scikit-learn's ``LogisticRegressionCV`` over its default path of *Cs* penalties, 1e-4 to 1e4, five
    folds); the training rate when the labels have too few of a class for five folds.

    Each arm of a T- or X-learner gets its own: with one penalty for both, an arm without signal
    (the drug arm when only placebo response varies) forces noise into the other, or the other's
    signal out.
    """

    def __init__(self, Cs: int = 10, random_state: int | None = None):
        self.Cs = Cs
        self.random_state = random_state

    def _estimator(self, y: np.ndarray) -> Any:
        from sklearn.linear_model import LogisticRegressionCV

        if len(np.unique(y)) < 2 or np.bincount(y).min() < 5:  # five folds need a case of each in each
            return None
        return LogisticRegressionCV(Cs=self.Cs, l1_ratios=[0.5], solver="saga", cv=5, max_iter=3000, tol=1e-3,
                                    use_legacy_attributes=False, scoring=neg_log_loss, random_state=self.random_state)

    def fit(self, X: Any, y: Any) -> TunedLogistic:
        """Fit, or take the fit of the same inputs from this process's recent fits (:data:`_RECENT`).

        Why: the T- and X-learners fit the very same tuned model per arm on the same courses (econml
        clones it per arm), and this fit (five folds x ten penalties of saga) is most of their cost.
        The fit is deterministic for its parameters and inputs, so the reused one is the one it would make.
        """
        from joblib import hash as digest

        key = digest((self.get_params(), np.asarray(X), np.asarray(y).ravel().astype(int)))
        with _LOCK:
            found = _RECENT.get(key)
            if found is not None:
                _RECENT.move_to_end(key)
        if found is None:
            super().fit(X, y)
            found = (self.classes_, self.rate_, self.model_)
            with _LOCK:
                _RECENT[key] = found
                while len(_RECENT) > _KEEP:
                    _RECENT.popitem(last=False)
        self.classes_, self.rate_, self.model_ = found
        return self


# TunedLogistic's recent fits in this process, by a digest of (parameters, X, y); a few suffice: the fits shared
# are made one right after the other (the T-learner's arms, then the X-learner's on the same inner fold)
_RECENT: OrderedDict[str, tuple[np.ndarray, float, Any]] = OrderedDict()
_KEEP = 8
_LOCK = threading.Lock()


def neg_log_loss(estimator: Any, X: Any, y: Any) -> float:
    """scikit-learn's ``neg_log_loss`` scorer for a binary classifier, with its arithmetic (probabilities clipped to
    [eps, 1 - eps], the mean of -xlogy over both classes' columns), without its per-call input validation: that
    validation took as long as the saga fits themselves in LogisticRegressionCV's 50 scorings per fit."""
    from scipy.special import xlogy

    p = estimator.predict_proba(X)[:, 1]
    eps = np.finfo(p.dtype).eps
    proba = np.clip(np.column_stack([1 - p, p]), eps, 1 - eps)
    positive = np.asarray(y) == estimator.classes_[1]
    onehot = np.column_stack([~positive, positive]).astype(proba.dtype)
    return -float(np.average(-np.sum(xlogy(onehot, proba), axis=1)))


def fit_sharing_transform(pipeline: Pipeline, X: Any, y: Any) -> Pipeline:
    """*pipeline* fitted on (*X*, *y*), its transforming steps (which learn nothing from *y*) and their output
    taken from this process's recent fit of the same steps on the same *X* where there is one.

    Why: the S-learner's candidates differ in their penalty alone, so each inner fold fitted the same
    transform (winsorising, composite, imputation, interactions, scaling) six times; ``Pipeline.fit`` is
    exactly the transform's ``fit_transform`` followed by the final step's ``fit`` on its output.
    """
    from joblib import hash as digest

    head, (name, model) = pipeline[:-1], pipeline.steps[-1]
    key = digest((head, X))  # before fitting: the unfitted steps' parameters
    with _LOCK:
        found = _TRANSFORMS.get(key)
    if found is None:
        found = (head, head.fit_transform(X))
        with _LOCK:
            _TRANSFORMS[key] = found
            while len(_TRANSFORMS) > _KEEP_TRANSFORMS:
                _TRANSFORMS.popitem(last=False)
    head, transformed = found
    return Pipeline([*head.steps, (name, model.fit(transformed, y))]).set_output(transform="pandas")


_TRANSFORMS: OrderedDict[str, tuple[Pipeline, Any]] = OrderedDict()  # (fitted steps, their output) by digest
_KEEP_TRANSFORMS = 2  # the candidates of one inner fold are fitted one after the other


def forget_fits() -> None:
    """Empty this process's recent fits (:class:`TunedLogistic`, :func:`fit_sharing_transform`): a test of
    determinism must refit, not reuse."""
    with _LOCK:
        _RECENT.clear()
        _TRANSFORMS.clear()


def penalised_logistic(seed: int, C: float = 0.3, l1_ratio: float = 0.0) -> SafeLogistic:
    return SafeLogistic(C=C, l1_ratio=l1_ratio, random_state=seed)


def numeric_pipeline() -> Pipeline:
    """econml takes no NaN: median imputation with indicators, then scaling (fitted in-fold)."""
    return make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                         StandardScaler())


class ProbabilityRegressor(RegressorMixin, BaseEstimator):
    """A classifier whose ``predict`` is P(response): econml's meta-learners call ``predict``."""

    def __init__(self, classifier: Any = None):
        self.classifier = classifier

    def fit(self, X: Any, y: Any) -> ProbabilityRegressor:
        self.classifier_ = clone(self.classifier).fit(X, np.asarray(y).ravel().astype(int))
        return self

    def predict(self, X: Any) -> np.ndarray:
        return np.asarray(self.classifier_.predict_proba(X)[:, 1])


class RiskModelling(BaseEstimator):
    """PATH risk modelling: a risk score fitted on both arms, then response on arm x score.

    Hand-written: the two stages are two logistic fits (scikit-learn), and no maintained library
    offers the PATH model itself. The score is the linear predictor with the arm set to placebo.
    """

    def __init__(self, C: float = 0.1, interaction: bool = True, random_state: int | None = None):
        self.C = C
        self.interaction = interaction
        self.random_state = random_state

    def _stage2(self, score: np.ndarray, treated: np.ndarray) -> np.ndarray:
        columns = [score, treated] + ([score * treated] if self.interaction else [])
        return np.column_stack(columns)

    def score(self, x: np.ndarray) -> np.ndarray:
        risk = self.risk_.model_
        if risk is None:
            return np.zeros(len(x))
        return np.asarray(risk.decision_function(np.column_stack([x, np.zeros(len(x))])))

    def fit(self, x: np.ndarray, y: np.ndarray, treated: np.ndarray) -> RiskModelling:
        self.risk_ = SafeLogistic(C=self.C, l1_ratio=0.5, random_state=self.random_state).fit(np.column_stack([x, treated]), y)
        # the outcome on the score and the arm: three or four coefficients, barely penalised
        self.outcome_ = SafeLogistic(C=100.0, random_state=self.random_state).fit(self._stage2(self.score(x), treated), y)
        return self

    def probabilities(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        score, ones = self.score(x), np.ones(len(x))
        return (self.outcome_.predict_proba(self._stage2(score, ones))[:, 1],
                self.outcome_.predict_proba(self._stage2(score, 0 * ones))[:, 1])


class KnownPropensity(ClassifierMixin, BaseEstimator):
    """The propensity supplied with the data (the last input column) as DRLearner's propensity model."""

    def fit(self, X: Any, y: Any) -> KnownPropensity:
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        e = np.asarray(X)[:, -1]
        return np.column_stack([1 - e, e])

    def predict(self, X: Any) -> np.ndarray:
        return (np.asarray(X)[:, -1] >= 0.5).astype(int)
