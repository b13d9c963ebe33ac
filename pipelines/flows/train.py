"""The ``train`` flow: load → validate → features → fit → evaluate → log.

Each step is a function that can be tested alone; :func:`run_train` only wires them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ketamine_response.features.build import FeatureTable, build_feature_table
from ketamine_response.features.cohort.schema import COLUMNS
from ketamine_response.features.cohort.targets import parse_target
from ketamine_response.features.cohort.validation import ValidatedCohort, load_cohort
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.models.benefit import BenefitModel, benefit_shap
from ketamine_response.models.explain import background_centres
from ketamine_response.models.wrapper import CohortModel
from ketamine_response.pipelines import tracking
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.evaluation.benefit import summarise
from ketamine_response.pipelines.evaluation.evaluate import Evaluation, add_active_arm_metrics, add_cv_uncertainty, add_gain_over_arm, evaluate
from ketamine_response.pipelines.evaluation.explanation import explain_training
from ketamine_response.pipelines.evaluation.roles import biomarker_roles
from ketamine_response.pipelines.evaluation.sample_size import assess
from ketamine_response.pipelines.flows.features import usable_rows
from ketamine_response.pipelines.reporting.descriptions import ALPHA
from ketamine_response.pipelines.result import BenefitResult, TrainingResult
from ketamine_response.pipelines.training.benefit import comparisons, run_benefit
from ketamine_response.pipelines.training.cv import check_cv_feasible
from ketamine_response.pipelines.training.data import Data
from ketamine_response.pipelines.training.nested import (
    FoldResult,
    fit_calibrated,
    fold_threshold,
    n_outer,
    pooled,
    pooled_threshold,
    run_nested,
    search,
    select,
)
from ketamine_response.pipelines.training.permutation import PermutationResult, permutation_test
from ketamine_response.pipelines.training.progress import Progress, Relay

log = logging.getLogger(__name__)
BENEFIT_NOTE = ("benefit model: out-of-fold benefit per course (learner chosen inside each outer fold by the "
                "transformed-outcome loss, one-SE rule); propensity = {propensity}; c-for-benefit CI resamples "
                "patients over the out-of-fold predictions (refit variance not included); biomarker roles from one "
                "cluster-robust regression per feature, adjusted for the other features' cross-fitted prognostic and "
                "modifier indices, FDR-adjusted")


def build_training_data(cohort: ValidatedCohort, target: str, config: TrainConfig,
                        drop_invalid: bool) -> tuple[Data, FeatureTable, list[str]]:
    """Validated rows → feature table → design arrays; courses without the outcome are set aside."""
    table, dropped = usable_rows(cohort, drop_invalid)
    built = build_feature_table(table, parse_target(target), cohort.extra_features,
                                config.evaluation.remission_threshold, cohort.source)
    notes = [f"left out {dropped} invalid rows (drop invalid rows was asked for)"] if dropped else []
    notes += list(built.notes)
    frame = built.frame[built.frame[target].notna()]
    if len(frame) < len(built.frame):
        # by arm: dropout can be informative (e.g. placebo non-responders leaving early)
        missing = built.frame.loc[built.frame[target].isna(), "treatment"].value_counts()
        arms = ", ".join(f"{arm} {n}" for arm, n in missing.items())
        notes.append(f"excluded {len(built.frame) - len(frame)} courses with no {target} outcome ({arms})")
    domains = dict(zip(built.dictionary["feature"], built.dictionary["domain"]))
    keep = [f for f in built.features if config.early_course or domains[f] != "early_course"]
    data = Data(frame[keep], frame[target].to_numpy(dtype=float), frame["patient_id"].to_numpy(str),
                frame["site"].to_numpy(str), frame["treatment"].to_numpy(str), domains)
    return data, built, notes


def fit_all(data: Data, config: TrainConfig, progress: Progress) -> tuple[list[FoldResult], PermutationResult, Any, str]:
    """Nested CV, permutation tests and the final refit of the selected candidate on all courses."""
    from ketamine_response.pipelines.training.backend import parallel as open_parallel

    with open_parallel(config) as parallel:
        progress.stage(f"nested cross-validation: {config.cv.design}, {len(config.families)} families",
                       n_outer(data, config))
        folds = run_nested(data, config, parallel, progress=progress)
        for f in folds:  # shown with -v: which family each outer fold's inner loop chose
            log.info("outer fold repeat %d fold %d: selected %s (inner %s %s)", f.split.repeat + 1, f.split.fold + 1,
                     f.selected, config.search.selection_metric, _scores_text(f.inner_scores))
        permutation = permutation_test(data, folds, config, parallel, progress)
    progress.stage("refitting the selected model on all courses")
    params, scores = search(data, config, config.seed)
    selected = select(scores)
    return folds, permutation, fit_calibrated(selected, params[selected], data, config, config.seed), selected


def _scores_text(scores: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.3f}" for k, v in sorted(scores.items(), key=lambda kv: -kv[1]))


def estimate_benefit(data: Data, folds: list[FoldResult], built: FeatureTable, config: TrainConfig, task: str,
                     periods: np.ndarray | None, progress: Progress) -> tuple[BenefitResult | None, dict[str, BenefitModel]]:
    """Benefit of each active arm over placebo (out of fold and final) and the biomarker roles table."""
    from ketamine_response.pipelines.training.backend import parallel as open_parallel

    b = config.benefit
    if not b.enabled or task != "classification":
        return None, {}
    # baseline features only: an early-course measure (dissociation, early MADRS change) is caused by the drug
    data = replace(data, X=data.X[[c for c in data.X.columns if data.domains.get(c) != "early_course"]])
    found, notes = comparisons(data)
    if not found:
        return (BenefitResult([], pd.DataFrame(), notes) if notes else None), {}
    progress.stage(f"benefit model: {', '.join(b.learners)} compared in the inner loop, for "
                   f"{', '.join(c.arm for c in found)}")
    with open_parallel(config) as parallel:
        arms = [run_benefit(data, folds, c, b.learners, config.cv.inner_folds, config.seed, b.propensity, parallel)  # type: ignore[arg-type]
                for c in found]
    summaries = [summarise(a.comparison.arm, a.final.learner, a.selections, a.oof, a.oof_learners, data.y[a.comparison.rows],
                           a.comparison.treated, data.patients[a.comparison.rows], config.evaluation.bootstrap, config.seed,
                           None if periods is None else periods[a.comparison.rows]) for a in arms]
    sizes = [len(a.comparison.rows) for a in arms]  # mean |SHAP| over comparisons, weighted by their courses
    shap = sum(benefit_shap(a.final, data.X.iloc[a.comparison.rows], config.seed) * n for a, n in zip(arms, sizes, strict=True))
    rows = np.unique(np.concatenate([c.rows for c in found]))
    importance = {str(k): float(v) / sum(sizes) for k, v in shap.items()}  # type: ignore[union-attr]
    roles = biomarker_roles(data, rows, built.dictionary, True, b.fdr, importance, config.seed)
    return BenefitResult(summaries, roles, notes), {a.comparison.arm: a.final for a in arms}


def evaluate_all(data: Data, folds: list[FoldResult], config: TrainConfig, cohort_table: pd.DataFrame,
                 task: str = "classification") -> dict[str, Evaluation]:
    """Evaluate every family's and the selected procedure's pooled out-of-fold probabilities."""
    index = data.X.index
    sex = cohort_table["sex"] if "sex" in cohort_table else pd.Series(None, index=cohort_table.index, dtype=object)
    groups = {"sex": sex.loc[index].to_numpy(object), "arm": data.treatments, "site": data.sites}
    t = pooled_threshold(data, folds)  # each course judged at its training folds' threshold
    out = {}
    for name in (*config.families, "selected"):
        family = None if name == "selected" else name
        p = pooled(data, folds, family)
        evaluation = evaluate(data.y, p, data.patients, groups, t, config.evaluation.bootstrap, config.seed, task)
        out[name] = add_active_arm_metrics(add_cv_uncertainty(evaluation, data, folds, family), data, folds, family)
    add_gain_over_arm(out, data, folds)
    return out


def data_digest(path: str | Path) -> str:
    """SHA-256 of the cohort file (identifies the data without storing it)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def make_model(estimator: Any, family: str, data: Data, built: FeatureTable, cohort: ValidatedCohort, target: str,
               threshold: float, benefit: dict[str, BenefitModel] | None = None) -> CohortModel:
    """Wrap the refit estimator (and the benefit models, if any) so it takes a raw cohort table."""
    derivations = tuple(dict.fromkeys(
        name for name in built.dictionary.set_index("feature").loc[list(data.X.columns), "derivation"]))
    return CohortModel(estimator, family, tuple(data.X.columns), derivations, tuple(cohort.table.columns), target,
                       threshold, tuple(cohort.extra_features), background_centres(estimator, family, data.X),
                       benefit or {}, tuple(sorted(set(data.treatments))), tuple(sorted(set(data.sites))))


