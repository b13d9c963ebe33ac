"""What a training run logs, rendered: each run's metrics, tables and figures, and the HTML report.

Aggregates only: nothing here is per course.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from pipelines.evaluation.benefit import BenefitSummary
from pipelines.evaluation.evaluate import Evaluation
from pipelines.reporting.html import ReportContent, render_report
from pipelines.reporting.plots import benefit_calibration_figure, performance_figures
from pipelines.reporting.shap_plots import shap_figures
from pipelines.result import BenefitResult, TrainingResult
from pipelines.training.nested import pooled

RunContent = dict[str, Any]  # metrics, tables, figures, texts: the arguments of tracking's run logging


def run_content(result: TrainingResult, name: str) -> RunContent:
    """Metrics, tables and figures of one family's run, or of the selected procedure (*name* "selected")."""
    ev = result.evaluations[name]
    p = pooled(result.data, result.folds, None if name == "selected" else name)
    label = f"{name if name != 'selected' else result.selected} ({ev.headline} {ev.metrics[ev.headline]:.3f})"
    metrics = ev.tracked_metrics(result.permutation.p[name], result.permutation.b[name])
    if name == "selected":
        metrics |= result.sample_size.metrics()
    return {"metrics": {k: v for k, v in metrics.items() if v == v},  # MLflow keeps NaN poorly: omit
            "tables": {"decision_curve.csv": ev.curve, "subgroups.csv": ev.subgroups},
            "figures": performance_figures(result.data.y, p, ev, label), "texts": {}}


def shap_content(result: TrainingResult, parent: RunContent, digest: str, source: str) -> RunContent:
    """The parent run's content plus SHAP tables and figures and the HTML report page."""
    summary = result.shap
    figures = shap_figures(summary, result.data)
    tables = {"shap/global_importance.csv": summary.importance, "shap/by_domain.csv": summary.domains,
              "shap/by_source_column.csv": summary.sources}
    page = render_report(report_content(result, source, digest, parent["figures"] | figures))
    return {"metrics": parent["metrics"] | {"shap_max_additivity_error": summary.max_additivity_error},
            "tables": parent["tables"] | tables, "figures": parent["figures"] | figures,
            "texts": parent["texts"] | {"report/index.html": page}}


def headline_sentence(ev: Evaluation) -> str:
    """The headline figures with their CIs and the question each answers, within the drug arm(s) first."""
    def figure(name: str, label: str) -> str:
        low, high = ev.ci[name]
        return f"{label} {ev.metrics.get(name + '_fold_mean', ev.metrics[name]):.3f} (95% CI {low:.3f} to {high:.3f})"

    parts = [figure(n, label) for n, label in (
        ("auroc_active", "AUROC within the active arm(s), i.e. response if given the drug,"),
        ("auroc_gain_over_arm", "gain over a model that knows only the arm"),
        (ev.headline, "AUROC pooling all arms" if ev.task == "classification" else "R2 of the percentage change"))
        if n in ev.ci]
    return "; ".join(parts) + " (means over outer folds, corrected resampled t intervals)"


def report_content(result: TrainingResult, source: str, digest: str, figures: dict[str, Any]) -> ReportContent:
    """TRIPOD+AI-style summary, metrics, SHAP sections, warnings and limitations of a run."""
    c = result.config
    target = result.target
    kind, tp = target.rsplit("_", 1)
    outcome = {"response": f"response at {tp}: MADRS at {tp} <= 50% of baseline",
               "remission": f"remission at {tp}: MADRS at {tp} <= {c.evaluation.remission_threshold:g}",
               "pct_change": f"percentage change in MADRS from baseline to {tp} (negative is improvement)"}[kind]
    domains = pd.Series(result.data.domains).reindex(result.data.X.columns).value_counts()
    sel = result.evaluations["selected"]
    y = result.data.y
    events = (f"mean {y.mean():.1f}% (SD {y.std():.1f})" if sel.task == "regression"
              else f"{int(y.sum())} ({y.mean():.1%})")
    summary_items = {
        "Data source": f"{source} (SHA-256 {digest})",
        "Participants": f"{len(np.unique(result.data.patients))} patients, {len(result.data.y)} courses with the outcome, "
                        f"{len(np.unique(result.data.sites))} sites",
        "Outcome": outcome,
        "Outcome distribution" if sel.task == "regression" else "Events": events,
        "Predictors": f"{result.data.X.shape[1]} candidates: " + ", ".join(f"{d} {n}" for d, n in domains.items()),
        "Missing data": "median imputation with missingness indicators inside each fold (linear models); "
                        "native missing-value handling (LightGBM)",
        "Validation": f"nested CV: outer {c.cv.design} ({c.cv.outer_folds} folds x {c.cv.outer_repeats} repeats"
                      f"{'' if c.cv.design == 'kfold' else ', leave-one-site-out'}), inner {c.cv.inner_folds} folds, "
                      f"patient-grouped; family chosen in the inner loop by {c.search.selection_metric}",
        "Selected model": f"{result.selected}, {c.calibration.method} calibration in-fold",
        "Performance": headline_sentence(sel) + f"; permutation p = {result.permutation.p['selected']:.3f} "
                       f"({result.permutation.b['selected']} permutations)",
    }
    warnings = [n for n in result.notes if n.startswith("WARNING")]
    limitations = [
        "Internal validation only: performance on another population, protocol or era may be lower.",
        "SHAP values describe associations the models use, not causes; candidates with wide intervals or low "
        "top-k frequency are not supported as predictors.",
    ] + ([f"Fewer courses than the Riley et al. minimum ({result.sample_size.minimum}) for a model of "
          f"{result.sample_size.parameters} parameters: estimates are unstable."] if result.sample_size.below_minimum else [])
    benefit = result.benefit
    return ReportContent(f"ketamine-response: {target}", summary_items, result.table(), result.notes, warnings,
                         result.shap.importance, result.shap.domains, figures, limitations, questions(result),
                         benefit.roles if benefit is not None and benefit.summaries else None,
                         benefit_tables(benefit) if benefit is not None else {})


