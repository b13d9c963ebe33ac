"""The ``train`` flow: load → validate → features → fit → evaluate → log.

Each step is a function that can be tested alone; :func:`run_train` only wires them.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from features.build import FeatureTable, build_feature_table
from features.targets import parse_target
from features.validation import ValidatedCohort, load_cohort
from pipelines.config import TrainConfig
from pipelines.cv import check_cv_feasible
from pipelines.evaluate import Evaluation, evaluate, results_table
from pipelines.explain_flow import explain_training
from pipelines.features import usable_rows
from pipelines.nested import Data, FoldResult, fit_calibrated, permutation_test, pooled, run_nested, search, select

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class TrainingResult:
    """What a training run found; nothing here is patient-level except ``data`` (never logged)."""

    target: str
    config: TrainConfig
    data: Data
    features: FeatureTable
    folds: list[FoldResult]
    selected: str
    evaluations: dict[str, Evaluation]
    permutation_p: dict[str, float]
    model: object
    notes: list[str] = field(default_factory=list)
    shap: object = None
    run_id: str = ""
    artifact_uri: str = ""
    version: int = 0

    def table(self) -> pd.DataFrame:
        rows = [self.evaluations[f].row(f, self.permutation_p[f]) for f in self.config.families]
        rows.append(self.evaluations["selected"].row(f"selected ({self.selected})", self.permutation_p["selected"]))
        return results_table(rows)


def build_training_data(cohort: ValidatedCohort, target: str, config: TrainConfig,
                        drop_invalid: bool) -> tuple[Data, FeatureTable, list[str]]:
    """Validated rows → feature table → design arrays; courses without the outcome are set aside."""
    table, dropped = usable_rows(cohort, drop_invalid)
    built = build_feature_table(table, parse_target(target), cohort.extra_features,
                                config.evaluation.remission_threshold, cohort.source)
    notes = [f"left out {dropped} invalid rows (--drop-invalid)"] if dropped else []
    notes += list(built.notes)
    frame = built.frame[built.frame[target].notna()]
    if len(frame) < len(built.frame):
        notes.append(f"excluded {len(built.frame) - len(frame)} courses with no {target} outcome")
    domains = dict(zip(built.dictionary["feature"], built.dictionary["domain"]))
    keep = [f for f in built.features if config.early_course or domains[f] != "early_course"]
    data = Data(frame[keep], frame[target].to_numpy(dtype=float), frame["patient_id"].to_numpy(str),
                frame["site"].to_numpy(str), frame["treatment"].to_numpy(str), domains)
    return data, built, notes


def sample_size_notes(data: Data, config: TrainConfig) -> list[str]:
    """Events per candidate predictor (EPP), with a clear warning when the cohort is too small."""
    minority = min(data.y.sum(), len(data.y) - data.y.sum())
    epp = minority / max(data.X.shape[1], 1)
    note = (f"{int(data.y.sum())} events in {len(data.y)} courses, {data.X.shape[1]} candidate predictors: "
            f"{epp:.1f} events per predictor")
    if epp < config.evaluation.min_events_per_predictor:
        return [f"WARNING: {note}, below {config.evaluation.min_events_per_predictor:g}. Estimates are unstable "
                "and models can overfit; read the confidence intervals, not the point estimates."]
    return [note]


def threshold(data: Data, config: TrainConfig) -> float:
    """The decision threshold: the configured probability, or the training event rate."""
    t = config.evaluation.threshold
    return float(data.y.mean()) if t == "prevalence" else float(t)


def fit_all(data: Data, config: TrainConfig, progress: Progress) -> tuple[list[FoldResult], dict[str, float], object, str]:
    """Nested CV, permutation tests and the final refit of the selected candidate on all courses."""
    from joblib import Parallel

    with Parallel(n_jobs=config.n_jobs) as parallel:
        progress(f"nested cross-validation: {config.cv.design}, {len(config.families)} families")
        folds = run_nested(data, config, parallel)
        progress(f"permutation test: {config.evaluation.permutations} label permutations")
        p_values = {"selected": permutation_test(data, folds, config, parallel)[1]}
        # each child's own test with fewer permutations (p resolves 0.05): the parent's is the headline
        child = replace(config, evaluation=replace(config.evaluation, permutations=min(config.evaluation.permutations, 19)))
        for family in config.families:
            # the prevalence model ranks nobody above anybody: its AUROC is 0.5 under any labels
            p_values[family] = 1.0 if family == "prevalence" else permutation_test(data, folds, child, parallel, family)[1]
    progress("refitting the selected model on all courses")
    params, scores = search(data, config, config.seed)
    selected = select(scores)
    return folds, p_values, fit_calibrated(selected, params[selected], data, config, config.seed), selected


def evaluate_all(data: Data, folds: list[FoldResult], config: TrainConfig, cohort_table: pd.DataFrame) -> dict[str, Evaluation]:
    """Evaluate every family's and the selected procedure's pooled out-of-fold probabilities."""
    index = data.X.index
    sex = cohort_table["sex"] if "sex" in cohort_table else pd.Series(None, index=cohort_table.index, dtype=object)
    groups = {"sex": sex.loc[index].to_numpy(object), "arm": data.treatments, "site": data.sites}
    t = threshold(data, config)
    out = {}
    for name in (*config.families, "selected"):
        p = pooled(data, folds, None if name == "selected" else name)
        out[name] = evaluate(data.y, p, data.patients, groups, t, config.evaluation.bootstrap, config.seed)
    return out


def data_digest(path: str | Path) -> str:
    """SHA-256 of the cohort file (identifies the data without storing it)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def run_train(cohort_path: str | Path, target: str, config: TrainConfig, experiment: str = "ketamine-response",
              mapping_path: str | Path | None = None, drop_invalid: bool = False,
              progress: Progress = lambda message: None) -> TrainingResult:
    """Train, evaluate and log one target; see the module docstring for the steps."""
    from pipelines import tracking
    from pipelines.train_logging import log_result, make_model

    experiment_id = tracking.open_experiment(experiment)
    progress(f"validating {cohort_path}")
    cohort = load_cohort(cohort_path, mapping_path)
    data, built, notes = build_training_data(cohort, target, config, drop_invalid)
    c = config.cv
    check_cv_feasible(data.y, data.patients, data.sites, c.design, c.outer_folds, c.inner_folds, str(cohort_path))
    notes += sample_size_notes(data, config)
    folds, p_values, estimator, selected = fit_all(data, config, progress)
    progress("evaluating out-of-fold predictions")
    evaluations = evaluate_all(data, folds, config, cohort.table)
    progress("explaining: out-of-fold and final-model SHAP")
    signal = not p_values["selected"] > 0.05  # NaN (no permutations) does not veto
    if not signal:
        notes.append(f"no feature is reported as consistently important: the selected procedure did not beat "
                     f"permuted labels (permutation p = {p_values['selected']:.3f})")
    shap = explain_training(data, folds, estimator, built.dictionary, config.seed, signal)
    model = make_model(estimator, data, built, cohort, target, threshold(data, config))
    result = TrainingResult(target, config, data, built, folds, selected, evaluations, p_values, model, notes, shap)
    progress("logging to MLflow")
    log_result(result, experiment_id, data_digest(cohort_path), Path(cohort_path).name)
    return result

