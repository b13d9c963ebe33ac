"""Nested cross-validation of the benefit learners, one comparison (active arm vs placebo) at a time.

A comparison holds the courses of one active arm and the placebo courses of the sites that give
it. The outer folds are the response model's own splits restricted to those courses, so every
course's benefit is predicted by learners that never saw it. Inside each outer training set, the
learners are compared on patient-grouped inner folds by the pre-declared **transformed-outcome
loss** (Athey & Imbens 2016; Powers et al. 2018): mean (psi - tau_hat)^2 with

    psi = (T - e) (Y - m(x)) / (e (1 - e)),

where e is the propensity (:func:`propensity`: the allocation ratio of the course's design stratum
in a randomised cohort) and m(x) a ridge-logistic model of the outcome ignoring the arm, fitted on
the inner training part. E[psi | x] is the benefit for any m, so the loss favours no learner's own
outcome model (a doubly-robust pseudo-outcome built on a T-learner's outcome models favoured the
T-learner). A learner's own hyperparameters are chosen by its outcome log-loss
(:func:`best_per_learner`); the learners are then compared by the transformed-outcome loss with the
one-standard-error rule (:func:`one_se_choice`). The chosen learner predicts the outer test fold;
each learner's own best candidate does too, for the comparison table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ACTIVE_ARMS
from ketamine_response.models.benefit import LEARNERS, BenefitModel, Propensity, SafeLogistic, covariates, get_learner, numeric_pipeline
from ketamine_response.models.families import SELECTED
from ketamine_response.pipelines.folds import Data, FoldResult
from ketamine_response.pipelines.training.cv import inner_splits

log = logging.getLogger(__name__)
MIN_COURSES = 10  # per arm of a comparison: fewer and no benefit model is fitted
Candidate = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Comparison:
    """One active arm against the placebo courses of the sites that give it."""

    arm: str
    rows: np.ndarray     # positions in the training data
    treated: np.ndarray  # 1 for a drug course, 0 for placebo, over rows
    strata: np.ndarray   # design stratum of each row: site x (parallel or crossover), as codes


@dataclass
class ArmBenefit:
    """Out-of-fold and final benefit of one comparison."""

    comparison: Comparison
    oof: np.ndarray                        # selected procedure's pooled out-of-fold benefit, over rows
    oof_learners: dict[str, np.ndarray]    # each learner's, over rows
    selections: list[str]                  # per outer fold, the selected learner
    final: BenefitModel
    final_losses: dict[str, float]
    by_repeat: np.ndarray                  # the selected benefit of each CV repeat, (repeats, rows)
    fold_of: np.ndarray                    # the outer fold that predicted each row in each repeat
    # per learner (and the selected procedure): whether its benefit varies within some outer fold; a model
    # constant within every fold ranks nobody, however its folds' constants differ
    varies: dict[str, bool] = field(default_factory=dict)


def comparisons(data: Data) -> tuple[list[Comparison], list[str]]:
    """Every active arm with enough drug and placebo courses at its own sites, and notes on the rest."""
    out, notes = [], []
    if not np.isin(data.treatments, ACTIVE_ARMS).any():
        return [], ["no benefit model and no within-drug figures: no course of an active arm has this outcome"]
    for arm in ACTIVE_ARMS:
        sites = np.unique(data.sites[data.treatments == arm])
        rows = np.flatnonzero((data.treatments == arm) | ((data.treatments == "placebo") & np.isin(data.sites, sites)))
        treated = (data.treatments[rows] == arm).astype(float)
        if treated.sum() < MIN_COURSES or (1 - treated).sum() < MIN_COURSES:
            if treated.sum():
                notes.append(f"no benefit model for {arm}: {int(treated.sum())} drug and {int((1 - treated).sum())} "
                             f"placebo courses at its sites (at least {MIN_COURSES} of each are needed)")
            continue
        out.append(Comparison(arm, rows, treated, design_strata(data.sites[rows], data.patients[rows])))
    return out, notes


def design_strata(sites: np.ndarray, patients: np.ndarray) -> np.ndarray:
    """Site x design codes: a crossover patient's courses (both arms, 1:1) apart from parallel ones."""
    crossover = pd.Series(patients).map(pd.Series(patients).value_counts()).to_numpy() > 1
    return pd.factorize(pd.Series(sites.astype(str)) + np.where(crossover, "|crossover", "|parallel"))[0]


