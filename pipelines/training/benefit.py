"""Nested cross-validation of the benefit learners, one comparison (active arm vs placebo) at a time.

A comparison holds the courses of one active arm and the placebo courses of the sites that give
it. The outer folds are the response model's own splits restricted to those courses, so every
course's benefit is predicted by learners that never saw it. Inside each outer training set,
the learners are compared on patient-grouped inner folds by the pre-declared **transformed-outcome
loss** (Athey & Imbens 2016; Powers et al. 2018): mean (psi - tau_hat)^2 with

    psi = (T - e) (Y - m(x)) / (e (1 - e)),

where e is the propensity (the allocation ratio in a randomised cohort) and m(x) a ridge-logistic
model of the outcome ignoring the arm, fitted on the inner training part. E[psi | x] is the
benefit for any m, so the loss favours no learner's own outcome model (a doubly-robust
pseudo-outcome built on a T-learner's outcome models favoured the T-learner). A learner's own hyperparameters are
chosen by its outcome log-loss (see :func:`best_per_learner`); the learners are then compared by
the transformed-outcome loss with the one-standard-error rule (:func:`one_se_choice`). The chosen learner
predicts the outer test fold; each learner's own best candidate does too, for the comparison table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from features.cohort.schema import ACTIVE_ARMS
from models.benefit import LEARNERS, BenefitModel, Propensity, SafeLogistic, covariates, get_learner
from pipelines.training.cv import inner_splits
from pipelines.training.data import Data
from pipelines.training.nested import FoldResult

log = logging.getLogger(__name__)
MIN_COURSES = 10  # per arm of a comparison: fewer and no benefit model is fitted
Candidate = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Comparison:
    """One active arm against the placebo courses of the sites that give it."""

    arm: str
    rows: np.ndarray     # positions in the training data
    treated: np.ndarray  # 1 for a drug course, 0 for placebo, over rows


@dataclass
class ArmBenefit:
    """Out-of-fold and final benefit of one comparison."""

    comparison: Comparison
    oof: np.ndarray                        # selected procedure's pooled out-of-fold benefit, over rows
    oof_learners: dict[str, np.ndarray]    # each learner's, over rows
    selections: list[str]                  # per outer fold, the selected learner
    final: BenefitModel
    final_losses: dict[str, float] = field(default_factory=dict)


def comparisons(data: Data) -> tuple[list[Comparison], list[str]]:
    """Every active arm with enough drug and placebo courses at its own sites, and notes on the rest."""
    out, notes = [], []
    for arm in ACTIVE_ARMS:
        sites = np.unique(data.sites[data.treatments == arm])
        rows = np.flatnonzero((data.treatments == arm) | ((data.treatments == "placebo") & np.isin(data.sites, sites)))
        treated = (data.treatments[rows] == arm).astype(float)
        if treated.sum() < MIN_COURSES or (1 - treated).sum() < MIN_COURSES:
            if treated.sum():
                notes.append(f"no benefit model for {arm}: {int(treated.sum())} drug and {int((1 - treated).sum())} "
                             f"placebo courses at its sites (at least {MIN_COURSES} of each are needed)")
            continue
        out.append(Comparison(arm, rows, treated))
    return out, notes


def pseudo_outcomes(data: Data, treated: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int,
                    propensity: Propensity) -> np.ndarray:
    """Transformed outcomes of the *test* courses, nuisances fitted on *train* (see module docstring)."""
    from sklearn.linear_model import LogisticRegression

    numeric = make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                            StandardScaler()).fit(covariates(data.X.iloc[train]))

    def x(rows: np.ndarray) -> np.ndarray:
        return np.asarray(numeric.transform(covariates(data.X.iloc[rows])))

    # m(x): the outcome whatever the arm; it only reduces the variance, any m leaves psi unbiased
    m = SafeLogistic(C=0.3).fit(x(train), data.y[train]).predict_proba(x(test))[:, 1]
    if propensity == "allocation":
        e = np.full(len(test), treated[train].mean())
    else:  # estimated in-fold from the features, for a cohort that was not randomised
        e = LogisticRegression(C=1.0, max_iter=2000).fit(x(train), treated[train]).predict_proba(x(test))[:, 1]
    e = np.clip(e, 0.05, 0.95)
    return (treated[test] - e) * (data.y[test] - m) / (e * (1 - e))


def candidates(names: tuple[str, ...]) -> list[Candidate]:
    return [(name, params) for name in names for params in LEARNERS[name].space]


def inner_losses(data: Data, treated: np.ndarray, arm: str, names: tuple[str, ...], folds: int, seed: int,
                 propensity: Propensity) -> tuple[np.ndarray, np.ndarray]:
    """Per inner test course, each candidate's transformed-outcome loss; and each candidate's mean outcome log-loss (NaN for a
    learner that models no outcome)."""
    from pipelines.evaluation.metrics import log_loss

    pool = candidates(names)
    dr, outcome = np.zeros((len(pool), len(data.y))), np.full((len(pool), folds), np.nan)
    for j, (train, test) in enumerate(inner_splits(data.y, data.patients, folds, seed)):
        psi = pseudo_outcomes(data, treated, train, test, seed, propensity)
        for i, (name, params) in enumerate(pool):
            model = get_learner(name).fit(data.X.iloc[train], data.y[train], treated[train], arm, seed, propensity,
                                          **params)
            dr[i, test] = (psi - model.effect(data.X.iloc[test])) ** 2
            both = model.probabilities(data.X.iloc[test])
            if both is not None:
                outcome[i, j] = log_loss(data.y[test], np.where(treated[test] == 1, both[0], both[1]))
    return dr, outcome.mean(axis=1)


def best_per_learner(names: tuple[str, ...], dr: np.ndarray, outcome: np.ndarray) -> dict[str, tuple[int, float]]:
    """Each learner's best candidate (its index among :func:`candidates`) and its mean transformed-outcome loss.

    Within a learner that models the outcome (S, T), hyperparameters are chosen by the outcome
    log-loss: the transformed-outcome loss is too noisy at trial sizes to tune penalties (it favoured the least
    penalised fits, whose benefit ranking was worst on fresh data). Across learners, the transformed-outcome loss decides.
    """
    best: dict[str, tuple[int, float, float]] = {}
    for i, ((name, _), fit) in enumerate(zip(candidates(names), outcome, strict=True)):
        loss = float(dr[i].mean())
        key = loss if np.isnan(fit) else fit
        if name not in best or key < best[name][2]:
            best[name] = (i, loss, key)
    return {name: (i, loss) for name, (i, loss, _) in best.items()}


def one_se_choice(names: tuple[str, ...], dr: np.ndarray, best: dict[str, tuple[int, float]]) -> str:
    """The first learner in registry order (simplest first) whose transformed-outcome loss is within one standard error of
    the smallest (the one-SE rule; SE of the paired per-course difference): the loss is noisy at trial sizes."""
    winner = min(best, key=lambda n: best[n][1])
    for name in names:
        diff = dr[best[name][0]] - dr[best[winner][0]]
        if name in best and diff.mean() <= diff.std(ddof=1) / np.sqrt(len(diff)):
            return name
    return winner


def fit_selected(data: Data, treated: np.ndarray, arm: str, names: tuple[str, ...], folds: int, seed: int,
                 propensity: Propensity) -> tuple[str, dict[str, BenefitModel], dict[str, float]]:
    """Inner selection on *data*, then every learner's best candidate refit on all of it."""
    dr, outcome = inner_losses(data, treated, arm, names, folds, seed, propensity)
    best = best_per_learner(names, dr, outcome)
    pool = candidates(names)
    fitted = {name: get_learner(name).fit(data.X, data.y, treated, arm, seed, propensity, **pool[i][1])
              for name, (i, _) in best.items()}
    return one_se_choice(names, dr, best), fitted, {n: loss for n, (_, loss) in best.items()}


