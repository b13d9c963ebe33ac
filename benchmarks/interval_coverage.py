"""Benchmark: how often does each course's ``probability_low``-``probability_high`` interval hold its true probability?

The interval is an estimation + site + missing-data interval for the model's probability (refits with the
family and hyperparameters held fixed, a between-site term, missing-value fills; models/intervals.py): it
does not cover the model's bias, so it is not a confidence interval for the true probability, and this
benchmark measures how far short it falls (on ``strong`` it covers well under half of the drug courses).

``python benchmarks/interval_coverage.py [COURSES] [CONFIG] [FRESH]`` (default 2,000 courses, the shipped
``train`` config, 4,000 fresh courses) on the 2-core machine; the README reports the result. For each
scenario (``literature``, ``strong``) it does what ``train`` does for the logged model: the inner search
and the calibrated final refit of the selected family on all courses, then the intervals' bootstrap
replicates (``intervals.replicates`` refits on patient resamples, family and hyperparameters held fixed). It then scores a fresh cohort of the same
scenario drawn with another seed and counts the courses whose oracle probability (the generator's true
P(response | course), ``p_response_24h_<arm>``) lies in [low, high]: all courses, and the drug arm. The CI
is the exact binomial interval over the fresh courses, conditional on the one fitted model (one training
cohort, one training seed): it says how precisely this model's coverage was measured, not how coverage
varies over trainings. The courses share that model's errors (and a patient's two crossover courses are
counted apart), so as an interval for the interval method's coverage it is too narrow.

Rows: ``all arms``, ``drug arm``, ``placebo arm`` (the full interval, as ``score`` writes it), ``refits
alone`` (the replicates' spread only: no site term, no missing-value fills), ``refits + site, no fills``
(the site term added, every missing value left to the model's own imputation), ``complete data`` (the full
interval on courses missing no covariate).

It also prints what explains a shortfall: the mean signed error of the probability against the oracle (a
bias that replicates cannot see), and how often the oracle lies within the replicates' own spread.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ketamine_response.models.intervals import Intervals
    from ketamine_response.pipelines.config import TrainConfig

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
warnings.filterwarnings("ignore", category=UserWarning)
warnings.filterwarnings("ignore", category=RuntimeWarning)

TARGET = "response_24h"
SCENARIOS = ("literature", "strong")


def fitted(scenario: str, courses: int, config: TrainConfig, seed: int) -> tuple[str, Any, Intervals]:
    """The final model and its intervals, as ``train`` logs them, on a *scenario* cohort."""
    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.pipelines.flows.train import build_training_data
    from ketamine_response.pipelines.training.nested import fit_selected
    from ketamine_response.pipelines.training.progress import Progress
    from ketamine_response.pipelines.training.replicates import fit_intervals

    cohort, _ = build_cohort(courses, seed, scenario)
    data = build_training_data(validate_table(cohort, "train"), TARGET, config, False)[0]
    selected, estimator = fit_selected(data, config)
    intervals = fit_intervals(estimator, data, config, Progress())
    assert intervals is not None  # a binary target with replicates
    return selected, estimator, intervals


def scored(scenario: str, courses: int, config: TrainConfig, estimator: Any, intervals: Intervals,
           seed: int) -> tuple[np.ndarray, ...]:
    """(probability, oracle probability, drug course?, replicate probabilities, complete covariates?) of a fresh
    cohort's courses."""
    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.features.synthetic.covariates import MISSING
    from ketamine_response.models.families import predict
    from ketamine_response.pipelines.flows.train import build_training_data

    cohort, oracle = build_cohort(courses, seed, scenario)
    data = build_training_data(validate_table(cohort, "fresh"), TARGET, config, False)[0]
    truth = oracle.iloc[data.X.index.to_numpy() - 1]  # validated rows are numbered from 1, as in the file
    assert (truth["patient_id"].to_numpy(str) == data.patients).all()  # the oracle's rows are the cohort's
    true_p = np.array([truth.iloc[i][f"p_response_24h_{arm}"] for i, arm in enumerate(data.treatments)], dtype=float)
    p = predict(estimator, data.X)
    replicates = intervals.replicate_predictions(data.X)
    plain = np.vstack([predict(e, data.X) for e in intervals.estimators])  # without the missing values' fills
    rows = cohort.iloc[data.X.index.to_numpy() - 1]
    complete = rows[[c for c in MISSING if c in rows]].notna().all(axis=1).to_numpy()
    return p, true_p, data.treatments != "placebo", replicates, complete, plain