def propensity(data: Data, c: Comparison, train: np.ndarray, apply: np.ndarray, kind: Propensity) -> np.ndarray:
    """P(drug course) of the *apply* courses, learnt on *train* (positions within the comparison).

    ``allocation``: the share of drug courses among the training courses of the same design stratum
    (the allocation ratio of a randomised trial; the overall share for a stratum absent from *train*).
    ``estimated``: a logistic model of the arm on the covariates, fitted on *train*, for a cohort that
    was not randomised.
    """
    if kind == "allocation":
        shares = pd.Series(c.treated[train]).groupby(c.strata[train]).mean()
        e = pd.Series(c.strata[apply]).map(shares).fillna(c.treated[train].mean()).to_numpy(dtype=float)
    else:
        from sklearn.linear_model import LogisticRegression

        sub = data.take(c.rows)
        numeric = _numeric_fit(sub, train)
        model = LogisticRegression(C=1.0, max_iter=2000).fit(numeric(train), c.treated[train])
        e = model.predict_proba(numeric(apply))[:, 1]
    return np.clip(e, 0.05, 0.95)


def _numeric_fit(data: Data, train: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The covariates of any rows, imputed and scaled as learnt on *train*."""
    numeric = numeric_pipeline().fit(covariates(data.X.iloc[train]))
    return lambda rows: np.asarray(numeric.transform(covariates(data.X.iloc[rows])))


def pseudo_outcomes(data: Data, treated: np.ndarray, train: np.ndarray, test: np.ndarray,
                    e: np.ndarray) -> np.ndarray:
    """Transformed outcomes of the *test* courses (propensity *e*), the outcome model fitted on *train*."""
    x = _numeric_fit(data, train)
    # m(x): the outcome whatever the arm; it only reduces the variance, any m leaves psi unbiased
    m = SafeLogistic(C=0.3).fit(x(train), data.y[train]).predict_proba(x(test))[:, 1]
    return (treated[test] - e) * (data.y[test] - m) / (e * (1 - e))


def candidates(names: tuple[str, ...]) -> list[Candidate]:
    return [(name, params) for name in names for params in LEARNERS[name].space]


def restrict(c: Comparison, positions: np.ndarray) -> Comparison:
    """The comparison's courses at *positions* (within the comparison)."""
    return Comparison(c.arm, c.rows[positions], c.treated[positions], c.strata[positions])


def inner_losses(data: Data, c: Comparison, names: tuple[str, ...], folds: int, seed: int,
                 kind: Propensity) -> tuple[np.ndarray, np.ndarray]:
    """Per course of *c*, each candidate's transformed-outcome loss on its inner test fold; and each
    candidate's mean outcome log-loss (NaN for a learner that models no outcome)."""
    from ketamine_response.pipelines.evaluation.metrics import log_loss

    pool = candidates(names)
    sub = data.take(c.rows)
    dr, outcome = np.zeros((len(pool), len(sub.y))), np.full((len(pool), folds), np.nan)
    for j, (train, test) in enumerate(inner_splits(sub.task.strata(sub.y), sub.patients, folds, seed)):
        psi = pseudo_outcomes(sub, c.treated, train, test, propensity(data, c, train, test, kind))
        e_train = propensity(data, c, train, train, kind)
        for i, (name, params) in enumerate(pool):
            model = get_learner(name).fit(sub.X.iloc[train], sub.y[train], c.treated[train], c.arm, seed, e_train,
                                          sub.patients[train], **params)
            dr[i, test] = (psi - model.effect(sub.X.iloc[test])) ** 2
            both = model.probabilities(sub.X.iloc[test])
            if both is not None:
                outcome[i, j] = log_loss(sub.y[test], np.where(c.treated[test] == 1, both[0], both[1]))
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


def one_se_choice(names: tuple[str, ...], dr: np.ndarray, best: dict[str, tuple[int, float]],
                  patients: np.ndarray) -> str:
    """The first learner in registry order (simplest first) whose transformed-outcome loss is within one
    standard error of the smallest (the one-SE rule): the loss is noisy at trial sizes. The SE is that of
    the paired difference averaged per patient (a crossover patient's two courses are not independent)."""
    winner = min(best, key=lambda n: best[n][1])
    for name in names:
        if name not in best:
            continue
        diff = pd.Series(dr[best[name][0]] - dr[best[winner][0]]).groupby(patients).mean()
        if diff.mean() <= diff.std(ddof=1) / np.sqrt(len(diff)):
            return name
    return winner


def fit_selected(data: Data, c: Comparison, names: tuple[str, ...], folds: int, seed: int,
                 kind: Propensity) -> tuple[str, dict[str, BenefitModel], dict[str, float]]:
    """Inner selection on the courses of *c*, then every learner's best candidate refit on all of them."""
    dr, outcome = inner_losses(data, c, names, folds, seed, kind)
    best = best_per_learner(names, dr, outcome)
    pool = candidates(names)
    sub, every = data.take(c.rows), np.arange(len(c.rows))
    e = propensity(data, c, every, every, kind)
    fitted = {name: get_learner(name).fit(sub.X, sub.y, c.treated, c.arm, seed, e, sub.patients, **pool[i][1])
              for name, (i, _) in best.items()}
    return one_se_choice(names, dr, best, sub.patients), fitted, {n: loss for n, (_, loss) in best.items()}


def _outer_fold(data: Data, c: Comparison, fold: FoldResult, names: tuple[str, ...], inner: int,
                seed: int, kind: Propensity) -> tuple[np.ndarray, str, dict[str, np.ndarray]]:
    """One outer fold of one comparison: positions (within the comparison) of its test courses, selection, benefits."""
    position = {row: i for i, row in enumerate(c.rows)}
    train = np.array([position[r] for r in fold.split.train if r in position])
    test = np.array([position[r] for r in fold.split.test if r in position])
    selected, fitted, _ = fit_selected(data, restrict(c, train), names, inner, seed, kind)
    X_test = data.X.iloc[c.rows[test]]
    return test, selected, {name: model.effect(X_test) for name, model in fitted.items()}


def run_benefit(data: Data, folds: list[FoldResult], c: Comparison, names: tuple[str, ...], inner: int,
                seed: int, kind: Propensity, parallel: Any) -> ArmBenefit:
    """Out-of-fold benefit (selection inside each outer fold) and the final model, for one comparison."""
    from joblib import delayed

    runs = parallel(delayed(_outer_fold)(data, c, f, names, inner, seed + 1000 * f.split.repeat + f.split.fold, kind)
                    for f in folds)
    n = len(c.rows)
    total = {name: np.zeros(n) for name in (*names, SELECTED)}
    count = np.zeros(n)
    for test, selected, effects in runs:
        for name, values in effects.items():
            total[name][test] += values
        total[SELECTED][test] += effects[selected]
        count[test] += 1
    mean = {name: np.where(count > 0, t / np.maximum(count, 1), np.nan) for name, t in total.items()}
    repeats = sorted({f.split.repeat for f in folds})
    by_repeat, fold_of = np.full((len(repeats), n), np.nan), np.full((len(repeats), n), -1)
    for f, (test, selected, effects) in zip(folds, runs, strict=True):
        by_repeat[repeats.index(f.split.repeat), test] = effects[selected]
        fold_of[repeats.index(f.split.repeat), test] = f.split.fold
    varies = {name: any(np.ptp(effects[name]) > 1e-9 for _, _, effects in runs if len(effects[name])) for name in names}
    varies[SELECTED] = any(np.ptp(effects[chosen]) > 1e-9 for _, chosen, effects in runs if len(effects[chosen]))
    final, fitted, losses = fit_selected(data, c, names, inner, seed, kind)
    log.info("benefit %s: outer selections %s, final %s", c.arm, [r[1] for r in runs], final)
    return ArmBenefit(c, mean.pop(SELECTED), mean, [r[1] for r in runs], fitted[final], losses, by_repeat, fold_of, varies)
