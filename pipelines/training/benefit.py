"""Nested cross-validation of the benefit learners, one comparison (active arm vs placebo) at a time.

A comparison holds the courses of one active arm and the placebo courses of the sites that give
it. The outer folds are the response model's own splits restricted to those courses, so every
course's benefit is predicted by learners that never saw it. Inside each outer training set, every
candidate of every learner is fitted on patient-grouped inner folds (:func:`inner_fit`), which gives
each course an out-of-fold benefit per candidate and the parts of the **R-loss** (Nie & Wager 2021):
mean(((y - m(x)) - (T - e) tau(x))^2), m an arm-blind outcome model and e the propensity
(:func:`propensity`), both from the other inner folds. Then:

1. each learner's candidate, then the learner, by the calibrated R-loss (the loss after rescaling, so
   a spread is not punished for its size, only for ranking against the outcomes), with the one-SE rule
   where candidates are within noise of the best, and among those the best outcome log-loss over both
   arms (:func:`within_noise`, which says why); the T-learner tunes each arm's penalty itself;
2. the chosen learner predicts the outer test fold; the final model's spread is set afterwards from
   every out-of-fold prediction (:meth:`Heterogeneity.spread_kept`), not from the inner folds, which
   estimate it too noisily (a T-learner with Spearman 0.9 against the true benefit got slope 0 there).

Each learner's own best candidate predicts the outer test fold too, for the comparison table and for
the test of whether any learner found heterogeneity.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ACTIVE_ARMS
from ketamine_response.models.benefit import LEARNERS, BenefitModel, Propensity, covariates, get_learner
from ketamine_response.models.benefit_estimators import SafeLogistic, numeric_pipeline
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
    selections: list[str]                  # per outer fold, the chosen learner
    final: BenefitModel                    # the chosen learner refit on every course (rescaled by procedure)
    final_losses: dict[str, float]
    by_repeat: np.ndarray                  # the selected benefit of each CV repeat, (repeats, rows)
    learners_by_repeat: dict[str, np.ndarray]  # each learner's, the same way
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


def outcome_residuals(data: Data, train: np.ndarray, test: np.ndarray) -> np.ndarray:
    """y - m(x) of the *test* courses, m the arm-blind outcome model fitted on *train* (the R-learner's m)."""
    x = _numeric_fit(data, train)
    return data.y[test] - SafeLogistic(C=0.3).fit(x(train), data.y[train]).predict_proba(x(test))[:, 1]


def candidates(names: tuple[str, ...]) -> list[Candidate]:
    return [(name, params) for name in names for params in LEARNERS[name].space]


def restrict(c: Comparison, positions: np.ndarray) -> Comparison:
    """The comparison's courses at *positions* (within the comparison)."""
    return Comparison(c.arm, c.rows[positions], c.treated[positions], c.strata[positions])


@dataclass(frozen=True)
class InnerFit:
    """Every candidate's benefit for each course from the inner fold that left it out, and the R-loss's parts.

    The R-loss of benefit tau (Nie & Wager 2021) is mean(((y - m(x)) - (T - e) tau(x))^2), with m the
    arm-blind outcome model and e the propensity, both from the other inner folds: its expectation is
    smallest at the true benefit whatever m, and, unlike the outcome log-loss, it rewards a difference
    between the arms' predictions only as far as the outcomes bear it out, in either arm.
    """

    tau: np.ndarray       # (candidates, courses)
    residual: np.ndarray  # y - m(x)
    t_tilde: np.ndarray   # T - e
    outcome: np.ndarray   # (candidates,) mean outcome log-loss; NaN for a learner that models no outcome

    def r_loss(self, tau: np.ndarray) -> np.ndarray:
        """Per course, the R-loss of the benefit *tau*."""
        return (self.residual - self.t_tilde * tau) ** 2


def inner_fit(data: Data, c: Comparison, names: tuple[str, ...], folds: int, seed: int, kind: Propensity) -> InnerFit:
    """Fit every candidate on patient-grouped inner folds of the courses of *c* (see :class:`InnerFit`)."""
    from ketamine_response.pipelines.evaluation.metrics import log_loss

    pool, sub = candidates(names), data.take(c.rows)
    n = len(sub.y)
    tau, residual, t_tilde = np.zeros((len(pool), n)), np.zeros(n), np.zeros(n)
    outcome = np.full((len(pool), folds), np.nan)
    for j, (train, test) in enumerate(inner_splits(sub.task.strata(sub.y), sub.patients, folds, seed)):
        residual[test] = outcome_residuals(sub, train, test)
        t_tilde[test] = c.treated[test] - propensity(data, c, train, test, kind)
        e_train = propensity(data, c, train, train, kind)
        for i, (name, params) in enumerate(pool):
            model = get_learner(name).fit(sub.X.iloc[train], sub.y[train], c.treated[train], c.arm, seed, e_train,
                                          sub.patients[train], **params)
            X_test = sub.X.iloc[test]
            both = model.probabilities(X_test)  # the effect is their difference where the learner gives both
            tau[i, test] = model.effect(X_test) if both is None else both[0] - both[1]
            if both is not None:
                outcome[i, j] = log_loss(sub.y[test], np.where(c.treated[test] == 1, both[0], both[1]))
    return InnerFit(tau, residual, t_tilde, outcome.mean(axis=1))


def r_stack(fit: InnerFit, i: int) -> tuple[float, float, float]:
    """(intercept, slope >= 0, centre) minimising the R-loss of intercept + slope (tau_i - centre) for
    candidate *i* (a one-learner R-stack, Nie & Wager 2021, section 5); centre is its mean benefit.

    A non-negative slope: a benefit whose ranking runs against the inner folds' outcomes gets none.
    """
    from scipy.optimize import lsq_linear

    centre = float(fit.tau[i].mean())
    design = fit.t_tilde[:, None] * np.column_stack([np.ones(fit.tau.shape[1]), fit.tau[i] - centre])
    solution = lsq_linear(design, fit.residual, bounds=([-np.inf, 0.0], [np.inf, np.inf])).x
    slope = float(solution[1]) if solution[1] > 1e-9 else 0.0  # the solver's zero at the bound is ~1e-20
    return float(np.clip(solution[0], -1.0, 1.0)), slope, centre


def calibrated_loss(fit: InnerFit, i: int) -> np.ndarray:
    """Per course, the R-loss of candidate *i* rescaled by :func:`r_stack`."""
    intercept, slope, centre = r_stack(fit, i)
    return fit.r_loss(intercept + slope * (fit.tau[i] - centre))


def within_noise(fit: InnerFit, indexes: list[int], patients: np.ndarray) -> int:
    """Of the candidates at *indexes*, the one the calibrated R-loss picks: the smallest, unless others lie
    within one standard error of it (of the per-patient paired difference: a crossover patient's two courses
    are one unit); among those within noise, the best outcome log-loss over both arms (a learner that
    models no outcome ranks after those that do, by its R-loss).

    Why the tie-break: at trial sizes most benefit losses are within their noise of each other (on one
    placebo-driven cohort in development, learners with Spearman 0.36 and 0.63 against the true benefit had calibrated
    R-losses 0.3 SE apart), while heterogeneity from either arm shows in each arm's fit: a placebo-arm
    prognosis the drug does not share is a better fit per arm, not noise.
    """
    losses = {i: calibrated_loss(fit, i) for i in indexes}
    best = min(losses, key=lambda i: losses[i].mean())

    def close(i: int) -> bool:
        diff = pd.Series(losses[i] - losses[best]).groupby(patients).mean()
        return bool(diff.mean() <= diff.std(ddof=1) / np.sqrt(len(diff)))

    tied = [i for i in indexes if i == best or close(i)]
    return min(tied, key=lambda i: (0, fit.outcome[i]) if np.isfinite(fit.outcome[i]) else (1, losses[i].mean()))


def best_per_learner(names: tuple[str, ...], fit: InnerFit, patients: np.ndarray) -> dict[str, int]:
    """Each learner's candidate (its index among :func:`candidates`), by :func:`within_noise`."""
    pool = candidates(names)
    return {name: within_noise(fit, [i for i, (n, _) in enumerate(pool) if n == name], patients) for name in names}


def choose(fit: InnerFit, best: dict[str, int], patients: np.ndarray) -> str:
    """The learner whose benefit predicts: :func:`within_noise` over each learner's own candidate."""
    chosen = within_noise(fit, list(best.values()), patients)
    return next(name for name, i in best.items() if i == chosen)


def fit_selected(data: Data, c: Comparison, names: tuple[str, ...], folds: int, seed: int,
                 kind: Propensity) -> tuple[str, dict[str, BenefitModel], dict[str, float]]:
    """Inner fits on the courses of *c*, each learner's best candidate refit on all of them, and the chosen
    learner; with each learner's calibrated R-loss."""
    fit = inner_fit(data, c, names, folds, seed, kind)
    sub, every = data.take(c.rows), np.arange(len(c.rows))
    best = best_per_learner(names, fit, sub.patients)
    pool = candidates(names)
    e = propensity(data, c, every, every, kind)
    fitted = {name: get_learner(name).fit(sub.X, sub.y, c.treated, c.arm, seed, e, sub.patients, **pool[i][1])
              for name, i in best.items()}
    return (choose(fit, best, sub.patients), fitted,
            {name: float(calibrated_loss(fit, i).mean()) for name, i in best.items()})


def _outer_fold(data: Data, c: Comparison, fold: FoldResult, names: tuple[str, ...], inner: int,
                seed: int, kind: Propensity) -> tuple[np.ndarray, str, dict[str, np.ndarray]]:
    """One outer fold of one comparison: positions (within the comparison) of its test courses, selection, benefits."""
    position = {row: i for i, row in enumerate(c.rows)}
    train = np.array([position[r] for r in fold.split.train if r in position])
    test = np.array([position[r] for r in fold.split.test if r in position])
    chosen, fitted, _ = fit_selected(data, restrict(c, train), names, inner, seed, kind)
    X_test = data.X.iloc[c.rows[test]]
    effects = {name: model.effect(X_test) for name, model in fitted.items()}
    return test, chosen, effects | {SELECTED: effects[chosen]}


def run_benefit(data: Data, folds: list[FoldResult], c: Comparison, names: tuple[str, ...], inner: int,
                seed: int, kind: Propensity, parallel: Any) -> ArmBenefit:
    """Out-of-fold benefit (selection inside each outer fold) and the final model, for one comparison."""
    from joblib import delayed

    # the final fit on every course is one more independent task: first, as the largest
    final_fit, *runs = parallel([delayed(fit_selected)(data, c, names, inner, seed, kind),
                                 *(delayed(_outer_fold)(data, c, f, names, inner, seed + 1000 * f.split.repeat + f.split.fold,
                                                        kind) for f in folds)])
    n = len(c.rows)
    total = {name: np.zeros(n) for name in (*names, SELECTED)}
    count = np.zeros(n)
    for test, _, effects in runs:
        for name, values in effects.items():
            total[name][test] += values
        count[test] += 1
    mean = {name: np.where(count > 0, t / np.maximum(count, 1), np.nan) for name, t in total.items()}
    repeats = sorted({f.split.repeat for f in folds})
    by_repeat = {name: np.full((len(repeats), n), np.nan) for name in total}
    fold_of = np.full((len(repeats), n), -1)
    for f, (test, _, effects) in zip(folds, runs, strict=True):
        for name, values in effects.items():
            by_repeat[name][repeats.index(f.split.repeat), test] = values
        fold_of[repeats.index(f.split.repeat), test] = f.split.fold
    varies = {name: any(np.ptp(effects[name]) > 1e-9 for _, _, effects in runs if len(effects[name]))
              for name in (*names, SELECTED)}
    chosen, fitted, losses = final_fit
    final = fitted[chosen]
    log.info("benefit %s: outer folds' learners %s, final %s", c.arm, [r[1] for r in runs], chosen)
    selected = by_repeat.pop(SELECTED)
    return ArmBenefit(c, mean.pop(SELECTED), mean, [r[1] for r in runs], final, losses, selected, by_repeat, fold_of, varies)
