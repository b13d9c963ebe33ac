"""The ``evaluate`` flow: external validation of a registered model on a new labelled cohort.

load the model → validate the cohort → outcome → score (the model's own ``predict_table``, as ``score``
does) → metrics on the new cohort → one MLflow evaluation run. The drug arm comes first, as in training:
AUROC within each drug (course-weighted, as training computes it) with its patient-bootstrap interval, calibration slope and intercept with
theirs, a loess calibration curve (aggregated on a grid of predicted probabilities), and c-for-benefit
for each drug the model has a benefit model of when the cohort has a placebo arm. Every metric is one of
``pipelines/evaluation``'s; nothing patient-level is logged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ACTIVE_ARMS
from ketamine_response.features.cohort.validation import load_cohort
from ketamine_response.features.errors import TrainingDataError, UsageError
from ketamine_response.features.tasks import build_target, parse_target
from ketamine_response.models.wrapper import ScoringModel
from ketamine_response.pipelines import listing, store, tracking
from ketamine_response.pipelines.config import COUNTS
from ketamine_response.pipelines.evaluation.benefit import c_for_benefit_ci
from ketamine_response.pipelines.evaluation.metrics import (
    auroc,
    bootstrap_ci,
    calibration_slope_intercept,
    flexible_calibration,
    loess_calibration,
    patient_resamples,
    percentile_interval,
)
from ketamine_response.pipelines.evaluation.repeats import drug_weighted_auroc
from ketamine_response.pipelines.flows.features import usable_rows

RUN_KIND = "evaluation"
CURVE_POINTS = 9  # the loess curve at the 10th to 90th percentiles of the predictions: aggregates, not courses


@dataclass
class ExternalResult:
    """What ``evaluate`` found: metrics (point, ``_ci_low``/``_ci_high``, counts), the calibration curve,
    and which model and run they belong to."""

    target: str
    model: str
    version: str
    training_run: str
    metrics: dict[str, float]
    curve: pd.DataFrame
    data_origin: str
    digest: str
    source: str  # ``synthetic:<scenario>`` or ``real:<file stem>``, as training tags it
    notes: list[str] = field(default_factory=list)
    run_id: str = ""
    experiment: str = ""


@dataclass(frozen=True)
class Scored:
    """The labelled, scored courses of the new cohort (kept in memory only)."""

    y: np.ndarray
    p: np.ndarray
    patients: np.ndarray
    treatments: np.ndarray
    arms: pd.DataFrame  # every arm's probability and each drug's predicted benefit


def run_evaluate(cohort_path: str | Path, model_uri: str, experiment: str | None = None,
                 mapping_path: str | Path | None = None, drop_invalid: bool = False, resamples: int = 500,
                 seed: int = 0) -> ExternalResult:
    """Score *cohort_path* with *model_uri*, measure it against the cohort's outcomes and log an evaluation
    run into *experiment* (default: the training run's experiment)."""
    from ketamine_response.features.synthetic.cohort import data_origin
    from ketamine_response.pipelines import registry
    from ketamine_response.pipelines.integrity import file_digest

    most = COUNTS["evaluation.bootstrap"][1]  # the training config's upper bound; evaluate's own floor of 10
    if not 10 <= resamples <= most:
        raise UsageError(f"--bootstrap must be a whole number from 10 to {most} resamples, got {resamples}")
    store.open_store()
    uri, name, version = registry.resolve_model(model_uri)
    model = registry.load_model(uri).unwrap_python_model()
    if not model.task.probabilities:
        raise UsageError(f"evaluate measures models that predict a probability (response, remission, a harm); "
                         f"{name} predicts {model.target}.")
    cohort = load_cohort(cohort_path, mapping_path)
    table, dropped = usable_rows(cohort, drop_invalid)
    scored = score_labelled(model, table, str(cohort_path))
    metrics, notes = measure(scored, resamples, seed)
    info = listing.model_version(name, version) if version else {}
    result = ExternalResult(model.target, name, version, info.get("run_id", ""), metrics, calibration_curve(scored),
                            data_origin(table), file_digest(cohort_path), tracking.origin_label(table, cohort_path), notes)
    if dropped:
        result.notes.insert(0, f"left out {dropped} invalid rows (drop invalid rows was asked for)")
    if len(table) > len(scored.y):  # never a silently smaller n: the courses measured are counted
        result.notes.insert(0, f"left out {len(table) - len(scored.y)} of {len(table)} courses without a "
                               f"{model.target} outcome or a prediction (an arm the model never saw)")
    log_evaluation(result, uri, experiment, Path(cohort_path).name, resamples)
    return result


def score_labelled(model: ScoringModel, table: pd.DataFrame, source: str) -> Scored:
    """The courses with an outcome and a prediction (an arm the model never saw has none)."""
    outcome = build_target(table, parse_target(model.target), source)[model.target].to_numpy(float)
    p = model.predict_table(table)
    keep = ~np.isnan(outcome) & ~np.isnan(p)
    if not keep.any():
        raise TrainingDataError(f"{source}: no course has both a {model.target} outcome and a prediction "
                                "(arms the model was trained on). Check the outcome column and the treatments.")
    rows = table[keep]
    return Scored(outcome[keep], p[keep], rows["patient_id"].to_numpy(str), rows["treatment"].to_numpy(str),
                  model.arm_table(rows))


def measure(s: Scored, resamples: int, seed: int) -> tuple[dict[str, float], list[str]]:
    """Drug-arm discrimination and calibration with patient-bootstrap intervals, the pooled AUROC (secondary)
    and c-for-benefit; the counts each figure rests on."""
    drug = np.isin(s.treatments, ACTIVE_ARMS)
    y, p = s.y[drug], s.p[drug]
    if len(np.unique(y)) < 2:
        raise TrainingDataError(f"the drug arm(s) of the new cohort have {len(y)} courses with "
                                f"{int(y.sum())} events: AUROC and calibration need both outcomes there.")
    slope, intercept = calibration_slope_intercept(y, p)
    ci = bootstrap_ci(y, p, s.patients[drug], 0.5, resamples, seed)  # the threshold only sets unused metrics
    ci["auroc"] = active_auroc_ci(y, p, s.treatments[drug], s.patients[drug], resamples, seed)
    m = {"auroc_active": active_auroc(y, p, s.treatments[drug]), "calibration_slope_active": slope,
         "calibration_intercept_active": intercept}
    for name, key in (("auroc_active", "auroc"), ("calibration_slope_active", "calibration_slope"),
                      ("calibration_intercept_active", "calibration_intercept")):
        m[f"{name}_ci_low"], m[f"{name}_ci_high"] = ci[key]
    m |= {f"{k}_active": v for k, v in flexible_calibration(y, p).items()}
    m |= {"auroc": auroc(s.y, s.p), "n_courses": float(len(s.y)), "n_events": float(s.y.sum()),
          "n_patients": float(len(np.unique(s.patients))), "n_courses_active": float(drug.sum()),
          "responders_active": float(y.sum()), "non_responders_active": float(len(y) - y.sum())}
    benefit, notes = benefit_metrics(s, resamples, seed)
    return m | benefit, notes


def active_auroc(y: np.ndarray, p: np.ndarray, treatments: np.ndarray) -> float:
    """``auroc_active`` as training computes it: within each drug, course-weighted (pooling the drugs would let
    the drug's identity pass for a prediction)."""
    return drug_weighted_auroc(y, p, treatments, [a for a in ACTIVE_ARMS if (treatments == a).any()])


def active_auroc_ci(y: np.ndarray, p: np.ndarray, treatments: np.ndarray, patients: np.ndarray, resamples: int,
                    seed: int) -> tuple[float, float]:
    """Patient-bootstrap percentile interval of :func:`active_auroc` (the same estimator in every resample)."""
    draws = [active_auroc(y[pick], p[pick], treatments[pick]) for pick in patient_resamples(patients, resamples, seed)]
    return percentile_interval(np.asarray(draws))


def benefit_metrics(s: Scored, resamples: int, seed: int) -> tuple[dict[str, float], list[str]]:
    """c-for-benefit with its interval per drug with a benefit model and courses on both sides; the drug with
    the most courses also unsuffixed, as training logs it. Notes say why there is none."""
    drugs = [c.removeprefix("predicted_benefit_") for c in s.arms.columns if c.startswith("predicted_benefit_")]
    if not drugs:
        return {}, ["no c-for-benefit: the model has no benefit model (trained without a placebo arm)"]
    placebo = s.treatments == "placebo"
    found = {d: (s.treatments == d) | placebo for d in drugs if (s.treatments == d).any() and placebo.any()}
    if not found:
        return {}, ["no c-for-benefit: the new cohort has no placebo courses beside the drug's"]
    out: dict[str, float] = {}
    for drug, rows in sorted(found.items(), key=lambda item: -item[1].sum()):
        c, low, high = c_for_benefit_ci(s.arms[f"predicted_benefit_{drug}"].to_numpy(float)[rows], s.y[rows],
                                        (s.treatments[rows] == drug).astype(int), s.patients[rows], resamples, seed)
        values = {"c_for_benefit": c, "c_for_benefit_ci_low": low, "c_for_benefit_ci_high": high,
                  "n_courses_benefit": float(rows.sum())}
        out |= {f"{k}_{drug}": v for k, v in values.items()} | ({} if "c_for_benefit" in out else values)
    return out, []


def calibration_curve(s: Scored) -> pd.DataFrame:
    """The drug arm's loess calibration curve (:func:`loess_calibration`) read at the deciles of its
    predictions: predicted against smoothed observed probability, an aggregate of many courses per point."""
    drug = np.isin(s.treatments, ACTIVE_ARMS)
    y, p = s.y[drug], s.p[drug]
    if np.ptp(p) == 0:  # a constant predictor has no curve
        return pd.DataFrame(columns=["predicted", "observed_smoothed"])
    smooth = loess_calibration(y, p)
    order = np.argsort(p, kind="stable")
    grid = np.unique(np.percentile(p, np.linspace(10, 90, CURVE_POINTS)))
    return pd.DataFrame({"predicted": grid, "observed_smoothed": np.interp(grid, p[order], smooth[order])})


def log_evaluation(result: ExternalResult, uri: str, experiment: str | None, source: str, resamples: int) -> None:
    """One FINISHED MLflow run of kind ``evaluation``, linked to the model version and its training run."""
    if experiment is None:
        trained = listing.find_runs([result.training_run]) if result.training_run else []
        experiment = trained[0]["experiment"] if trained else tracking.DEFAULT_EXPERIMENT
    experiment_id = store.open_experiment(experiment)
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    tags = {"run_kind": RUN_KIND, "target": result.target, "model_name": result.model, "model_version": result.version,
            "model_uri": uri, "registered_model": f"{result.model}/{result.version}" if result.version else "",
            "training_run_id": result.training_run, "data_origin": result.data_origin, "data_source": result.source,
            "data_digest": result.digest,
            "mlflow.note.content": f"External validation of `{result.model}` version {result.version or '-'} on "
                                   f"`{source}` (SHA-256 `{result.digest[:12]}`, {result.data_origin}), {date} UTC."}
    params = {"cohort_file": source, "model_uri": uri, "bootstrap": str(resamples)}
    result.experiment = experiment
    name = f"evaluation · {result.target} v{result.version or '-'} · {result.source} · {result.digest[:6]} · {date}"
    result.run_id = tracking.evaluation_run(experiment_id, name,
                                            {k: v for k, v in tags.items() if v}, params, result.metrics,
                                            {"calibration_curve.csv": result.curve})
