"""Per-patient intervals and percentiles, from what the logged model keeps of its bootstrap replicates.

What the interval is: an *estimation + site + missing-data interval* for the model's probability. Its
spread combines, in quadrature on the logit scale, (1) refit noise: training refits the selected family
with its hyperparameters held fixed (and its in-fold calibration; for a benefit, the chosen learner with
the final model's rescaling) on bootstrap resamples of patients; the family and hyperparameter selection
is not repeated, so this is not the uncertainty of the whole procedure; (2) an added between-site SD of
the log-odds; (3) missing-value fills: each replicate fills a course's missing features with a training
quantile of its own (from the marginal distribution, not conditional on the course's other features).
The interval is ``logit(p) ± t · SD``, mapped back, so it is centred on the probability shown and
``low <= p <= high`` always; on the prediction's own scale for a percentage change or a benefit.

What it is not: a confidence interval for the patient's true probability. It does not cover the model's
bias (regularisation or a missing effect modifier pulls predictions toward the average, which no refit
of the same procedure can see): benchmarks/interval_coverage.py measured 85% coverage of the true
probability on the ``literature`` scenario (nominal 90%) and 42% within the drug arm on ``strong``.
Why not a conformal or Venn-Abers interval (crepes, MAPIE): those cover a label, or the calibration-set
uncertainty of a score, not a probability; binary outcomes cannot identify the spread of true
probabilities among patients with one score.

The percentile grid is the 1st to 99th percentiles (no minimum or maximum) of the selected procedure's
out-of-fold predictions per arm (each course's mean over CV repeats), only for an arm with at least
``MIN_ARM_COURSES`` training courses. These are aggregates of predictions, not of features or outcomes,
but not anonymous: a grid point can equal one course's out-of-fold prediction (np.percentile lands on a
value whenever the rank is whole).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

EPS = 1e-6               # probabilities are clipped to [EPS, 1 - EPS] before the logit
MIN_ARM_COURSES = 100    # fewer training courses of an arm: no percentile grid for it (blank percentile)
MIN_FILL_COURSES = 50    # fewer observed values of a feature: no missing-value fills for it
QUANTILES = np.arange(1.0, 100.0)  # 1st to 99th: the 0th and 100th would be one course's own prediction
OLD_QUANTILES = np.linspace(0.0, 100.0, 101)  # the 0th-100th grid of models logged before the 1-99 grid


@dataclass
class Intervals:
    """The bootstrap replicates of a logged model and its percentile grids.

    Attributes
    ----------
    estimators : the response (or percentage-change) model refit on each patient bootstrap resample
    level : the intervals' nominal coverage (0.90: a 90% interval)
    grids : arm -> the 1st to 99th percentiles of the selected procedure's out-of-fold predictions of the
        arm's training courses (101 points, 0th to 100th, in models logged before)
    site_sd : the between-site SD of the log-odds of response that the model does not explain (estimated in
        training; 0 with fewer than three sites), added in quadrature to the replicates' SD: a new patient's
        site shifts the probability by an amount no refit of a model without site can see
    fills : feature -> one value per replicate that fills the feature where a course lacks it: the training
        quantiles at (k + 0.5) / R, k = 0..R-1, assigned to replicates in a random order of their own per feature
        (a Latin hypercube over the features). The interval then carries what the unmeasured values could have
        been; the probability shown keeps the model's own imputation.
    failed : replicates whose every resample failed to fit (a one-class inner fold), left out of *estimators*
    requested : the replicates training asked for (``intervals.replicates``)
    """

    estimators: list[Any]
    level: float
    grids: dict[str, np.ndarray] = field(default_factory=dict)
    site_sd: float = 0.0
    fills: dict[str, np.ndarray] = field(default_factory=dict)
    failed: int = 0
    requested: int = 0

    def replicate_predictions(self, X: Any) -> np.ndarray:
        """Each replicate's predictions of the courses *X*, a course's missing features filled as in :attr:`fills`."""
        from ketamine_response.models.families import predict

        fills = {c: v for c, v in getattr(self, "fills", {}).items() if c in X}
        if not fills or not all(X.dtypes == np.float64):  # the general path (a model with other columns)
            return np.vstack([predict(e, X.fillna({c: float(v[r]) for c, v in fills.items() if r < len(v)}) if fills else X)
                              for r, e in enumerate(self.estimators)])
        # the features' matrix once, its missing cells found once; each replicate gets a copy with its own values
        # in those cells (what fillna writes there, without a pandas pass over every column per replicate)
        matrix = X.to_numpy(dtype=np.float64, copy=True)
        holes = {X.columns.get_loc(c): np.flatnonzero(np.isnan(matrix[:, X.columns.get_loc(c)])) for c in fills}
        out = np.empty((len(self.estimators), len(X)))
        for r, estimator in enumerate(self.estimators):
            filled = matrix.copy()
            for (j, rows), v in zip(holes.items(), fills.values(), strict=True):
                if r < len(v):
                    filled[rows, j] = float(v[r])
            out[r] = predict(estimator, pd.DataFrame(filled, index=X.index, columns=X.columns, copy=False))
        return out

    def bounds(self, X: Any, value: np.ndarray, probability: bool) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of the final model's predictions *value* of the courses *X* (a feature table)."""
        replicates = self.replicate_predictions(X)
        if probability:
            return probability_bounds(value, replicates, self.level, getattr(self, "site_sd", 0.0))
        return value_bounds(value, replicates, self.level)

    def percentiles(self, values: np.ndarray, arms: np.ndarray) -> np.ndarray:
        """Each course's percentile among the training courses of its arm (NaN for an arm without a grid)."""
        out = np.full(len(values), np.nan)
        for arm, grid in self.grids.items():
            here = np.asarray(arms) == arm
            out[here] = percentile(np.asarray(values)[here], grid)
        return out

    def benefit_bounds(self, model: Any, X: Any, effect: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) of a drug's predicted benefit *effect* (risk difference), from the benefit model's own
        replicates (:attr:`CalibratedBenefit.replicates`), clipped to [-1, 1] like the benefit."""
        replicates = getattr(model, "replicates", [])
        if len(replicates) < 2:
            return np.full(len(effect), np.nan), np.full(len(effect), np.nan)
        low, high = value_bounds(effect, np.vstack([r.effect(X) for r in replicates]), self.level)
        return np.clip(low, -1.0, 1.0), np.clip(high, -1.0, 1.0)


def z_of(level: float, replicates: int | None = None) -> float:
    """z_(1+level)/2 (1.645 for a 90% interval); with the number of *replicates* the SD is estimated from,
    Student's t with replicates - 1 degrees of freedom instead (1.729 for 20): an SD from 20 replicates is
    itself uncertain, and the normal quantile would cover about 88% where 90% is meant."""
    from scipy.stats import norm, t

    q = (1.0 + level) / 2.0
    return float(norm.ppf(q) if replicates is None else t.ppf(q, replicates - 1))


def logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(np.asarray(p, dtype=float), EPS, 1.0 - EPS)
    return np.asarray(np.log(q) - np.log1p(-q))


def probability_bounds(p: np.ndarray, replicates: np.ndarray, level: float,
                       extra_sd: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of probabilities *p* from *replicates* (one row per replicate): logit(p) ± t·SD, mapped back;
    SD is the replicates' SD of the logit, with *extra_sd* (on the logit scale) added in quadrature.

    NaN where *p* is NaN (a course of an arm never seen) or fewer than two replicates predict.
    """
    from scipy.special import expit

    sd = np.std(logit(replicates), axis=0, ddof=1) if len(replicates) > 1 else np.full(np.shape(p), np.nan)
    centre, half = logit(p), z_of(level, len(replicates)) * np.sqrt(sd**2 + extra_sd**2)
    low, high = expit(centre - half), expit(centre + half)
    # the bounds of a clipped probability are the clipped value's; the shown probability always lies inside
    low, high = np.minimum(low, p), np.maximum(high, p)
    return low, high


