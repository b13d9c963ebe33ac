"""Bootstrap replicates of the final fit, for the per-patient intervals the logged model gives.

Each replicate refits the final model on a bootstrap resample of patients (every course of a drawn
patient, as often as the patient is drawn): the selected family with its chosen hyperparameters held
fixed and its own in-fold calibration, or the chosen benefit learner with its hyperparameters and the final
model's rescaling. Family and hyperparameter selection is not repeated, so the replicates' spread is the
estimation noise of this family and these hyperparameters, not of the whole procedure, and it cannot see
the model's bias (:mod:`ketamine_response.models.intervals` adds the site and missing-data terms and says
what the interval covers). Seeds come from the run's seed, so a run's intervals are reproducible. A
replicate whose every draw fails to fit is left out and counted (:attr:`Intervals.failed`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.tasks import TaskKind
from ketamine_response.models.benefit import CalibratedBenefit, get_learner
from ketamine_response.models.families import predict
from ketamine_response.models.intervals import Intervals, between_site_sd, grids_by_arm, replicate_fills
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.evaluation.resampling import PatientGroups
from ketamine_response.pipelines.folds import Data
from ketamine_response.pipelines.training.benefit import ArmBenefit, propensity
from ketamine_response.pipelines.training.nested import refit
from ketamine_response.pipelines.training.progress import Progress

TRIES = 3  # draws per replicate: a resample of a tiny cohort can leave an inner fold with one class


def bootstrap_rows(patients: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions of a bootstrap resample of patients: as many patients as there are, drawn with replacement,
    each bringing all of its courses."""
    # patients numbered in order of appearance (as always: the same seed draws the same replicates), their courses
    # gathered with array arithmetic, not one concatenated piece per drawn patient
    groups = PatientGroups(patients, pd.factorize(pd.Series(patients))[0])
    return groups.rows(rng.integers(0, len(groups), len(groups)))


def _rng(config: TrainConfig, stream: int, replicate: int) -> np.random.Generator:
    return np.random.default_rng((config.seed, stream, replicate))


def _response_replicate(estimator: Any, data: Data, config: TrainConfig, replicate: int) -> Any | None:
    """The final fit on one resample; None if every draw failed to fit (a one-class inner fold)."""
    rng = _rng(config, 1, replicate)
    for _ in range(TRIES):
        sample = data.take(bootstrap_rows(data.patients, rng))
        sample = replace(sample, X=sample.X.reset_index(drop=True))  # a course drawn twice is two rows
        try:
            return refit(estimator, sample, config, config.seed + replicate)
        except ValueError:
            continue
    return None


def fit_intervals(estimator: Any, data: Data, config: TrainConfig, progress: Progress,
                  out_of_fold: np.ndarray | None = None) -> Intervals | None:
    """The response model's replicates and its percentile grids per arm; None for a time to relapse (no
    intervals) or with ``intervals.replicates`` 0.

    *out_of_fold*: the selected procedure's pooled out-of-fold probabilities of the training courses
    (:func:`~ketamine_response.pipelines.folds.pooled`), from which the percentile grids are built: the
    final model's own predictions of its training courses are in-sample, more spread out than a new
    patient's (the mean over CV repeats narrows them a little, far less). Without them (a caller with no
    CV, such as a benchmark) there are no grids.
    """
    from joblib import delayed

    from ketamine_response.pipelines.training.backend import parallel as open_parallel

    n = config.intervals.replicates
    if data.task.kind is TaskKind.SURVIVAL or n == 0:
        return None
    progress.stage(f"per-patient intervals: the final model refit on {n} bootstrap resamples of patients", n)
    fitted = []
    with open_parallel(config) as parallel:
        for model in parallel(delayed(_response_replicate)(estimator, data, config, r) for r in range(n)):
            fitted.append(model)
            progress.advance()
    kept = [m for m in fitted if m is not None]
    fills = replicate_fills(data.X, len(kept), _rng(config, 3, 0))
    failed = n - len(kept)
    if not data.task.probabilities:
        return Intervals(kept, config.intervals.level, fills=fills, failed=failed, requested=n)
    p = predict(estimator, data.X)  # the site term is the final model's own: its offsets from each site's rate
    grids = grids_by_arm(np.asarray(out_of_fold, dtype=float), data.treatments) if out_of_fold is not None else {}
    return Intervals(kept, config.intervals.level, grids, between_site_sd(p, data.y, data.sites), fills,
                     failed, n)


def _benefit_replicate(data: Data, arm: ArmBenefit, final: CalibratedBenefit, dr_scores: np.ndarray,
                       e: np.ndarray, config: TrainConfig, replicate: int) -> CalibratedBenefit | None:
    """The chosen learner on one resample of the comparison's patients, rescaled as the final model is: the
    same slope, centred on the replicate's own mean benefit, around the resample's doubly robust average
    benefit (so the interval carries the average's uncertainty too)."""
    c, sub = arm.comparison, data.take(arm.comparison.rows)
    rng = _rng(config, 2, replicate)
    for _ in range(TRIES):
        rows = bootstrap_rows(sub.patients, rng)
        X = sub.X.iloc[rows].reset_index(drop=True)
        try:
            model = get_learner(final.model.learner).fit(X, sub.y[rows], c.treated[rows], c.arm, config.seed + replicate,
                                                         e[rows], sub.patients[rows], **final.model.params)
        except ValueError:
            continue
        return CalibratedBenefit(c.arm, model, final.slope, float(model.effect(X).mean()),
                                 float(dr_scores[rows].mean()), final.least)
    return None


def benefit_replicates(data: Data, arm: ArmBenefit, final: CalibratedBenefit, dr_scores: np.ndarray,
                       config: TrainConfig, parallel: Any) -> list[CalibratedBenefit]:
    """``intervals.benefit_replicates`` refits of one comparison's final benefit model (*dr_scores*: its
    courses' doubly robust benefit scores, whose mean is the final model's centre)."""
    from joblib import delayed

    every = np.arange(len(arm.comparison.rows))
    e = propensity(data, arm.comparison, every, every, config.benefit.propensity)  # type: ignore[arg-type]
    runs = parallel(delayed(_benefit_replicate)(data, arm, final, dr_scores, e, config, r)
                    for r in range(config.intervals.benefit_replicates))
    return [r for r in runs if r is not None]
