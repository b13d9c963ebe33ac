"""Performance of out-of-fold probabilities: discrimination, calibration, clinical utility, with CIs."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import rankdata

from ketamine_response.pipelines.evaluation.resampling import patient_resamples

CI_METRICS = ("auroc", "auprc", "brier", "balanced_accuracy", "sensitivity", "specificity", "calibration_slope",
              "calibration_intercept")
# a threshold per course (each judged at its training folds' threshold) or one for all
Threshold = float | np.ndarray


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney form; ties count half). NaN with one class."""
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def concordance(predicted: np.ndarray, observed: np.ndarray) -> float:
    """Harrell's C of *predicted* against an ordinal *observed* (ties in observed excluded, in predicted half)."""
    levels = np.unique(observed)
    concordant, comparable = 0.0, 0.0
    for i, low in enumerate(levels):
        for high in levels[i + 1:]:
            a, b = predicted[observed == low], predicted[observed == high]
            # Mann-Whitney U of b over a: the number of (a, b) pairs ranked the right way, ties half
            ranks = rankdata(np.concatenate([a, b]))
            u = ranks[len(a):].sum() - len(b) * (len(b) + 1) / 2
            concordant += u
            comparable += len(a) * len(b)
    return concordant / comparable if comparable else float("nan")


def newcombe(drug: np.ndarray, placebo: np.ndarray) -> tuple[float, float, float]:
    """Difference of two proportions with Newcombe's hybrid score 95% interval (sensible at 0% or 100%)."""
    from statsmodels.stats.proportion import proportion_confint

    if not len(drug) or not len(placebo):
        return float("nan"), float("nan"), float("nan")
    p1, p2 = drug.mean(), placebo.mean()
    l1, u1 = proportion_confint(drug.sum(), len(drug), method="wilson")
    l2, u2 = proportion_confint(placebo.sum(), len(placebo), method="wilson")
    d = p1 - p2
    return float(d), float(d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)), float(d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


def brier(y: np.ndarray, p: np.ndarray) -> float:
    """Brier score: mean squared difference between probability and outcome (lower is better)."""
    return float(np.mean((p - y) ** 2))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood of the outcomes (lower is better); p clipped away from 0 and 1."""
    q = np.clip(p, 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))


def auprc(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision (step-wise area under the precision-recall curve)."""
    if y.sum() == 0:
        return float("nan")
    order = np.argsort(-p, kind="stable")
    hits = y[order]
    precision = np.cumsum(hits) / np.arange(1, len(y) + 1)
    return float((precision * hits).sum() / hits.sum())


def _fit_logistic(x: np.ndarray, y: np.ndarray, offset: np.ndarray, slope: bool) -> tuple[float, float]:
    # Newton-Raphson for logit P(y) = a + b*x + offset; b fixed at 0 when slope is False. The design and the
    # ridge do not change between iterations (built once: the bootstrap runs this a thousand times a CI).
    a, b = 0.0, 0.0
    design = np.column_stack([np.ones_like(x), x]) if slope else np.ones((len(x), 1))
    ridge = 1e-9 * np.eye(design.shape[1])
    for _ in range(50):
        eta = a + b * x + offset
        mu = expit(eta)
        w = np.maximum(mu * (1 - mu), 1e-12)
        grad = design.T @ (y - mu)
        hess = design.T @ (design * w[:, None])
        step = np.linalg.solve(hess + ridge, grad)
        a += step[0]
        b += step[1] if slope else 0.0
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


def calibration_slope_intercept(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration slope (logistic recalibration) and calibration-in-the-large intercept."""
    return calibration_from_logit(y, logit(np.clip(p, 1e-6, 1 - 1e-6)))


def calibration_from_logit(y: np.ndarray, lp: np.ndarray) -> tuple[float, float]:
    """:func:`calibration_slope_intercept` from the clipped logits *lp* of the probabilities (the bootstrap
    gathers them from one logit per course)."""
    if y.min() == y.max():
        return float("nan"), float("nan")
    intercept, _ = _fit_logistic(lp, y, lp, slope=False)
    # near-constant predictions (the prevalence model) have no slope worth reporting; calibration in the large
    # (the prediction as an offset) is still defined for them and says whether the constant is right
    if np.std(lp) < 0.05:
        return float("nan"), intercept
    _, slope = _fit_logistic(lp, y, np.zeros_like(lp), slope=True)
    return slope, intercept


FLEXIBLE_CALIBRATION = ("calibration_ici", "calibration_e50", "calibration_e90", "calibration_emax")


# Up to this many courses the loess curve is fitted at every prediction. Above it, as R's lowess does by default,
# at predictions at least 1% of their range apart, linearly interpolated between them (statsmodels' delta): a
# span of 2/3 makes the exact fit quadratic in the courses (about 0.3 s at 7,000, some 30 s at 70,000 a curve).
LOESS_EXACT_UP_TO = 20_000


def loess_calibration(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """The observed outcome smoothed against the predicted probability, at each prediction: loess
    (statsmodels ``lowess``, span 2/3, no robustness iterations), as Austin & Steyerberg (2019) use it;
    interpolated between points 1% of the range apart above :data:`LOESS_EXACT_UP_TO` courses."""
    from statsmodels.nonparametric.smoothers_lowess import lowess

    delta = 0.0 if len(p) <= LOESS_EXACT_UP_TO else 0.01 * float(np.ptp(p))
    return np.asarray(lowess(y.astype(float), p.astype(float), frac=2 / 3, it=0, delta=delta, return_sorted=False),
                      dtype=float)


def has_calibration_curve(y: np.ndarray, p: np.ndarray) -> bool:
    """Whether a loess calibration curve (and the ICI) is defined: at least 3 courses, both outcomes, and
    predictions with spread (SD of their logit at least 0.05, as for the calibration slope)."""
    return len(y) >= 3 and not np.std(logit(np.clip(p, 1e-6, 1 - 1e-6))) < 0.05 and y.min() != y.max()


def flexible_calibration(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """Integrated Calibration Index and its relatives (Austin PC, Steyerberg EW, Stat Med 2019;38:4051-65).

    The distance |smoothed observed - predicted| along a loess calibration curve
    (:func:`loess_calibration`), at every course: ICI is its mean, E50 its median, E90 its 90th
    percentile, Emax its maximum (0 is ideal for all). NaN, as for the calibration slope, when the
    predictions have no spread (SD of their logit below 0.05) or the outcome has one class.

    No bootstrap CI: one loess fit takes about 12 ms at 1,000 courses, so 500 patient resamples
    times the CV repeats would take 6 s or more per run (over the 3 s budget for a CI).
    """
    if not has_calibration_curve(y, p):
        return dict.fromkeys(FLEXIBLE_CALIBRATION, float("nan"))
    gap = np.abs(loess_calibration(y, p) - p)
    return {"calibration_ici": float(gap.mean()), "calibration_e50": float(np.median(gap)),
            "calibration_e90": float(np.percentile(gap, 90)), "calibration_emax": float(gap.max())}


def threshold_metrics(y: np.ndarray, p: np.ndarray, threshold: Threshold) -> dict[str, float]:
    """Sensitivity, specificity and balanced accuracy when predicting a responder at p >= threshold."""
    pred = p >= threshold
    pos = y == 1
    sens = float(pred[pos].mean()) if pos.any() else float("nan")
    spec = float((~pred[~pos]).mean()) if (~pos).any() else float("nan")
    return {"sensitivity": sens, "specificity": spec, "balanced_accuracy": (sens + spec) / 2}


def point_metrics(y: np.ndarray, p: np.ndarray, threshold: Threshold) -> dict[str, float]:
    """All point metrics of one set of probabilities."""
    slope, intercept = calibration_slope_intercept(y, p)
    return {
        "auroc": auroc(y, p), "auprc": auprc(y, p), "brier": brier(y, p), "log_loss": log_loss(y, p),
        "calibration_slope": slope, "calibration_intercept": intercept,
        **threshold_metrics(y, p, threshold),
        "n_courses": float(len(y)), "n_events": float(y.sum()),
    }


def averaged(metric: Callable[..., dict[str, float]], y: np.ndarray, p: np.ndarray, *args: Any) -> dict[str, float]:
    """*metric* (a dict of values) of each row of *p* (one CV repeat's predictions per row, or one 1-D set),
    averaged over rows: a repeat's predictions are one honest prediction set, their mean is not."""
    rows = [metric(y, row, *args) for row in np.atleast_2d(p)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a metric undefined in every repeat stays NaN
        return {k: float(np.nanmean([r[k] for r in rows])) for k in rows[0]}


def _levels(groups: dict[str, np.ndarray]) -> Iterator[tuple[str, str, np.ndarray]]:
    """(grouping, level, mask) for every non-missing level of every grouping."""
    for name, labels in groups.items():
        for level in pd.unique(labels):
            if not pd.isna(level):
                yield name, str(level), labels == level


def bootstrap_ci(y: np.ndarray, p: np.ndarray, patients: np.ndarray, threshold: Threshold,
                 n_boot: int, seed: int) -> dict[str, tuple[float, float]]:
    """95% percentile CIs from resampling whole patients (their courses stay together); *p* is one
    prediction set, or one row per CV repeat (each resample's metrics then averaged over repeats).

    They hold the fitted out-of-fold predictions fixed, so they leave out the variance of refitting
    and selection (see the run notes); NaN where a metric is undefined in most resamples. Computed in
    :mod:`~ketamine_response.pipelines.evaluation.bootstrap`: each resample's values are bit-identical to
    :func:`resampled_metrics` of the resampled arrays, much faster.
    """
    from ketamine_response.pipelines.evaluation.bootstrap import binary_bootstrap_ci  # it imports this module

    return binary_bootstrap_ci(y, p, patients, threshold, n_boot, seed)


def resampled_metrics(y: np.ndarray, p: np.ndarray, t: np.ndarray) -> dict[str, float]:
    """The CI metrics of one (resampled) prediction set."""
    slope, intercept = calibration_slope_intercept(y, p)
    return {"auroc": auroc(y, p), "auprc": auprc(y, p), "brier": brier(y, p), "calibration_slope": slope,
            "calibration_intercept": intercept, **threshold_metrics(y, p, t)}


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    seen = values[~np.isnan(values)]
    if len(seen) < len(values) / 2:  # undefined in most resamples: no honest interval
        return float("nan"), float("nan")
    return float(np.percentile(seen, 2.5)), float(np.percentile(seen, 97.5))


def corrected_cv_interval(fold_values: np.ndarray, test_share: float,
                          bounds: tuple[float, float] = (-np.inf, np.inf)) -> tuple[float, float, float]:
    """The mean of per-fold estimates and its 95% interval, refit and selection variance included.

    The corrected resampled t interval (Nadeau & Bengio 2003; Bouckaert & Frank 2004 for repeated
    k-fold): the spread of the per-fold estimates, inflated by n_test/n_train for the overlap of the
    folds' training sets, with a t quantile on J - 1 degrees of freedom, around their mean (the
    quantity whose variance the spread describes). Every fold re-ran the whole procedure, so its
    variance is in the spread. Written here because scikit-learn and SciPy offer only the
    uncorrected t interval, which is far too narrow for overlapping folds. The interval is cut to the
    statistic's possible range (*bounds*: an AUROC cannot exceed 1).
    """
    from scipy.stats import t

    values = fold_values[~np.isnan(fold_values)]
    if len(values) < 2:
        return float("nan"), float("nan"), float("nan")
    mean = float(values.mean())
    half = t.ppf(0.975, len(values) - 1) * np.sqrt((1 / len(values) + test_share / (1 - test_share)) * values.var(ddof=1))
    return mean, float(max(mean - half, bounds[0])), float(min(mean + half, bounds[1]))


def decision_curve(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray | None = None) -> pd.DataFrame:
    """Net benefit of the model, treat-all and treat-none across threshold probabilities."""
    thresholds = np.arange(0.05, 0.81, 0.01) if thresholds is None else thresholds
    n, prevalence = len(y), y.mean()
    rows = []
    for t in thresholds:
        pred = p >= t
        odds = t / (1 - t)
        tp, fp = np.sum(pred & (y == 1)), np.sum(pred & (y == 0))
        rows.append((t, tp / n - fp / n * odds, prevalence - (1 - prevalence) * odds, 0.0))
    return pd.DataFrame(rows, columns=["threshold", "model", "treat_all", "treat_none"])


def subgroup_table(y: np.ndarray, p: np.ndarray, groups: dict[str, np.ndarray], min_n: int = 10,
                   min_per_class: int = 5) -> pd.DataFrame:
    """Per subgroup (sex, arm, site): n, events, AUROC, Brier, mean predicted vs observed rate.

    Subgroups smaller than *min_n*, or with fewer than *min_per_class* courses in either outcome
    class, are reported with counts only, so no small cell is over-read.
    """
    rows = []
    for name, level, m in _levels(groups):
        small = m.sum() < min_n or min(y[m].sum(), (1 - y[m]).sum()) < min_per_class
        rows.append({"subgroup": name, "level": level, "n": int(m.sum()), "events": int(y[m].sum()),
                     "auroc": np.nan if small else auroc(y[m], p[m]), "brier": np.nan if small else brier(y[m], p[m]),
                     "mean_predicted": float(p[m].mean()), "observed_rate": float(y[m].mean())})
    return pd.DataFrame(rows)


# Continuous targets (pct_change_<tp>: percentage change in MADRS). The names say what they measure.
CONTINUOUS_CI_METRICS = ("r2_pct_change", "rmse_pct_change", "calibration_slope_pct_change")


def r2(y: np.ndarray, p: np.ndarray) -> float:
    """Out-of-sample R2: 1 - residual / total sum of squares (negative when worse than the mean)."""
    total = float(np.sum((y - y.mean()) ** 2))
    return float(1 - np.sum((y - p) ** 2) / total) if total > 0 else float("nan")


def continuous_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """R2, RMSE and MAE (percentage points), and calibration of the continuous prediction.

    Calibration slope: the OLS slope of the outcome on the prediction (1 is ideal; below 1, the
    predictions are too spread out); calibration in the large: mean outcome minus mean prediction.
    """
    spread = float(np.var(p))
    # near-constant predictions (the mean model) have no slope worth reporting, as for probabilities
    slope = float(np.cov(p, y, bias=True)[0, 1] / spread) if np.sqrt(spread) > 0.05 * np.std(y) else float("nan")
    return {"r2_pct_change": r2(y, p), "rmse_pct_change": float(np.sqrt(np.mean((y - p) ** 2))),
            "mae_pct_change": float(np.mean(np.abs(y - p))), "calibration_slope_pct_change": slope,
            "calibration_in_the_large_pct_change": float(y.mean() - p.mean()),
            "mean_outcome_pct_change": float(y.mean()), "n_courses": float(len(y))}


def continuous_bootstrap_ci(y: np.ndarray, p: np.ndarray, patients: np.ndarray, n_boot: int,
                            seed: int) -> dict[str, tuple[float, float]]:
    """95% percentile CIs of the continuous metrics from resampling whole patients."""
    draws: dict[str, list[float]] = {m: [] for m in CONTINUOUS_CI_METRICS}
    for pick in patient_resamples(patients, n_boot, seed):
        values = averaged(continuous_metrics, y[pick], np.atleast_2d(p)[:, pick])
        for m in CONTINUOUS_CI_METRICS:
            draws[m].append(values[m])
    return {m: percentile_interval(np.asarray(v)) for m, v in draws.items()}


def continuous_subgroups(y: np.ndarray, p: np.ndarray, groups: dict[str, np.ndarray], min_n: int = 10) -> pd.DataFrame:
    """Per subgroup: n, mean observed and predicted change, RMSE (counts only below *min_n* courses)."""
    rows = []
    for name, level, m in _levels(groups):
        small = m.sum() < min_n
        rows.append({"subgroup": name, "level": level, "n": int(m.sum()),
                     "mean_observed": float(y[m].mean()), "mean_predicted": float(p[m].mean()),
                     "rmse": np.nan if small else float(np.sqrt(np.mean((y[m] - p[m]) ** 2)))})
    return pd.DataFrame(rows)


# Each task's headline metric by the name its entry gives (features/tasks.py): what a run is judged and
# permutation-tested by.
def c_index(y: np.ndarray, p: np.ndarray) -> float:
    """Harrell's C of a time to relapse (see :mod:`~ketamine_response.pipelines.evaluation.survival`)."""
    from ketamine_response.pipelines.evaluation.survival import harrell_c  # it imports this module

    return harrell_c(y, p)


STATISTICS = {"auroc": auroc, "r2_pct_change": r2, "c_index": c_index}
