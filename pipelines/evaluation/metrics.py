"""Performance of out-of-fold probabilities: discrimination, calibration, clinical utility, with CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from scipy.stats import rankdata

CI_METRICS = ("auroc", "auprc", "brier", "balanced_accuracy", "sensitivity", "specificity")


def auroc(y: np.ndarray, p: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney form; ties count half). NaN with one class."""
    pos = y == 1
    n_pos, n_neg = pos.sum(), (~pos).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(p)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


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
    # Newton-Raphson for logit P(y) = a + b*x + offset; b fixed at 0 when slope is False.
    a, b = 0.0, 0.0
    for _ in range(50):
        eta = a + b * x + offset
        mu = expit(eta)
        w = np.maximum(mu * (1 - mu), 1e-12)
        design = np.column_stack([np.ones_like(x), x]) if slope else np.ones((len(x), 1))
        grad = design.T @ (y - mu)
        hess = design.T @ (design * w[:, None])
        step = np.linalg.solve(hess + 1e-9 * np.eye(len(grad)), grad)
        a += step[0]
        b += step[1] if slope else 0.0
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


def calibration_slope_intercept(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration slope (logistic recalibration) and calibration-in-the-large intercept."""
    lp = logit(np.clip(p, 1e-6, 1 - 1e-6))
    # near-constant predictions (the prevalence model) have no slope worth reporting
    if np.std(lp) < 0.05 or y.min() == y.max():
        return float("nan"), float("nan")
    _, slope = _fit_logistic(lp, y, np.zeros_like(lp), slope=True)
    intercept, _ = _fit_logistic(lp, y, lp, slope=False)
    return slope, intercept


def threshold_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """Sensitivity, specificity and balanced accuracy when predicting a responder at p >= threshold."""
    pred = p >= threshold
    pos = y == 1
    sens = float(pred[pos].mean()) if pos.any() else float("nan")
    spec = float((~pred[~pos]).mean()) if (~pos).any() else float("nan")
    return {"sensitivity": sens, "specificity": spec, "balanced_accuracy": (sens + spec) / 2}


def point_metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict[str, float]:
    """All point metrics of one set of probabilities."""
    slope, intercept = calibration_slope_intercept(y, p)
    return {
        "auroc": auroc(y, p), "auprc": auprc(y, p), "brier": brier(y, p), "log_loss": log_loss(y, p),
        "calibration_slope": slope, "calibration_intercept": intercept,
        **threshold_metrics(y, p, threshold),
        "n_courses": float(len(y)), "n_events": float(y.sum()),
    }


def bootstrap_ci(y: np.ndarray, p: np.ndarray, patients: np.ndarray, threshold: float,
                 n_boot: int, seed: int) -> dict[str, tuple[float, float]]:
    """95% percentile CIs from resampling whole patients (their courses stay together)."""
    rng = np.random.default_rng(seed)
    codes = np.unique(patients, return_inverse=True)[1]
    rows_of = pd.Series(np.arange(len(y))).groupby(codes).apply(np.asarray).to_list()
    draws: dict[str, list[float]] = {m: [] for m in CI_METRICS}
    for _ in range(n_boot):
        pick = np.concatenate([rows_of[i] for i in rng.integers(0, len(rows_of), len(rows_of))])
        yb, pb = y[pick], p[pick]
        values = {"auroc": auroc(yb, pb), "auprc": auprc(yb, pb), "brier": brier(yb, pb),
                  **threshold_metrics(yb, pb, threshold)}
        for m in CI_METRICS:
            draws[m].append(values[m])
    return {m: (float(np.nanpercentile(v, 2.5)), float(np.nanpercentile(v, 97.5))) for m, v in draws.items()}


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


def subgroup_table(y: np.ndarray, p: np.ndarray, groups: dict[str, np.ndarray], min_n: int = 10) -> pd.DataFrame:
    """Per subgroup (sex, arm, site): n, events, AUROC, Brier, mean predicted vs observed rate.

    Subgroups smaller than *min_n* are reported with counts only, so no small cell is over-read.
    """
    rows = []
    for name, labels in groups.items():
        for level in pd.unique(labels):
            if pd.isna(level):
                continue
            m = labels == level
            small = m.sum() < min_n
            rows.append({"subgroup": name, "level": str(level), "n": int(m.sum()), "events": int(y[m].sum()),
                         "auroc": np.nan if small else auroc(y[m], p[m]),
                         "brier": np.nan if small else brier(y[m], p[m]),
                         "mean_predicted": float(p[m].mean()), "observed_rate": float(y[m].mean())})
    return pd.DataFrame(rows)
