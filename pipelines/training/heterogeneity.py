"""Tests of benefit heterogeneity on the absolute (risk-difference) scale, with econml's ``DRTester``.

For one comparison (an active arm against its placebo courses) and the benefit model's out-of-fold
predictions, ``econml.validate.DRTester`` cross-fits the nuisance models on patient-grouped folds (a
crossover patient's two courses on one side), forms each course's doubly robust (DR) score of
benefit, Y_DR = mu1 - mu0 + T (Y - mu1) / e - (1 - T) (Y - mu0) / (1 - e), and runs

* the best-linear-projection (BLP) test (Chernozhukov et al. 2022): the OLS slope of the DR scores
  on the predicted benefit; slope 0 means the predictions carry no heterogeneity, 1 that they are
  calibrated; its p tests slope = 0;
* the QINI coefficient (Radcliffe 2007) with its standard error: the gain from treating the courses
  with the highest predicted benefit first, over treating at random.

Both treat courses as independent, as DRTester does (a crossover patient's two courses are not: the
run notes say so). The DR scores also feed the absolute-scale roles and the placebo-arm risk (the
cross-fitted placebo outcome model) feeds the PATH risk-modelling table; both are fitted models, so
they are made here and evaluation receives their out-of-fold output. Nothing here is logged per patient.
"""

from __future__ import annotations

import warnings

import numpy as np

from ketamine_response.models.benefit import KnownPropensity, ProbabilityRegressor, SafeLogistic, covariates, numeric_pipeline
from ketamine_response.pipelines.evaluation.heterogeneity import Heterogeneity
from ketamine_response.pipelines.folds import Data
from ketamine_response.pipelines.training.cv import inner_splits

NUISANCE_FOLDS = 5


class _OutOfFold:
    """The benefit model's out-of-fold predictions as DRTester's CATE model.

    DRTester asks a fitted model for ``effect(X)`` on the courses it validates; the honest predictions
    for these courses are the out-of-fold ones already made (a model refit on all of them would have
    seen their outcomes), so this returns them, in the courses' order, whatever X is passed.
    """

    def __init__(self, benefit: np.ndarray):
        self.benefit = benefit

    def effect(self, X: np.ndarray, T0: float = 0, T1: float = 1) -> np.ndarray:
        return self.benefit


def _design(data: Data, e: np.ndarray) -> np.ndarray:
    """Covariates imputed and scaled, the propensity as the last column (read back by KnownPropensity).

    The imputer and scaler learn no outcome, so fitting them on every course of the comparison leaks
    nothing; the nuisance models, which do learn outcomes, are cross-fitted by DRTester.
    """
    x = np.asarray(numeric_pipeline().fit_transform(covariates(data.X)))
    return np.column_stack([x, e])


def assess_heterogeneity(data: Data, treated: np.ndarray, e: np.ndarray, benefit: np.ndarray, seed: int) -> Heterogeneity:
    """BLP and QINI of *benefit* (out of fold) over the courses of *data* (one comparison), DR scores and
    placebo-arm risk. A benefit that does not vary has nothing to test: its BLP and QINI are NaN."""
    from econml.validate import DRTester

    x = _design(data, e)
    folds = inner_splits(treated, data.patients, NUISANCE_FOLDS, seed)  # grouped by patient, arms balanced
    tester = DRTester(model_regression=ProbabilityRegressor(SafeLogistic(C=0.3, random_state=seed)),
                      model_propensity=KnownPropensity(), cate=_OutOfFold(benefit), cv=folds)
    d, y = treated.astype(int), data.y.astype(float)
    nan = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' small-sample notes; judged by finiteness downstream
        tester.fit_nuisance(x, d, y)
        placebo_risk = tester.fit_nuisance_cv(x, d, y)[0][:, 0]  # the same folds: the same placebo outcome model
        scores = np.asarray(tester.dr_val_).ravel()
        if np.ptp(benefit) < 1e-9:
            return Heterogeneity(nan, nan, nan, nan, nan, scores, placebo_risk)
        tester.get_cate_preds(x, x)  # QINI's quantile cuts from the same out-of-fold predictions
        blp = tester.evaluate_blp()
        state = np.random.get_state()
        np.random.seed(seed)  # DRTester draws its curve bands from numpy's global generator
        qini = tester.evaluate_uplift(metric="qini", n_bootstrap=200)
        np.random.set_state(state)
    return Heterogeneity(float(blp.params[0]), float(blp.errs[0]), float(blp.pvals[0]), float(qini.params[0]),
                         float(qini.errs[0]), scores, placebo_risk)
