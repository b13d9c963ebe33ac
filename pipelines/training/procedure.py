"""The training procedure on a design: nested CV with the permutation test and the final refit, the
benefit models with their roles table, and the logged model that wraps them. The train flow calls these
in order; each can be run and tested alone."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.build import FeatureTable
from ketamine_response.features.cohort.validation import ValidatedCohort
from ketamine_response.models.benefit import CalibratedBenefit
from ketamine_response.models.benefit_explain import benefit_shap
from ketamine_response.models.explain import background_centres
from ketamine_response.models.intervals import Intervals
from ketamine_response.models.wrapper import CohortModel
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.evaluation.absolute_roles import absolute_roles
from ketamine_response.pipelines.evaluation.benefit import BenefitResult, summarise
from ketamine_response.pipelines.evaluation.heterogeneity import Heterogeneity, enough_events
from ketamine_response.pipelines.evaluation.roles import biomarker_roles
from ketamine_response.pipelines.folds import Data, FoldResult
from ketamine_response.pipelines.training.benefit import ArmBenefit, comparisons, propensity, run_benefit
from ketamine_response.pipelines.training.heterogeneity import assess_heterogeneity
from ketamine_response.pipelines.training.nested import fit_selected, n_outer, run_nested
from ketamine_response.pipelines.training.permutation import PermutationResult, permutation_test
from ketamine_response.pipelines.training.progress import Progress
from ketamine_response.pipelines.training.replicates import benefit_replicates
from ketamine_response.pipelines.training.roles import gather, others_tasks, related_features

log = logging.getLogger(__name__)
MIN_SPREAD = 0.1  # the least share of the chosen learner's spread of benefit the final model keeps
BENEFIT_NOTE = ("benefit model: out-of-fold benefit per course (inside each outer fold: learner chosen by the "
                "calibrated R-loss, the outcome log-loss breaking ties within one SE); the final model keeps the share "
                "of its learner's spread that the out-of-fold BLP slope supports (shrunk by its SE; 0.1 to 1) around "
                "the doubly robust average benefit; propensity = {propensity}; c-for-benefit CI resamples "
                "patients over the out-of-fold predictions (refit variance not included); biomarker roles from one "
                "cluster-robust regression per feature, adjusted for the other features' cross-fitted prognostic and "
                "modifier indices, FDR-adjusted")


def fit_all(data: Data, config: TrainConfig, progress: Progress) -> tuple[list[FoldResult], PermutationResult, Any, str]:
    """Nested CV, permutation tests and the final refit of the selected candidate on all courses."""
    from ketamine_response.pipelines.training.backend import parallel as open_parallel

    with open_parallel(config) as parallel:
        progress.stage(f"nested cross-validation: {config.cv.design}, {len(config.families)} families",
                       n_outer(data, config))
        folds = run_nested(data, config, parallel, progress=progress)
        for f in folds:  # shown with -v: which family each outer fold's inner loop chose
            log.info("outer fold repeat %d fold %d: selected %s (inner %s %s)", f.split.repeat + 1, f.split.fold + 1,
                     f.selected, data.task.selection_metric or config.search.selection_metric, _scores_text(f.inner_scores))
        permutation = permutation_test(data, folds, config, parallel, progress)
    progress.stage("refitting the selected model on all courses")
    selected, estimator = fit_selected(data, config)
    return folds, permutation, estimator, selected


def _scores_text(scores: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in sorted(scores.items(), key=lambda kv: -kv[1]))


def estimate_benefit(data: Data, folds: list[FoldResult], built: FeatureTable, config: TrainConfig,
                     periods: np.ndarray | None, progress: Progress) -> tuple[BenefitResult | None, dict[str, CalibratedBenefit]]:
    """Benefit of each active arm over placebo (out of fold and final) and the biomarker roles table."""
    from ketamine_response.pipelines.training.backend import parallel as open_parallel

    b = config.benefit
    if not b.enabled or not data.task.benefit:  # benefit is a difference in the probability of a good outcome
        return None, {}
    # baseline features only: an early-course measure (dissociation, early MADRS change) is caused by the drug
    data = replace(data, X=data.X[[c for c in data.X.columns if data.domains.get(c) != "early_course"]])
    found, notes = comparisons(data)
    if not found:
        return (BenefitResult([], pd.DataFrame(), notes) if notes else None), {}
    progress.stage(f"benefit model: {', '.join(b.learners)} compared in the inner loop and rescaled, for "
                   f"{', '.join(c.arm for c in found)}")
    with open_parallel(config) as parallel:
        arms = [run_benefit(data, folds, c, b.learners, config.cv.inner_folds, config.seed, b.propensity, parallel)  # type: ignore[arg-type]
                for c in found]
    tests = [assess_heterogeneity(data.take(a.comparison.rows), a.comparison.treated,
                                  propensity(data, a.comparison, every(a), every(a), b.propensity),  # type: ignore[arg-type]
                                  a.by_repeat, a.fold_of, config.seed, a.learners_by_repeat)
             for a in arms]
    finals = [rescaled(a, h, data) for a, h in zip(arms, tests, strict=True)]
    if config.intervals.benefit_replicates:
        progress.stage(f"benefit intervals: each benefit model refit on {config.intervals.benefit_replicates} "
                       "bootstrap resamples of patients")
        with open_parallel(config) as parallel:
            for a, h, f in zip(arms, tests, finals, strict=True):
                f.replicates = benefit_replicates(data, a, f, h.scores, config, parallel)
    summaries = [summarise(a.comparison.arm, f.learner, a.selections, a.oof, a.oof_learners, data.y[a.comparison.rows],
                           a.comparison.treated, data.patients[a.comparison.rows], config.evaluation.bootstrap, config.seed,
                           None if periods is None else periods[a.comparison.rows], h, config.policy.min_events_per_arm,
                           a.varies, config.policy.alpha)
                 for a, h, f in zip(arms, tests, finals, strict=True)]
    return (BenefitResult(summaries, _roles(data, arms, finals, tests, built, config), notes),
            {f.arm: f for f in finals})


def rescaled(arm: ArmBenefit, h: Heterogeneity, data: Data) -> CalibratedBenefit:
    """The final benefit model: the chosen learner's spread kept as far as the out-of-fold BLP supports it
    (:meth:`Heterogeneity.spread_kept`), and never below ``MIN_SPREAD`` of it, centred on the doubly robust
    average benefit.

    Why a least share: at trial sizes the BLP often cannot establish a real spread (on a placebo-driven
    cohort of 1,400 courses, BLP p = 0.1 for a learner with Spearman 0.8 against the true benefit), and a
    spread of 0 would discard a ranking that is right; a tenth of it keeps the ranking while the
    predicted differences stay small, and the verdict says the ranking is unproven.
    """
    effect = arm.final.effect(data.X.iloc[arm.comparison.rows])
    return CalibratedBenefit(arm.comparison.arm, arm.final, max(h.spread_kept, MIN_SPREAD), float(effect.mean()),
                             float(h.scores.mean()), MIN_SPREAD)


def _roles(data: Data, arms: list[ArmBenefit], finals: list[CalibratedBenefit], tests: list[Heterogeneity],
           built: FeatureTable, config: TrainConfig) -> pd.DataFrame:
    """The biomarker roles table on both scales over the courses of every comparison."""
    from joblib import delayed

    from ketamine_response.pipelines.training.backend import parallel as open_parallel

    rows = np.unique(np.concatenate([a.comparison.rows for a in arms]))
    # the SHAP of each comparison and each feature's others index are independent fits: one parallel batch,
    # the SHAP first (the longest tasks: shap compiles its numba code in each process)
    tasks = others_tasks(data, rows, built.dictionary)
    with open_parallel(config) as parallel:
        done = parallel([*(delayed(benefit_shap)(f, data.X.iloc[a.comparison.rows], config.seed)
                           for a, f in zip(arms, finals, strict=True)), *tasks])
    indexes = gather(rows, done[len(arms):])
    sizes = [len(a.comparison.rows) for a in arms]  # mean |SHAP| over comparisons, weighted by their courses
    shap = sum(s * n for s, n in zip(done[:len(arms)], sizes, strict=True))
    importance = {str(k): float(v) / sum(sizes) for k, v in shap.items()}
    scores, drug = np.full(len(data.y), np.nan), np.full(len(data.y), "", dtype=object)
    for a, h in zip(arms, tests, strict=True):  # a placebo course shared by two comparisons keeps its first score
        fresh = np.isnan(scores[a.comparison.rows])
        scores[a.comparison.rows[fresh]] = h.scores[fresh]
        drug[a.comparison.rows[fresh]] = a.comparison.arm
    absolute = absolute_roles(data, rows, scores[rows], drug[rows],
                              related_features(data, built.dictionary), indexes, config.benefit.fdr)
    on_drug = data.treatments[rows] != "placebo"
    m = config.policy.min_events_per_arm
    withheld = not (enough_events(data.y[rows][on_drug], m) and enough_events(data.y[rows][~on_drug], m))
    return biomarker_roles(data, rows, built.dictionary, True, config.benefit.fdr, importance, indexes, absolute, withheld)


def every(arm: ArmBenefit) -> np.ndarray:
    """Positions of all the courses of an arm's comparison."""
    return np.arange(len(arm.comparison.rows))


def make_model(estimator: Any, family: str, data: Data, built: FeatureTable, cohort: ValidatedCohort, target: str,
               threshold: float, benefit: dict[str, CalibratedBenefit] | None = None, caveats: tuple[str, ...] = (),
               operating_point: float | None = None, intervals: Intervals | None = None) -> CohortModel:
    """Wrap the refit estimator (and the benefit models, if any) so it takes a raw cohort table; *caveats* and
    *operating_point* travel with it to every score (:mod:`ketamine_response.pipelines.training.caveats`), and
    *intervals* (:mod:`ketamine_response.pipelines.training.replicates`) give its per-patient intervals."""
    derivations = tuple(dict.fromkeys(
        name for name in built.dictionary.set_index("feature").loc[list(data.X.columns), "derivation"]))
    model = CohortModel(estimator, family, tuple(data.X.columns), derivations, tuple(cohort.table.columns), target,
                        threshold, tuple(cohort.extra_features), background_centres(estimator, family, data.X),
                        benefit or {}, tuple(sorted(set(data.treatments))), tuple(sorted(set(data.sites))))
    model.caveats, model.operating_point = caveats, operating_point
    model.intervals = intervals
    return model
