"""One estimator per metric name: the table every printed and logged number follows.

A metric name (``auroc_active``, ``auroc``, ``brier`` ...) means one number for one run wherever it appears:
the terminal table, ``runs``, the MLflow metrics, the run and version descriptions, the plot legends and
the report. Each name has exactly one point estimator and one interval, computed for that estimator:

* ``repeat mean``: the metric of each CV repeat's out-of-fold predictions (one honest prediction set per
  repeat), averaged over repeats (:mod:`~ketamine_response.pipelines.evaluation.repeats`); the permutation
  test tests this number, so the p sits beside the value it tests.
* ``corrected t``: the corrected resampled t interval over outer folds (Nadeau & Bengio 2003), refit and
  selection included; its half-widths are centred on the repeat mean (the per-fold values' own mean is not
  shown under the name: two points under one name were the bug this table fixes).
* ``patient bootstrap``: percentile interval from resampling whole patients over the fixed out-of-fold
  predictions (the models are held fixed, so it leaves out refit variance). A percentile interval that
  misses its own point (a strongly skewed bootstrap distribution) is withheld: no honest interval, and the
  name is recorded (:func:`skewed`) so that tables say "interval withheld: bootstrap skewed", not a bare point.

No point estimate may sit outside its own interval: :func:`check_intervals` raises where metrics are
assembled (``Evaluation`` calls it on every change), so the bug cannot reach a reader.
"""

from __future__ import annotations

import math
from typing import NamedTuple


class Estimator(NamedTuple):
    """How a metric's point and its interval are computed, and on which courses."""

    point: str
    interval: str
    courses: str


_DRUG = "drug-arm courses"
_ALL = "all courses (all arms)"
# the README's "One number per name" table states the same in words
METRICS: dict[str, Estimator] = {
    "auroc_active": Estimator("repeat mean, within each drug then course-weighted", "corrected t", _DRUG),
    "auroc": Estimator("repeat mean", "corrected t", _ALL),
    "auroc_gain_over_arm": Estimator("repeat mean of auroc minus the arm-only model's", "corrected t of per-fold differences", _ALL),
    "auroc_arm_only": Estimator("repeat mean (the arm-only model's auroc)", "none", _ALL),
    "calibration_slope_active": Estimator("repeat mean", "patient bootstrap (selected procedure)", _DRUG),
    "calibration_intercept_active": Estimator("repeat mean", "patient bootstrap (selected procedure)", _DRUG),
    "brier_active": Estimator("repeat mean", "patient bootstrap (selected procedure)", _DRUG),
    "sensitivity_active": Estimator("repeat mean, at the drug arm's training event rate", "patient bootstrap (selected procedure)", _DRUG),
    "specificity_active": Estimator("repeat mean, at the drug arm's training event rate", "patient bootstrap (selected procedure)", _DRUG),
    "brier": Estimator("repeat mean", "patient bootstrap", _ALL),
    "auprc": Estimator("repeat mean", "patient bootstrap", _ALL),
    "calibration_slope": Estimator("repeat mean", "patient bootstrap", _ALL),
    "calibration_intercept": Estimator("repeat mean", "patient bootstrap", _ALL),
    "sensitivity": Estimator("repeat mean", "patient bootstrap", _ALL),
    "specificity": Estimator("repeat mean", "patient bootstrap", _ALL),
    "c_index_active": Estimator("repeat mean, within each drug then course-weighted", "corrected t", "drug-arm courses followed"),
    "r2_pct_change": Estimator("repeat mean", "corrected t", _ALL),
    "c_for_benefit": Estimator("out-of-fold benefit of the whole procedure", "patient bootstrap", "drug and placebo courses"),
}
TOLERANCE = 1e-9


def point_of(interval_name: str) -> str:
    """The metric an interval belongs to: ``auroc_bootstrap`` is another interval of ``auroc``."""
    return interval_name.removesuffix("_bootstrap")


def outside(metrics: dict[str, float], ci: dict[str, tuple[float, float]]) -> list[str]:
    """The names whose point estimate lies outside its own (finite) interval, with the numbers."""
    bad = []
    for name, (low, high) in ci.items():
        point = metrics.get(point_of(name), math.nan)
        if any(math.isnan(v) for v in (point, low, high)):
            continue
        if not low - TOLERANCE <= point <= high + TOLERANCE:
            bad.append(f"{name} {point:.4f} outside ({low:.4f}, {high:.4f})")
    return bad


def check_intervals(metrics: dict[str, float], ci: dict[str, tuple[float, float]]) -> None:
    """Raise where a point estimate lies outside its own interval: a bug in how it was assembled."""
    if bad := outside(metrics, ci):
        raise AssertionError("point estimate outside its own interval: " + "; ".join(bad))


def skewed(metrics: dict[str, float], ci: dict[str, tuple[float, float]]) -> frozenset[str]:
    """The names whose percentile interval :func:`honest` withholds (it misses its own point)."""
    return frozenset(name.split(" ")[0] for name in outside(metrics, ci))


def honest(metrics: dict[str, float], ci: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Percentile (patient bootstrap) intervals, those that miss their own point set to NaN (no honest interval)."""
    missed = skewed(metrics, ci)
    return {name: (math.nan, math.nan) if name in missed else bounds for name, bounds in ci.items()}


def centred(point: float, fold_mean: float, low: float, high: float, bounds: tuple[float, float]) -> tuple[float, float]:
    """The corrected interval's half-widths around the *point* (the repeat mean) and the per-fold mean both, cut
    to the statistic's range: the interval of the number shown under the name. The gap between the two is
    uncertainty too: an arm-only model scores 0.5 in every fold (no spread) while its pooled repeat AUROC is
    off 0.5 by fold-to-fold noise, and a zero-width interval there would claim "worse than chance"."""
    if math.isnan(point):
        return math.nan, math.nan
    return (max(min(point, fold_mean) - (fold_mean - low), bounds[0]),
            min(max(point, fold_mean) + (high - fold_mean), bounds[1]))


def with_own_interval(point: float, low: float, high: float) -> tuple[float, float, float]:
    """(point, low, high), the percentile interval dropped (NaN) where it misses its own point (see :func:`honest`)."""
    if not any(math.isnan(v) for v in (point, low, high)) and not low - TOLERANCE <= point <= high + TOLERANCE:
        return point, math.nan, math.nan
    return point, low, high