def value_bounds(value: np.ndarray, replicates: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) of predictions on their own scale (a percentage change, a benefit): value ± t·SD."""
    sd = np.std(replicates, axis=0, ddof=1) if len(replicates) > 1 else np.full(np.shape(value), np.nan)
    half = z_of(level, len(replicates)) * sd
    return value - half, value + half


def quantile_grid(values: np.ndarray) -> np.ndarray:
    """The 1st to 99th percentiles of *values* (99 numbers)."""
    return np.asarray(np.percentile(np.asarray(values, dtype=float), QUANTILES))


def grids_by_arm(values: np.ndarray, arms: np.ndarray, minimum: int = MIN_ARM_COURSES) -> dict[str, np.ndarray]:
    """Per arm with at least *minimum* training courses, the :func:`quantile_grid` of its predictions."""
    return {str(arm): quantile_grid(values[arms == arm]) for arm in np.unique(arms)
            if (arms == arm).sum() >= minimum}


def percentile(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Where each of *values* lies among the training predictions the *grid* summarises: 1 to 99 (a value
    below the 1st percentile is shown as 1, above the 99th as 99); 0 to 100 for an older model's 101-point grid.

    Hand-written: scipy's ``percentileofscore`` needs the training values themselves, which the model does
    not keep. Between grid points it interpolates linearly; on a run of equal grid points (a model that gives
    many courses one probability) it takes the middle of the run, so equal probabilities get one percentile
    and the percentile never falls as the probability rises.
    """
    v = np.asarray(values, dtype=float)
    levels = OLD_QUANTILES if len(grid) == len(OLD_QUANTILES) else QUANTILES
    left, right = np.searchsorted(grid, v, "left"), np.searchsorted(grid, v, "right")
    tied, last = right > left, len(levels) - 1
    mid = (levels[np.clip(left, 0, last)] + levels[np.clip(right - 1, 0, last)]) / 2
    between = np.interp(v, grid, levels)  # grid is non-decreasing; ties are handled above
    return np.where(np.isnan(v), np.nan, np.where(tied, mid, between))


