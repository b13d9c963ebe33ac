"""Turn a TrainingResult into what the tracking module logs: aggregates only, never patient rows."""

from __future__ import annotations

import pandas as pd
import yaml

from features.build import FeatureTable
from features.schema import COLUMNS
from features.synthetic_cohort import build_cohort
from features.validation import ValidatedCohort
from models.wrapper import CohortModel
from pipelines import tracking
from models.explain import background_centres
from pipelines.evaluate import figures
from pipelines.explain_flow import report_content, shap_figures
from pipelines.report import render_report
from pipelines.nested import Data, pooled


def make_model(estimator: object, data: Data, built: FeatureTable, cohort: ValidatedCohort, target: str,
               threshold: float) -> CohortModel:
    """Wrap the refit estimator so it takes a raw cohort table."""
    derivations = tuple(dict.fromkeys(
        name for name in built.dictionary.set_index("feature").loc[list(data.X.columns), "derivation"]))
    return CohortModel(estimator, tuple(data.X.columns), derivations, tuple(cohort.table.columns), target,
                       threshold, tuple(cohort.extra_features), background_centres(estimator, data.X))


def synthetic_input_example(model: CohortModel, rows: int = 3) -> pd.DataFrame:
    """An input example made up by the generator (never a real course), in the model's input columns."""
    example, _ = build_cohort(max(rows, 2), seed=0)
    keep = [c.name for c in COLUMNS if c.role not in ("outcome", "safety") and c.name in example.columns]
    keep += [c for c in model.training_columns if c.startswith("madrs_") and c in example.columns
             and c != "madrs_baseline" and c not in keep]
    example = example[keep].head(rows).copy()
    example["patient_id"] = [f"EXAMPLE-{i + 1}" for i in range(len(example))]
    for column in example.columns:
        if str(example[column].dtype) in ("Int64", "int64", "float64"):
            example[column] = example[column].astype("float64")  # NaN-tolerant numeric input
    return example


def _content(result, name: str) -> dict:
    ev = result.evaluations[name]
    y = result.data.y
    p = pooled(result.data, result.folds, None if name == "selected" else name)
    label = f"{name if name != 'selected' else result.selected} (AUROC {ev.metrics['auroc']:.3f})"
    metrics = ev.tracked_metrics(result.permutation_p[name])
    return {"metrics": {k: v for k, v in metrics.items() if v == v},  # MLflow keeps NaN poorly: omit
            "tables": {"decision_curve.csv": ev.curve, "subgroups.csv": ev.subgroups},
            "figures": figures(y, p, ev, label), "texts": {}}


def _shap_content(result, digest: str, source: str) -> tuple[dict, dict, dict]:
    summary = result.shap
    figures_ = shap_figures(summary, result.data)
    tables = {"shap/global_importance.csv": summary.importance, "shap/by_domain.csv": summary.domains,
              "shap/by_source_column.csv": summary.sources}
    parent_figures = figures(result.data.y, pooled(result.data, result.folds), result.evaluations["selected"],
                             f"selected (AUROC {result.evaluations['selected'].metrics['auroc']:.3f})")
    page = render_report(report_content(result, summary, source, digest, parent_figures | figures_))
    return tables, figures_, {"report/index.html": page}


def log_result(result, experiment_id: str, digest: str, source: str) -> None:
    """Log the parent run (selected procedure), one child per family, and register the model."""
    config = result.config
    selections = pd.Series([f.selected for f in result.folds]).value_counts().to_dict()
    parent = _content(result, "selected")
    parent["tables"] |= {"metrics.csv": result.table(), "feature_dictionary.csv": result.features.dictionary}
    parent["texts"] = {
        "config.yaml": yaml.safe_dump(config.flat(), sort_keys=True),
        "notes.txt": "\n".join(result.notes + [
            f"outer-fold selections: {selections}",
            "permutation test: outer folds of the first repeat refit, uncalibrated, with the candidates chosen "
            "on the real labels (the cheaper scheme; the full nested search is not re-run per permutation)",
        ]) + "\n"}
    shap_tables, shap_figs, report = _shap_content(result, digest, source)
    parent["tables"] |= shap_tables
    parent["figures"] |= shap_figs
    parent["texts"] |= report
    parent["metrics"]["shap_max_additivity_error"] = result.shap.max_additivity_error
    tags = {"target": result.target, "cv_design": config.cv.design, "data_digest": digest,
            "git_commit": tracking.git_commit(), "selected_model": result.selected,
            **{f"version.{k}": v for k, v in tracking.package_versions().items()}}
    children = {f: _content(result, f) for f in config.families}
    run_id, uri, version = tracking.log_training(
        experiment_id, f"{result.target}-{config.cv.design}", config.flat(), tags, parent, children,
        result.model, synthetic_input_example(result.model), f"ketamine-response-{result.target}")
    result.run_id, result.artifact_uri, result.version = run_id, uri, version
