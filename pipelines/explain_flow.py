"""SHAP for a training run (out-of-fold and final model), its figures, and the HTML report content."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.explain import Explanation, explain
from pipelines.importance import IMPORTANCE_COLUMNS, by_domain, by_source_column, global_importance
from pipelines.report import ReportContent
from pipelines.shap_plots import beeswarm, dependence, domain_bar, importance_bar


@dataclass(frozen=True)
class ShapSummary:
    """Aggregated SHAP results of a run (no per-course values are kept for logging)."""

    importance: pd.DataFrame
    domains: pd.DataFrame
    sources: pd.DataFrame
    final: Explanation
    max_additivity_error: float


def explain_training(data, folds: list, estimator, dictionary: pd.DataFrame, seed: int,
                     signal: bool = True) -> ShapSummary:
    """Global importance from out-of-fold SHAP; domains and sources from the final model on all courses.

    *signal* False (the model did not beat permuted labels) means no feature is reported as
    ``consistent``, however stable its ranking: a stable ranking of noise is still noise.
    """
    final = explain(estimator, data.X, data.X)
    final_error = float(np.abs(final.values.sum(axis=1) + final.base - final.raw).max())
    explained_folds = any(f.shap is not None and f.shap.shape[1] for f in folds)
    importance = (global_importance(folds, data.X, dictionary, seed=seed) if explained_folds
                  else pd.DataFrame(columns=IMPORTANCE_COLUMNS))
    importance["consistent"] = importance["consistent"].astype(bool) & signal
    # the prevalence model explains nothing: its tables stay empty
    domains = by_domain(final.values, dictionary) if final.values.shape[1] else pd.DataFrame(columns=["domain", "mean_abs_shap"])
    sources = (by_source_column(final.values, dictionary) if final.values.shape[1]
               else pd.DataFrame(columns=["source_column", "mean_abs_shap"]))
    return ShapSummary(importance, domains, sources, final, max([f.additivity_error for f in folds] + [final_error]))


def shap_figures(summary: ShapSummary, data, top_dependence: int = 3) -> dict[str, object]:
    """Bar with CIs, per-domain bar, beeswarm and dependence plots of the top features."""
    if summary.final.values.shape[1] == 0 or summary.importance.empty:
        return {}
    values, base = summary.final.values, summary.final.base
    features = data.X.reindex(columns=values.columns)
    out = {"shap/importance_bar.png": importance_bar(summary.importance),
           "shap/domains.png": domain_bar(summary.domains),
           "shap/beeswarm.png": beeswarm(values, base, features)}
    # the final model may be another family than some folds' selections: plot what it uses
    top = [f for f in summary.importance["feature"] if f in values.columns and f in data.X.columns
           and data.X[f].notna().sum() > 2 and values[f].abs().sum() > 0][:top_dependence]
    for feature in top:
        out[f"shap/dependence_{feature}.png"] = dependence(values, base, features, feature)
    return out


def report_content(result, summary: ShapSummary, source: str, digest: str, figures: dict) -> ReportContent:
    """TRIPOD+AI-style summary, metrics, SHAP sections, warnings and limitations of a run."""
    c = result.config
    target = result.target
    kind, tp = target.split("_", 1)
    outcome = (f"response at {tp}: MADRS at {tp} <= 50% of baseline" if kind == "response"
               else f"remission at {tp}: MADRS at {tp} <= {c.evaluation.remission_threshold:g}")
    domains = pd.Series(result.data.domains).reindex(result.data.X.columns).value_counts()
    sel = result.evaluations["selected"]
    auc, (lo, hi) = sel.metrics["auroc"], sel.ci["auroc"]
    summary_items = {
        "Data source": f"{source} (SHA-256 {digest})",
        "Participants": f"{len(np.unique(result.data.patients))} patients, {len(result.data.y)} courses with the outcome, "
                        f"{len(np.unique(result.data.sites))} sites",
        "Outcome": outcome,
        "Events": f"{int(result.data.y.sum())} ({result.data.y.mean():.1%})",
        "Predictors": f"{result.data.X.shape[1]} candidates: " + ", ".join(f"{d} {n}" for d, n in domains.items()),
        "Missing data": "median imputation with missingness indicators inside each fold (linear models); "
                        "native missing-value handling (LightGBM)",
        "Validation": f"nested CV: outer {c.cv.design} ({c.cv.outer_folds} folds x {c.cv.outer_repeats} repeats"
                      f"{'' if c.cv.design == 'kfold' else ', leave-one-site-out'}), inner {c.cv.inner_folds} folds, "
                      f"patient-grouped; family chosen in the inner loop by {c.search.selection_metric}",
        "Selected model": f"{result.selected}, {c.calibration.method} calibration in-fold",
        "Performance": f"AUROC {auc:.3f} (95% CI {lo:.3f}-{hi:.3f}); permutation p = {result.permutation_p['selected']:.3f}",
    }
    warnings = [n for n in result.notes if n.startswith("WARNING")]
    limitations = [
        "Internal validation only: performance on another population, protocol or era may be lower.",
        "SHAP values describe associations the models use, not causes; candidates with wide intervals or low "
        "top-k frequency are not supported as predictors.",
        "The permutation test refits fixed hyperparameters rather than re-running the whole nested search.",
    ] + (["Fewer than 10 events per candidate predictor: estimates are unstable."] if warnings else [])
    return ReportContent(f"ketamine-response: {target}", summary_items, result.table(), result.notes, warnings,
                         summary.importance, summary.domains, figures, limitations)