def questions(result: TrainingResult) -> list[tuple[str, str]]:
    """The two clinical questions and this run's answers, each with its CI and the courses it is judged on."""
    sel = result.evaluations["selected"]
    kind = result.target.rsplit("_", 1)[0]
    if kind == "pct_change":
        return [("How much will MADRS change if given the drug?", "see the R2 of the percentage change below; "
                 "within-drug figures and the benefit model are for binary targets (response, remission)")]
    if "auroc_active" in sel.ci:
        low, high = sel.ci["auroc_active"]
        first = (f"AUROC {sel.metrics.get('auroc_active_fold_mean', sel.metrics['auroc_active']):.3f} "
                 f"(95% CI {low:.3f} to {high:.3f}), judged on drug-arm courses only, out of fold")
    else:
        first = "not estimated: the cohort has no drug-arm courses with this outcome, or the target is continuous"
    benefit = result.benefit
    if benefit is None or not benefit.summaries:
        second = "not estimated: " + ("; ".join(benefit.notes) if benefit is not None and benefit.notes else
                                      "no placebo course has this outcome, or benefit is disabled in the config")
    else:
        second = "; ".join(benefit_sentence(s) for s in benefit.summaries)
    return [(f"How likely is {kind} if given the drug?", first),
            ("How much more likely than on placebo (who benefits)?", second)]


def benefit_sentence(s: BenefitSummary) -> str:
    c, low, high = s.c_for_benefit
    text = (f"{s.arm} vs placebo ({s.n_drug} drug and {s.n_placebo} placebo courses): c-for-benefit {c:.3f} "
            f"(95% CI {low:.3f} to {high:.3f}; 0.5 = no better than chance at ranking benefit), final learner {s.learner}")
    x = s.crossover
    if x.patients:
        text += (f"; {x.patients} crossover patients, observed within-patient benefit {x.mean_difference:+.2f} "
                 f"(95% CI {x.ci_low:+.2f} to {x.ci_high:+.2f}; better on drug {x.better_on_drug}, same {x.same}, "
                 f"better on placebo {x.better_on_placebo})")
    return text


def benefit_tables(benefit: BenefitResult) -> dict[str, pd.DataFrame]:
    """The benefit artifacts (aggregates only), keyed by artifact path."""
    if not benefit.summaries:
        return {}
    calibration = pd.concat([s.calibration.assign(arm=s.arm) for s in benefit.summaries], ignore_index=True)
    crossover = pd.DataFrame([{"arm": s.arm, **dataclasses.asdict(s.crossover)} for s in benefit.summaries])
    return {"benefit/learners.csv": pd.concat([s.learners_table() for s in benefit.summaries], ignore_index=True),
            "benefit/calibration.csv": calibration, "benefit/crossover.csv": crossover}


def benefit_content(benefit: BenefitResult, parent: RunContent) -> RunContent:
    """The parent run's content plus the benefit metrics, tables (roles included) and figures."""
    figures = {f"benefit/calibration_{s.arm}.png": benefit_calibration_figure(s.calibration, s.arm)
               for s in benefit.summaries}
    metrics = {k: v for k, v in benefit.metrics().items() if v == v}
    return {**parent, "metrics": parent["metrics"] | metrics,
            "tables": parent["tables"] | benefit_tables(benefit) | {"benefit/biomarkers.csv": benefit.roles},
            "figures": parent["figures"] | figures}
