"""The patient-bootstrap CIs of the binary metrics (:func:`~ketamine_response.pipelines.evaluation.metrics.bootstrap_ci`),
computed so that each resample's value is bit-identical to the metric computed on the resampled arrays.

Every resample of a CV repeat's predictions reuses what does not depend on the resample, worked out once:
the logit of each prediction, its squared error, whether it is at or above its threshold, and the tie groups
of the predictions. AUROC then needs no sort: with integer counts of positives and negatives per tie group,
the Mann-Whitney U is a sum of whole and half numbers, exact in float64 (below 2**53), so it equals the
rank-sum form's value bit for bit. Average precision takes its order from the tie groups: when no tie mixes
responders and non-responders the order within a tie does not change the value, and a few thousand tie
groups are ordered by a radix sort of their 16-bit codes (the order a stable sort of the resample gives); any
other prediction set is sorted per resample, as before. The calibration fit runs as before on the gathered
logits. Predictions with NaN take the plain per-resample path.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.special import logit

from ketamine_response.pipelines.evaluation.metrics import (
    CI_METRICS,
    Threshold,
    auprc,
    averaged,
    calibration_from_logit,
    percentile_interval,
    resampled_metrics,
)
from ketamine_response.pipelines.evaluation.resampling import patient_resamples

_RADIX = 2**16 - 1  # numpy's stable sort is a radix sort for 16-bit keys: linear in the resample's size


class _Prepared:
    """One prediction set's resample-free parts."""

    def __init__(self, y: np.ndarray, p: np.ndarray, t: np.ndarray) -> None:
        self.y, self.p = y, p
        self.lp = logit(np.clip(p, 1e-6, 1 - 1e-6))
        self.squared = (p - y) ** 2
        self.above = p >= t
        self.positive = y == 1
        values, up = np.unique(p, return_inverse=True)  # tie groups, ascending
        self.up = up.ravel()
        self.n_groups = len(values)
        self.down = self.n_groups - 1 - self.up  # descending: average precision's order
        per_group = np.bincount(self.down, weights=y.astype(float), minlength=self.n_groups)
        sizes = np.bincount(self.down, minlength=self.n_groups)
        self.pure = bool(np.all((per_group == 0) | (per_group == sizes)))  # no tie mixes the classes
        self.group_y = np.zeros(self.n_groups, dtype=y.dtype)
        self.group_y[self.down] = y
        self.key = self.down.astype(np.uint16) if self.n_groups <= _RADIX else None

    def metrics(self, pick: np.ndarray) -> list[float]:
        """The CI metrics of one resample, in CI_METRICS order (as :func:`metrics.resampled_metrics` gives them)."""
        y, positive = self.y[pick], self.positive[pick]
        slope, intercept = calibration_from_logit(y, self.lp[pick])
        above = self.above[pick]
        sens = float(above[positive].mean()) if positive.any() else float("nan")
        spec = float((~above[~positive]).mean()) if (~positive).any() else float("nan")
        values = {"auroc": self._auroc(pick, positive), "auprc": self._auprc(pick, y),
                  "brier": float(np.mean(self.squared[pick])), "balanced_accuracy": (sens + spec) / 2,
                  "sensitivity": sens, "specificity": spec, "calibration_slope": slope,
                  "calibration_intercept": intercept}
        return [values[m] for m in CI_METRICS]

    def _auroc(self, pick: np.ndarray, positive: np.ndarray) -> float:
        n_pos, n_neg = positive.sum(), (~positive).sum()
        if n_pos == 0 or n_neg == 0:
            return float("nan")
        groups = self.up[pick]
        pos = np.bincount(groups[positive], minlength=self.n_groups)
        neg = np.bincount(groups[~positive], minlength=self.n_groups)
        below = np.cumsum(neg) - neg  # negatives under each tie group; a tie counts half
        return float(np.sum(pos * (below + 0.5 * neg)) / (n_pos * n_neg))

    def _auprc(self, pick: np.ndarray, y: np.ndarray) -> float:
        if y.sum() == 0:
            return float("nan")
        if self.pure:
            hits = np.repeat(self.group_y, np.bincount(self.down[pick], minlength=self.n_groups))
        elif self.key is not None:
            hits = y[np.argsort(self.key[pick], kind="stable")]
        else:
            return auprc(y, self.p[pick])
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        return float((precision * hits).sum() / hits.sum())


def binary_bootstrap_ci(y: np.ndarray, p: np.ndarray, patients: np.ndarray, threshold: Threshold,
                        n_boot: int, seed: int) -> dict[str, tuple[float, float]]:
    """95% percentile CIs of :data:`CI_METRICS` over *n_boot* patient resamples; *p* is one prediction set or one
    row per CV repeat (each resample's metrics averaged over the repeats, NaN ignored)."""
    rows = np.atleast_2d(p)
    t = np.broadcast_to(np.asarray(threshold, dtype=float), y.shape)
    if np.isnan(rows).any():
        return _plain(y, rows, patients, t, n_boot, seed)
    prepared = [_Prepared(y, row, t) for row in rows]
    draws = np.empty((n_boot, len(CI_METRICS), len(rows)))
    for b, pick in enumerate(patient_resamples(patients, n_boot, seed)):
        for r, repeat in enumerate(prepared):
            draws[b, :, r] = repeat.metrics(pick)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a metric undefined in every repeat stays NaN
        mean = np.nanmean(draws, axis=2)  # the last, contiguous axis: summed as averaged() sums each list
    return {m: percentile_interval(mean[:, i]) for i, m in enumerate(CI_METRICS)}


def _plain(y: np.ndarray, rows: np.ndarray, patients: np.ndarray, t: np.ndarray, n_boot: int,
           seed: int) -> dict[str, tuple[float, float]]:
    """Each metric computed on each resample's arrays."""
    draws: dict[str, list[float]] = {m: [] for m in CI_METRICS}
    for pick in patient_resamples(patients, n_boot, seed):
        values = averaged(resampled_metrics, y[pick], rows[:, pick], t[pick])
        for m in CI_METRICS:
            draws[m].append(values[m])
    return {m: percentile_interval(np.asarray(v)) for m, v in draws.items()}