def row(label: str, hit: np.ndarray, level: float) -> str:
    from scipy.stats import binomtest

    ci = binomtest(int(hit.sum()), len(hit)).proportion_ci(0.95)
    return f"{label:<28} {len(hit):>7,} {hit.mean():>9.1%} ({ci.low:.1%}-{ci.high:.1%}) {level:>8.0%}"


def shrinkage(p: np.ndarray, true_p: np.ndarray, drug: np.ndarray) -> str:
    """The slope of the model's log-odds on the true log-odds, per arm: below 1, the model pulls every course
    toward the average (regularisation or a missing modifier), a bias no bootstrap of the fit can see."""
    from ketamine_response.models.intervals import logit

    slopes = [np.polyfit(logit(true_p[m]), logit(p[m]), 1)[0] for m in (drug, ~drug)]
    return f"drug {slopes[0]:.2f}, placebo {slopes[1]:.2f}"


def main(courses: int, config_name: str | None, fresh: int) -> None:
    from ketamine_response.models.intervals import probability_bounds
    from ketamine_response.pipelines.config import load_config

    config = load_config(config_name or None)
    level = config.intervals.level
    print(f"config {config_name or 'train'}: {config.intervals.replicates} replicates, level {level:.0%}; "
          f"{courses:,} training courses, {fresh:,} fresh courses\n")
    for scenario in SCENARIOS:
        start = time.perf_counter()
        selected, estimator, intervals = fitted(scenario, courses, config, 1)
        p, true_p, drug, replicates, complete, plain = scored(scenario, fresh, config, estimator, intervals, 2)
        low, high = probability_bounds(p, replicates, level, intervals.site_sd)
        hit = (low <= true_p) & (true_p <= high)
        low0, high0 = probability_bounds(p, plain, level)
        hit0 = (low0 <= true_p) & (true_p <= high0)
        low1, high1 = probability_bounds(p, plain, level, intervals.site_sd)
        hit1 = (low1 <= true_p) & (true_p <= high1)
        spread = (np.quantile(replicates, 0.05, axis=0) <= true_p) & (true_p <= np.quantile(replicates, 0.95, axis=0))
        print(f"{scenario} (selected {selected}, {time.perf_counter() - start:.0f} s; between-site SD of the "
              f"log-odds estimated in training {intervals.site_sd:.3f})")
        print("coverage of the true probability by the estimation + site + missing-data interval (not a CI for the "
              "true probability: it does not cover the model's bias)")
        print(f"{'courses':<28} {'n':>7} {'coverage':>9} {'(95% CI*)':>15} {'nominal':>8}")
        print(row("all arms", hit, level))
        print(row("drug arm", hit[drug], level))
        print(row("placebo arm", hit[~drug], level))
        print(row("all, refits alone", hit0, level))
        print(row("all, refits + site, no fills", hit1, level))
        print(row("all, complete data", hit[complete], level))
        print("* exact binomial over fresh courses, conditional on this one fitted model (training seed 1): not the "
              "spread of coverage over trainings")
        print(f"median width {np.median(high - low):.3f} (refits alone {np.median(high0 - low0):.3f}); "
              f"mean error p - oracle {np.mean(p - true_p):+.3f} "
              f"(drug {np.mean((p - true_p)[drug]):+.3f}, placebo {np.mean((p - true_p)[~drug]):+.3f}); "
              f"mean |error| {np.mean(np.abs(p - true_p)):.3f}; oracle inside the replicates' 5-95% range "
              f"{spread.mean():.1%}; slope of logit p on the oracle's logit {shrinkage(p, true_p, drug)}\n", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    main(int(args[0]) if args else 2000, args[1] if len(args) > 1 else None, int(args[2]) if len(args) > 2 else 4000)