def synthetic_input_example(model: CohortModel, rows: int = 3) -> pd.DataFrame:
    """An input example made up by the generator (never a real course), in the model's input columns."""
    example, _ = build_cohort(max(rows, 2), seed=0)
    keep = [c.name for c in COLUMNS if c.role not in ("outcome", "safety", "provenance") and c.name in example.columns]
    keep += [c for c in model.training_columns if c.startswith("madrs_") and c in example.columns
             and c != "madrs_baseline" and c not in keep]
    example = example[keep].head(rows).copy()
    example["patient_id"] = [f"EXAMPLE-{i + 1}" for i in range(len(example))]
    for column in example.columns:
        if str(example[column].dtype) in ("Int64", "int64", "float64"):
            example[column] = example[column].astype("float64")  # NaN-tolerant numeric input
    return example


class RunProgress(Relay):
    """Mirrors stages and fit counts into the RUNNING run's ``progress`` tag, at most every few seconds."""

    def __init__(self, inner: Progress) -> None:
        super().__init__(inner)
        self.message, self.total, self.done, self.shown = "", 0, 0, 0.0

    def stage(self, message: str, total: int = 0) -> None:
        super().stage(message, total)
        self.message, self.total, self.done = message, total, 0
        self._show(force=True)

    def advance(self, n: int = 1) -> None:
        super().advance(n)
        self.done += n
        self._show()

    def _show(self, force: bool = False) -> None:
        if force or time.monotonic() - self.shown > 5:
            self.shown = time.monotonic()
            tracking.set_progress(self.message + (f" ({self.done}/{self.total} fits)" if self.total else ""))


