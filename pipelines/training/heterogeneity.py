"""Tests of benefit heterogeneity on the absolute (risk-difference) scale, with econml's ``DRTester``.

For one comparison (an active arm against its placebo courses) and the benefit model's out-of-fold
predictions, ``econml.validate.DRTester`` cross-fits the nuisance models on patient-grouped folds (a
crossover patient's two courses on one side), forms each course's doubly robust (DR) score of
benefit, Y_DR = mu1 - mu0 + T (Y - mu1) / e - (1 - T) (Y - mu0) / (1 - e), and runs

* the best-linear-projection (BLP) test (Chernozhukov et al. 2022): the slope of the DR scores on
  the predicted benefit, per CV repeat with one intercept per outer fold and patient-clustered SEs
  (:func:`_blp`); slope 0 means the predictions carry no heterogeneity, 1 that they are calibrated;
  its one-sided p tests slope <= 0;
* the QINI coefficient (Radcliffe 2007) with its standard error (DRTester's): the gain from treating
  the courses with the highest predicted benefit first, over treating at random, on fold-centred
  predictions; its SE treats courses as independent (a crossover patient's two are not).

The DR scores also feed the absolute-scale roles, and the placebo-arm risk (the cross-fitted placebo
outcome model) feeds the PATH risk-modelling table; both are fitted models, so they are made here and
evaluation receives their out-of-fold output. Nothing here is logged per patient.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ketamine_response.models.benefit import covariates
from ketamine_response.models.benefit_estimators import KnownPropensity, ProbabilityRegressor, SafeLogistic, numeric_pipeline
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


def _blp(scores: np.ndarray, benefit: np.ndarray, folds: np.ndarray, patients: np.ndarray) -> tuple[float, float]:
    """Slope and SE of the DR scores on the predicted benefit of one CV repeat, with one intercept per outer fold.

    Written here rather than DRTester's ``evaluate_blp`` (plain OLS over all courses): out-of-fold
    predictions pooled across folds carry each fold's level, and a fold's model learnt from the other
    folds' outcomes, so its level is negatively related to its own courses' DR scores. Under a constant
    effect that biased the pooled slope down and rejected 12-16% of the time at alpha 0.05 (a review's
    simulation). Fold intercepts remove the levels; standard errors are clustered on the patient.
    """
    import pandas as pd
    import statsmodels.api as sm

    design = pd.concat([pd.DataFrame({"benefit": benefit}), pd.get_dummies(folds, prefix="fold", dtype=float)], axis=1)
    fit = sm.OLS(scores, design).fit(cov_type="cluster", cov_kwds={"groups": np.unique(patients, return_inverse=True)[1]})
    return float(fit.params["benefit"]), float(fit.bse["benefit"])


def _centred(benefit: np.ndarray, folds: np.ndarray) -> np.ndarray:
    """Each outer fold's predicted benefit minus its fold's mean: a ranking free of the folds' levels."""
    import pandas as pd

    return benefit - pd.Series(benefit).groupby(folds).transform("mean").to_numpy()


def assess_heterogeneity(data: Data, treated: np.ndarray, e: np.ndarray, by_repeat: np.ndarray, fold_of: np.ndarray,
                         seed: int, learners: dict[str, np.ndarray] | None = None) -> Heterogeneity:
    """BLP and QINI of the out-of-fold benefit (*by_repeat*: one row per CV repeat, *fold_of* its outer folds)
    over the courses of *data* (one comparison), DR scores and placebo-arm risk.

    Each repeat is tested on its own (fold intercepts for the BLP, fold-centred predictions for the QINI);
    slopes, QINIs and their SEs are averaged over repeats (the mean SE bounds the SE of the mean from above).
    The BLP p is one-sided: heterogeneity the predictions capture gives a positive slope. A benefit that does
    not vary has nothing to test: its BLP and QINI are NaN. *learners* (each learner's out-of-fold benefit,
    by repeat) get their own one-sided BLP p: whether any learner found heterogeneity the model does not show.
    """
    from econml.validate import DRTester
    from scipy.stats import norm

    x = _design(data, e)
    folds = inner_splits(treated, data.patients, NUISANCE_FOLDS, seed)  # grouped by patient, arms balanced
    tester = DRTester(model_regression=ProbabilityRegressor(SafeLogistic(C=0.3, random_state=seed)),
                      model_propensity=KnownPropensity(), cate=None, cv=folds)
    d, y, nan = treated.astype(int), data.y.astype(float), float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' small-sample notes; judged by finiteness downstream
        tester.fit_nuisance(x, d, y)
        placebo_risk = tester.fit_nuisance_cv(x, d, y)[0][:, 0]  # the same folds: the same placebo outcome model
        scores = np.asarray(tester.dr_val_).ravel()
        learner_p = {name: _blp_p(scores, b, fold_of, data.patients) for name, b in (learners or {}).items()}
        # a model constant within every outer fold ranks nobody (its slope on fold intercepts is unidentified)
        if not _varies(by_repeat, fold_of):
            return Heterogeneity(nan, nan, nan, nan, nan, scores, placebo_risk, learner_p)
        blp = np.array([_blp(scores, b, f, data.patients) for b, f in zip(by_repeat, fold_of, strict=True)])
        qini = np.array([_qini(tester, x, _centred(b, f), seed) for b, f in zip(by_repeat, fold_of, strict=True)])
    slope, se = blp.mean(axis=0)
    return Heterogeneity(slope, se, float(norm.sf(slope / se)), float(qini[:, 0].mean()), float(qini[:, 1].mean()),
                         scores, placebo_risk, learner_p)


def _varies(by_repeat: np.ndarray, fold_of: np.ndarray) -> bool:
    return any(np.ptp(_centred(b, f)) >= 1e-9 for b, f in zip(by_repeat, fold_of, strict=True))


def _blp_p(scores: np.ndarray, by_repeat: np.ndarray, fold_of: np.ndarray, patients: np.ndarray) -> float:
    """One-sided BLP p of one set of out-of-fold predictions (slope and SE averaged over repeats); NaN if constant."""
    from scipy.stats import norm

    if not _varies(by_repeat, fold_of):
        return float("nan")
    slope, se = np.mean([_blp(scores, b, f, patients) for b, f in zip(by_repeat, fold_of, strict=True)], axis=0)
    return float(norm.sf(slope / se))


def _qini(tester: Any, x: np.ndarray, benefit: np.ndarray, seed: int) -> tuple[float, float]:
    """DRTester's QINI coefficient and SE for *benefit* (its DR scores already fitted)."""
    tester.cate = _OutOfFold(benefit)
    tester.get_cate_preds(x, x)  # QINI's quantile cuts from the same out-of-fold predictions
    state = np.random.get_state()
    np.random.seed(seed)  # DRTester draws its curve bands from numpy's global generator
    result = tester.evaluate_uplift(metric="qini", n_bootstrap=200)
    np.random.set_state(state)
    return float(result.params[0]), float(result.errs[0])
