"""The ``train`` flow: load → validate → features → fit → evaluate → log.

Each step is a function that can be tested alone; :func:`run_train` only wires them.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from threadpoolctl import threadpool_limits

from ketamine_response.features.build import FeatureTable, build_feature_table
from ketamine_response.features.cohort.targets import Target
from ketamine_response.features.cohort.validation import ValidatedCohort, load_cohort
from ketamine_response.features.synthetic.cohort import data_origin, input_example
from ketamine_response.features.tasks import TaskKind, parse_target, task_of
from ketamine_response.models.families import SELECTED
from ketamine_response.pipelines import store, tracking
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.evaluation.evaluate import evaluate_all
from ketamine_response.pipelines.evaluation.explanation import explain_training
from ketamine_response.pipelines.evaluation.sample_size import assess
from ketamine_response.pipelines.flows.features import usable_rows
from ketamine_response.pipelines.folds import Data, pooled
from ketamine_response.pipelines.integrity import file_digest
from ketamine_response.pipelines.result import TrainingResult
from ketamine_response.pipelines.training.caveats import model_caveats, operating_point
from ketamine_response.pipelines.training.cv import check_cv_feasible
from ketamine_response.pipelines.training.nested import fold_threshold, repeats_note
from ketamine_response.pipelines.training.procedure import BENEFIT_NOTE, estimate_benefit, fit_all, make_model
from ketamine_response.pipelines.training.progress import Progress, Publishing
from ketamine_response.pipelines.training.replicates import fit_intervals

log = logging.getLogger(__name__)


def build_training_data(cohort: ValidatedCohort, target: Target | str, config: TrainConfig,
                        drop_invalid: bool) -> tuple[Data, FeatureTable, list[str]]:
    """Validated rows → feature table → design arrays; courses without the outcome are set aside."""
    parsed = parse_target(target) if isinstance(target, str) else target
    table, dropped = usable_rows(cohort, drop_invalid)
    built = build_feature_table(table, parsed, cohort.extra_features, config.evaluation.remission_threshold, cohort.source)
    target = parsed.name
    notes = [f"left out {dropped} invalid rows (drop invalid rows was asked for)"] if dropped else []
    notes += list(built.notes)
    frame = built.frame[built.frame[target].notna()]
    if len(frame) < len(built.frame):
        # by arm: dropout can be informative (e.g. placebo non-responders leaving early)
        missing = built.frame.loc[built.frame[target].isna(), "treatment"].value_counts()
        arms = ", ".join(f"{arm} {n}" for arm, n in missing.items())
        why = (f"with no {parsed.outcome_column} (not followed after a response: not in the durability analysis)"
               if task_of(parsed).kind is TaskKind.SURVIVAL else f"with no {target} outcome")
        notes.append(f"excluded {len(built.frame) - len(frame)} courses {why} ({arms})")
    domains = dict(zip(built.dictionary["feature"], built.dictionary["domain"]))
    keep = [f for f in built.features if config.early_course or domains[f] != "early_course"]
    # a feature with no value in any course (every biomarker left blank, say) carries nothing to learn: left out
    # with one note, rather than imputed from nothing with a numpy warning at every fold
    empty = [f for f in keep if frame[f].isna().all()]
    if empty:
        notes.append(f"left out {len(empty)} features with no value in any course: {', '.join(empty)}")
        keep = [f for f in keep if f not in empty]
    task = task_of(parsed)
    data = Data(frame[keep], task.outcome(frame, target), frame["patient_id"].to_numpy(str),
                frame["site"].to_numpy(str), frame["treatment"].to_numpy(str), domains, task)
    return data, built, notes


def evidence_tags(result: TrainingResult, run_tags: dict[str, str]) -> dict[str, str]:
    """Version tags saying what the version was trained on and the two facts ``promote`` checks (the
    policy's alias rules) before it makes the version champion without a ``--reason``."""
    p = result.permutation.p[SELECTED]
    return {"trained_on": f"{run_tags['data_source']} ({len(result.data.y)} courses)",
            "below_minimum_sample": str(result.sample_size.below_minimum).lower(),
            "beats_permuted_labels": str(result.config.policy.beats_permutations(p)).lower()}


def log_result(result: TrainingResult, experiment: tuple[str, str], digest: str, source: str,
               tags: dict[str, str]) -> None:
    """Into the active run: the model (registered, described, aliased only when earned), the parent's
    content and report, and one child run per family."""
    from ketamine_response.pipelines import registry
    from ketamine_response.pipelines.reporting import descriptions as d
    from ketamine_response.pipelines.reporting.content import benefit_content, rendered, run_content, shap_content

    experiment_id, experiment_name = experiment
    config = result.config
    result.run_id, result.artifact_uri = tracking.active_run()
    size = result.sample_size
    earned, result.alias_reason = config.policy.alias(result.permutation.p[SELECTED], len(result.data.y), size.below_minimum,
                                                      size.minimum)
    info, digest_tags = registry.log_model(result.model, input_example(result.model.training_columns))
    name = tracking.registered_name(experiment_name, result.target)
    version_tags = d.version_tags(result, digest, experiment_name, result.run_id) | evidence_tags(result, tags) | digest_tags
    result.version, result.alias = registry.register(
        info.model_uri, name, earned, version_tags, d.version_description(result, digest, experiment_name, result.alias_reason),
        result.alias_reason)
    parent = run_content(result, SELECTED)
    parent["tables"] |= {"metrics.csv": result.table(), "feature_dictionary.csv": result.features.dictionary}
    parent["texts"] = {"config.yaml": config.as_yaml(result.data.task),  # re-runs with train --config
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
    children = {f: run_content(result, f) for f in config.families}
    for content in children.values():
        content["figures"] = rendered(content["figures"])  # PNGs as the parent's are: the report's size and crop
    tracking.log_children(experiment_id, config.flat(), tags, children,
                          {f: d.family_description(result, f) for f in config.families})


def fit_and_evaluate(cohort: ValidatedCohort, data: Data, built: FeatureTable, notes: list[str], target: str,
                     config: TrainConfig, progress: Progress) -> TrainingResult:
    """Fit, test against permuted labels, evaluate, explain and estimate benefit: everything but logging."""
    folds, permutation, estimator, selected = fit_all(data, config, progress)
    e = config.evaluation
    size = assess(data, config.families, pooled(data, folds), e)
    notes.insert(0, size.note()) if size.below_minimum else notes.append(size.note())
    warnings = [size.note()] if size.below_minimum else []
    progress.stage("evaluating out-of-fold predictions")
    evaluations = evaluate_all(data, folds, config, cohort.table)
    progress.stage("explaining: out-of-fold and final-model SHAP")
    p_selected = permutation.p[SELECTED]
    signal = config.policy.shap_shown(p_selected)
    if not signal:
        why = ("is a constant predictor in every outer fold (p = 1 without permuting)" if permutation.b[SELECTED] == 0
               else f"did not beat permuted labels (permutation p = {p_selected:.3f})")
        notes.append(f"no feature is reported as consistently important: the selected procedure {why}")
        warnings.append(notes[-1])
    notes.append(permutation.note(config.evaluation.permutation_stop))
    notes += [n for n in [repeats_note(data, config)] if n]
    if "responders_active" in evaluations[SELECTED].metrics and "auroc_active" not in evaluations[SELECTED].metrics:
        from ketamine_response.pipelines.reporting.content import withheld_active
        from ketamine_response.pipelines.reporting.wording import event_words

        notes.append("AUROC within the drug arm " + withheld_active(evaluations[SELECTED].metrics, config.policy.min_events_per_arm,
                                                                    event_words(data.task)))
    shap = explain_training(data, folds, estimator, selected, built.dictionary, signal)
    periods = cohort.table.loc[data.X.index, "period"].to_numpy(dtype=float) if "period" in cohort.table else None
    benefit, learners = estimate_benefit(data, folds, built, config, periods, progress)
    if benefit is not None:
        notes += benefit.notes + [BENEFIT_NOTE.format(propensity=config.benefit.propensity)] * bool(benefit.summaries)
    intervals = fit_intervals(estimator, data, config, progress, pooled(data, folds))
    logged = evaluations[SELECTED].tracked_metrics({}) | (benefit.metrics() if benefit is not None else {})
    verdicts = {s.arm: s.verdict for s in benefit.summaries} if benefit is not None else {}
    caveats = model_caveats(size, selected, tuple(data.X.columns), data.domains, learners, data_origin(cohort.table),
                            p_selected, config, logged, verdicts, intervals)
    model = make_model(estimator, selected, data, built, cohort, target, fold_threshold(data, config), learners,
                       caveats, operating_point(config), intervals)
    return TrainingResult(target, config, data, built, folds, selected, evaluations, permutation, size, model,
                          shap, notes, benefit, warnings=warnings)


def run_train(cohort_path: str | Path, target: str, config: TrainConfig,
              experiment: str = tracking.DEFAULT_EXPERIMENT, mapping_path: str | Path | None = None,
              drop_invalid: bool = False, progress: Progress | None = None) -> TrainingResult:
    """Train, evaluate and log one target; see the module docstring for the steps.

    The experiment and its MLflow run open only once the input has passed every check; the run shows
    its progress while it trains, and a failure ends it FAILED with the error as its description.
    """
    progress = progress or Progress()
    parsed = parse_target(target)
    config = replace(config, families=config.families_for(task_of(parsed)))  # the families of the target's task
    progress.stage(f"validating {cohort_path}")
    cohort = load_cohort(cohort_path, mapping_path)
    data, built, notes = build_training_data(cohort, parsed, config, drop_invalid)
    c = config.cv
    check_cv_feasible(data.y, data.patients, data.sites, c.design, c.outer_folds, c.inner_folds, str(cohort_path), data.task)
    experiment_id = store.open_experiment(experiment)
    digest, origin = file_digest(cohort_path), tracking.origin_label(cohort.table, cohort_path)
    run_name = tracking.run_name(target, origin, digest, datetime.now(UTC))
    tags = {"target": target, "cv_design": c.design, "data_digest": digest, "data_origin": data_origin(cohort.table),
            "data_source": origin,
            "git_commit": tracking.git_commit(), **{f"version.{k}": v for k, v in tracking.package_versions().items()}}
    try:
        # one BLAS thread in this process, as in each joblib worker: its work is many small fits, for which
        # OpenBLAS's threads cost more than they give (3x slower per fit measured with the workers busy)
        with tracking.training_run(experiment_id, run_name, config.flat(), tags), threadpool_limits(1, "blas"):
            result = fit_and_evaluate(cohort, data, built, notes, target, config, Publishing(progress, tracking.set_progress))
            progress.stage("logging to MLflow")
            log_result(result, (experiment_id, experiment), digest, Path(cohort_path).name, tags)
    finally:
        progress.close()
    return result