def data_origin(cohort: ValidatedCohort) -> str:
    """Whether the cohort was generated by ``synth`` (its files carry a ``synthetic`` column)."""
    if "synthetic" not in cohort.table:
        return "no synthetic marker (treated as real data)"
    marks = sorted(map(str, cohort.table["synthetic"].dropna().unique()))
    return f"SYNTHETIC ({', '.join(marks)})" if marks else "no synthetic marker (treated as real data)"


def log_result(result: TrainingResult, experiment: tuple[str, str], run_name: str, digest: str, source: str,
               tags: dict[str, str]) -> None:
    """Into the active run: the model (registered, described, aliased only when earned), the parent's
    content and report, and one child run per family."""
    from ketamine_response.pipelines import registry
    from ketamine_response.pipelines.reporting import descriptions as d
    from ketamine_response.pipelines.reporting.content import benefit_content, run_content, shap_content

    experiment_id, experiment_name = experiment
    config = result.config
    result.run_id, result.artifact_uri = tracking.active_run()
    earned, result.alias_reason = d.alias_decision(result)
    info, digest_tags = registry.log_model(result.model, synthetic_input_example(result.model))
    name = tracking.registered_name(result.target)
    version_tags = d.version_tags(result, digest, experiment_name, result.run_id) | digest_tags
    result.version, result.alias = registry.register(
        info.model_uri, name, earned, version_tags, d.version_description(result, digest, experiment_name, result.alias_reason))
    parent = run_content(result, "selected")
    parent["tables"] |= {"metrics.csv": result.table(), "feature_dictionary.csv": result.features.dictionary}
    parent["texts"] = {"config.yaml": yaml.safe_dump(config.flat(), sort_keys=True),
                       "notes.txt": "\n".join([*result.notes, d.selection_reason(result)]) + "\n"}
    if result.benefit is not None and result.benefit.summaries:
        parent = benefit_content(result.benefit, parent)  # first: the report page shows its figures
    identity = {"Run": result.run_id, "Date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "Model": f"{name} version {result.version}" + (f" (@{result.alias})" if result.alias else
                                                               f" (no alias: {result.alias_reason})"),
                "Data": tags["data_origin"]}
    tracking.log_run_content(**shap_content(result, parent, digest, source, identity))
    tracking.set_run_tags({"mlflow.note.content": d.run_description(result, result.alias_reason),
                           "selected_model": result.selected, "registered_model": f"{name}/{result.version}",
                           "alias": result.alias or "none"})
    tracking.log_children(experiment_id, run_name, config.flat(), tags, {f: run_content(result, f) for f in config.families},
                          {f: d.family_description(result, f) for f in config.families})