def _outer_fold(data: Data, comparison: Comparison, fold: FoldResult, names: tuple[str, ...], inner: int,
                seed: int, propensity: Propensity) -> tuple[np.ndarray, str, dict[str, np.ndarray]]:
    """One outer fold of one comparison: positions (within the comparison) of its test courses, selection, benefits."""
    position = {row: i for i, row in enumerate(comparison.rows)}
    train = np.array([position[r] for r in fold.split.train if r in position])
    test = np.array([position[r] for r in fold.split.test if r in position])
    sub = data.take(comparison.rows)
    selected, fitted, _ = fit_selected(sub.take(train), comparison.treated[train], comparison.arm, names, inner,
                                       seed, propensity)
    effects = {name: model.effect(sub.X.iloc[test]) for name, model in fitted.items()}
    return test, selected, effects


def run_benefit(data: Data, folds: list[FoldResult], comparison: Comparison, names: tuple[str, ...], inner: int,
                seed: int, propensity: Propensity, parallel: Any) -> ArmBenefit:
    """Out-of-fold benefit (selection inside each outer fold) and the final model, for one comparison."""
    from joblib import delayed

    runs = parallel(delayed(_outer_fold)(data, comparison, f, names, inner, seed + 1000 * f.split.repeat + f.split.fold,
                                         propensity) for f in folds)
    n = len(comparison.rows)
    total = {name: np.zeros(n) for name in (*names, "selected")}
    count = np.zeros(n)
    for test, selected, effects in runs:
        for name, values in effects.items():
            total[name][test] += values
        total["selected"][test] += effects[selected]
        count[test] += 1
    mean = {name: np.where(count > 0, t / np.maximum(count, 1), np.nan) for name, t in total.items()}
    sub = data.take(comparison.rows)
    final, fitted, losses = fit_selected(sub, comparison.treated, comparison.arm, names, inner, seed, propensity)
    log.info("benefit %s: outer selections %s, final %s", comparison.arm, [r[1] for r in runs], final)
    return ArmBenefit(comparison, mean.pop("selected"), mean, [r[1] for r in runs], fitted[final], losses)