def between_site_sd(p: np.ndarray, y: np.ndarray, sites: np.ndarray, least: int = 30) -> float:
    """The SD of the sites' log-odds offsets from predictions *p*, less their sampling noise (0 when fewer than
    three sites have *least* courses and both outcomes).

    Each site's offset d solves mean(expit(logit p + d)) = mean(y) over its courses; its sampling variance is
    about 1 / sum p(1 - p). The between-site variance is the offsets' variance minus the mean sampling variance
    (a method-of-moments random-effects estimate, floored at 0). Hand-written: it is a few lines on aggregates,
    where a mixed-model library would refit the whole model.
    """
    from scipy.optimize import brentq
    from scipy.special import expit

    offsets, noise = [], []
    for site in np.unique(sites):
        here = sites == site
        if here.sum() < least or np.ptp(y[here]) == 0:
            continue
        z, rate = logit(p[here]), float(np.mean(y[here]))
        offsets.append(brentq(lambda d: float(np.mean(expit(z + d))) - rate, -20.0, 20.0))  # noqa: B023 - called here
        noise.append(1.0 / float(np.sum(p[here] * (1 - p[here]))))
    if len(offsets) < 3:
        return 0.0
    return float(np.sqrt(max(0.0, np.var(offsets, ddof=1) - np.mean(noise))))


def replicate_fills(X: Any, replicates: int, rng: np.random.Generator, least: int = MIN_FILL_COURSES) -> dict[str, np.ndarray]:
    """:attr:`Intervals.fills` from a training feature table: interior quantiles only (never a course's own
    minimum or maximum), for each numeric feature observed in at least *least* courses."""
    levels = 100.0 * (np.arange(replicates) + 0.5) / replicates
    out = {}
    for column in X.columns:
        values = X[column].to_numpy(dtype=float, na_value=np.nan) if X[column].dtype.kind in "fiub" else None
        if values is not None and np.isfinite(values).sum() >= least:
            out[str(column)] = np.percentile(values[np.isfinite(values)], levels)[rng.permutation(replicates)]
    return out