def fit_and_evaluate(cohort: ValidatedCohort, data: Data, built: FeatureTable, notes: list[str], target: str,
                     config: TrainConfig, progress: Progress) -> TrainingResult:
    """Fit, test against permuted labels, evaluate, explain and estimate benefit: everything but logging."""
    task = parse_target(target).task
    folds, permutation, estimator, selected = fit_all(data, config, progress)
    e = config.evaluation
    size = assess(data, config.families, pooled(data, folds), e.anticipated_r2_cs, e.min_events_per_predictor)
    notes.insert(0, size.note()) if size.below_minimum else notes.append(size.note())
    progress.stage("evaluating out-of-fold predictions")
    evaluations = evaluate_all(data, folds, config, cohort.table, task)
    progress.stage("explaining: out-of-fold and final-model SHAP")
    p_selected = permutation.p["selected"]
    signal = not p_selected > ALPHA  # NaN (no permutations) does not veto
    if not signal:
        why = ("is a constant predictor in every outer fold (p = 1 without permuting)" if permutation.b["selected"] == 0
               else f"did not beat permuted labels (permutation p = {p_selected:.3f})")
        notes.append(f"no feature is reported as consistently important: the selected procedure {why}")
    notes.append(permutation.note(config.evaluation.permutation_stop))
    shap = explain_training(data, folds, estimator, selected, built.dictionary, signal)
    periods = cohort.table.loc[data.X.index, "period"].to_numpy(dtype=float) if "period" in cohort.table else None
    benefit, learners = estimate_benefit(data, folds, built, config, task, periods, progress)
    if benefit is not None:
        notes += benefit.notes + [BENEFIT_NOTE.format(propensity=config.benefit.propensity)] * bool(benefit.summaries)
    model = make_model(estimator, selected, data, built, cohort, target, fold_threshold(data.y, config), learners)
    return TrainingResult(target, config, data, built, folds, selected, evaluations, permutation, size, model,
                          shap, notes, benefit)


def run_train(cohort_path: str | Path, target: str, config: TrainConfig,
              experiment: str = tracking.DEFAULT_EXPERIMENT, mapping_path: str | Path | None = None,
              drop_invalid: bool = False, progress: Progress | None = None) -> TrainingResult:
    """Train, evaluate and log one target; see the module docstring for the steps.

    The MLflow run opens when fitting starts (the inputs have passed every check) and shows its
    progress while it trains; a failure ends it FAILED with the error as its description.
    """
    progress = progress or Progress()
    experiment_id = tracking.open_experiment(experiment)
    if parse_target(target).task == "regression":  # a continuous target: the regression families
        config = replace(config, families=config.regression_families)
    progress.stage(f"validating {cohort_path}")
    cohort = load_cohort(cohort_path, mapping_path)
    data, built, notes = build_training_data(cohort, target, config, drop_invalid)
    c = config.cv
    check_cv_feasible(data.y, data.patients, data.sites, c.design, c.outer_folds, c.inner_folds, str(cohort_path))
    digest, run_name = data_digest(cohort_path), f"{target}-{c.design}"
    tags = {"target": target, "cv_design": c.design, "data_digest": digest, "data_origin": data_origin(cohort),
            "git_commit": tracking.git_commit(), **{f"version.{k}": v for k, v in tracking.package_versions().items()}}
    try:
        with tracking.training_run(experiment_id, run_name, config.flat(), tags):
            result = fit_and_evaluate(cohort, data, built, notes, target, config, RunProgress(progress))
            progress.stage("logging to MLflow")
            log_result(result, (experiment_id, experiment), run_name, digest, Path(cohort_path).name, tags)
    finally:
        progress.close()
    return result
