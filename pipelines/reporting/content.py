"""What a training run logs, rendered: each run's metrics, tables and figures, and the HTML report.

Aggregates only: nothing here is per course.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.tasks import TaskKind, parse_target
from ketamine_response.models.families import SELECTED
from ketamine_response.pipelines.evaluation.benefit import BenefitResult
from ketamine_response.pipelines.evaluation.evaluate import Evaluation
from ketamine_response.pipelines.evaluation.repeats import active
from ketamine_response.pipelines.folds import pooled
from ketamine_response.pipelines.reporting import sections, summary, tables
from ketamine_response.pipelines.reporting.html import ReportContent, png_bytes, render_report
from ketamine_response.pipelines.reporting.plots import (
    benefit_calibration_figure,
    path_figure,
    performance_figures,
    treatment_selection_figure,
)
from ketamine_response.pipelines.reporting.shap_plots import shap_figures
from ketamine_response.pipelines.reporting.wording import (  # benefit_sentence: the terminal imports it from here
    benefit_calibration_words,
    benefit_sentence,
    event_words,
    events_heading,
    first_question,
    outcome_word,
)
from ketamine_response.pipelines.result import TrainingResult

RunContent = dict[str, Any]  # metrics, tables, figures, texts: the arguments of tracking's run logging


def run_content(result: TrainingResult, name: str) -> RunContent:
    """Metrics, tables and figures of one family's run, or of the selected procedure (*name* "selected")."""
    ev = result.evaluations[name]
    p = pooled(result.data, result.folds, None if name == SELECTED else name)
    label = name if name != SELECTED else f"selected ({result.selected})"  # the legends add the metric's own value
    metrics = ev.tracked_metrics(result.permutation.metrics(name))
    curve = "calibration_28d.csv" if ev.task.kind is TaskKind.SURVIVAL else "decision_curve.csv"  # what ev.curve holds
    extra = {}
    if name == SELECTED:
        metrics |= result.sample_size.metrics()
        extra = sections.task_tables(result)
    return {"metrics": {k: v for k, v in metrics.items() if v == v},  # MLflow keeps NaN poorly: omit
            "tables": {curve: ev.curve, "subgroups.csv": ev.subgroups} | extra,
            "figures": performance_figures(result.data.y, p, ev, label, active(result.data)), "texts": {}}


def shap_content(result: TrainingResult, parent: RunContent, digest: str, source: str,
                 identity: dict[str, str] | None = None) -> RunContent:
    """The parent run's content plus SHAP tables and figures and the HTML report page.

    *identity*: what identifies the run at the top of the report (run id, date, model version, whether
    the data are synthetic), rendered in the given order.
    """
    shap = result.shap
    # each figure drawn once: the same PNG is embedded in the page and logged as the run's artifact
    figures = rendered(parent["figures"] | shap_figures(shap, result.data))
    shap_tables = {"shap/global_importance.csv": shap.importance, "shap/by_domain.csv": shap.domains,
                   "shap/by_source_column.csv": shap.sources}
    page = render_report(report_content(result, source, digest, figures, identity))
    return {"metrics": parent["metrics"] | {"shap_max_additivity_error": shap.max_additivity_error},
            "tables": parent["tables"] | shap_tables, "figures": figures,
            "texts": parent["texts"] | {"report/index.html": page}}


def rendered(figures: dict[str, Any]) -> dict[str, bytes]:
    """*figures* as the report's PNG bytes (:func:`~ketamine_response.pipelines.reporting.html.png_bytes`), each
    drawn once: what a run logs is then the picture its report shows, at the report's size."""
    return {name: png_bytes(fig) for name, fig in figures.items()}


def headline_sentence(ev: Evaluation) -> str:
    """The headline figures with their CIs and the question each answers, within the drug arm(s) first."""
    def figure(name: str, label: str) -> str:
        low, high = ev.ci[name]
        return f"{label} {ev.metrics[name]:.3f} (95% CI {low:.3f} to {high:.3f})"

    parts = [figure(n, label) for n, label in (
        ("auroc_active", f"AUROC within the active arm(s), i.e. {outcome_word(ev.task)} if given the drug,"),
        ("c_index_active", "Harrell's C within the drug arm(s), i.e. relapse after responding to the drug,"),
        ("auroc_gain_over_arm", "gain over a model that knows only the arm"),
        (ev.headline, ev.task.headline_wording))
        if n in ev.ci]
    return "; ".join(parts) + " (means over CV repeats, corrected t intervals)"


TESTED_WORDS = {"auroc_active": "the AUROC within the active arm(s)",
                "c_index_active": "Harrell's C within the drug arm(s)"}


def test_sentence(result: TrainingResult, name: str) -> str:
    """The permutation p of one run with the statistic it tests, and for a family its multiplicity-adjusted p."""
    perm, task = result.permutation, result.data.task
    words = TESTED_WORDS.get(perm.statistic, task.headline_wording if perm.statistic == task.headline else perm.statistic)
    text = f"permutation p = {tables.fmt(perm.p[name])} for {words} ({perm.b[name]} re-runs on permuted labels"
    if name in perm.adjusted:
        text += f"; {tables.fmt(perm.adjusted[name])} adjusted for testing {len(perm.adjusted)} families (max-T)"
    return text + ")"


def report_content(result: TrainingResult, source: str, digest: str, figures: dict[str, Any],
                   identity: dict[str, str] | None = None) -> ReportContent:
    """Identity, headline and warnings, TRIPOD+AI-style summary, table 1, metrics, subgroups, SHAP and
    limitations of a run (aggregates only)."""
    sel = result.evaluations[SELECTED]
    benefit = result.benefit
    importance = tables.shap_display(result.shap.importance, summary.directions(result))
    return ReportContent(
        f"ketamine-response: {result.target}", summary_items(result, source, digest), tables.by_model(result.table()),
        result.notes, result.warnings, importance, result.shap.domains, figures,
        limitations(result), questions(result),
        tables.compact(benefit.roles.drop(columns=["source_columns", "n_courses", "benefit_rank"], errors="ignore"))  # in the CSV
        if benefit is not None and benefit.summaries else None,
        {k: tables.compact(v) for k, v in benefit_tables(benefit).items()} if benefit is not None else {},
        identity=dict(identity) if identity is not None else summary.default_identity(result, source),
        headline=headline(result), participants=participants(result),
        subgroups=tables.compact(sel.subgroups.rename(columns={"events": events_heading(sel.task).lower()})),
        small_subgroup=(result.config.policy.min_courses_per_group, result.config.policy.min_events_per_arm),
        roles_note=roles_exploratory(result), sections=sections.task_sections(result), outcome=outcome_word(sel.task),
        small_events="relapses" if sel.task.kind is TaskKind.SURVIVAL else "in either outcome class",
        frequencies=summary.natural_frequencies(result), completeness=sections.completeness(result))


def who_benefits(result: TrainingResult) -> list[tuple[str, str]]:
    """What the benefit calibration table shows, in one sentence, as a headline item (none without the figures)."""
    benefit = result.benefit
    if benefit is None or not benefit.summaries or not (benefit.primary.shown and benefit.primary.varies):
        return []
    reading = benefit_calibration_words(benefit.primary)
    return [("Who benefits", reading)] if reading else []


def headline(result: TrainingResult) -> list[tuple[str, str]]:
    """How well it predicts (with its CI) and which features matter, in reading order."""
    sel = result.evaluations[SELECTED]
    prediction = f"{headline_sentence(sel)}; {test_sentence(result, SELECTED)}."
    return [("How well it predicts", prediction), ("Which features matter", summary.feature_sentence(result)),
            *who_benefits(result), ("At the operating threshold", summary.operating_point(result)),
            ("Calibration", summary.calibration_text(sel))]


def participants(result: TrainingResult) -> pd.DataFrame:
    """Table 1 of the analysed courses (the feature frame carries age, sex and baseline MADRS)."""
    frame, task, y = result.features.frame.loc[result.data.X.index], result.data.task, result.data.y
    if task.kind is TaskKind.SURVIVAL:  # the relapses among the courses followed; their times are in the durability section
        return tables.participants_table(frame, result.data.treatments, result.data.patients, y["event"].astype(float),
                                         False, "Relapses (of the courses followed), n (%)")
    return tables.participants_table(frame, result.data.treatments, result.data.patients, y, not task.probabilities,
                                     f"{events_heading(task)} (outcome = 1), n (%)")


def summary_items(result: TrainingResult, source: str, digest: str) -> dict[str, str]:
    """The TRIPOD+AI items, one sentence each."""
    c, sel, y = result.config, result.evaluations[SELECTED], result.data.y
    outcome = sel.task.describe(parse_target(result.target), c.evaluation.remission_threshold)
    domains = pd.Series(result.data.domains).reindex(result.data.X.columns).value_counts()
    events = (sections.followed_text(y) if sel.task.kind is TaskKind.SURVIVAL else f"{int(y.sum())} ({y.mean():.1%})"
              if sel.task.probabilities else f"mean {y.mean():.1f}% (SD {y.std():.1f})")
    courses = f"{len(y)} courses " + ("followed after a response" if sel.task.kind is TaskKind.SURVIVAL else "with the outcome")
    return {
        "Intended use and population": summary.intended_use(result),
        "Data source": summary.digest_text(source, digest),
        "Participants": f"{len(np.unique(result.data.patients))} patients, {courses}, "
                        f"{len(np.unique(result.data.sites))} sites (characteristics by arm in table 1)",
        "Outcome": outcome,
        events_heading(sel.task): events,
        "Predictors": f"{result.data.X.shape[1]} candidates: " + ", ".join(f"{d} {n}" for d, n in domains.items()),
        "Missing data": "median imputation with missingness indicators inside each fold (linear models); "
                        "native missing-value handling (LightGBM)",
        "Validation": summary.validation_line(result),
        "Selected model": result.selected + (f", {c.calibration.method} calibration in-fold" if sel.task.probabilities
                                             else ""),
        "Performance": f"{headline_sentence(sel)}; {test_sentence(result, SELECTED)}",
        "Operating threshold": summary.operating_point(result),
        "Calibration": summary.calibration_text(sel),
    }


def limitations(result: TrainingResult) -> list[str]:
    """What the reader must not conclude from this run."""
    size = result.sample_size
    return [
        "Internal validation only: performance on another population, protocol or era may be lower.",
        "SHAP values describe associations the models use, not causes; candidates with wide intervals or low "
        "top-k frequency are not supported as predictors.",
    ] + ([f"Fewer courses than the Riley et al. minimum ({size.minimum}) for a model of "
          f"{size.parameters} parameters: estimates are unstable."] if size.below_minimum else [])


def questions(result: TrainingResult) -> list[tuple[str, str]]:
    """The two clinical questions and this run's answers, each with its CI and the courses it is judged on."""
    sel, target = result.evaluations[SELECTED], parse_target(result.target)
    question = first_question(sel.task, target)
    if sel.task.kind is TaskKind.SURVIVAL:
        return [(question, sections.relapse_answer(result, headline_sentence(sel), test_sentence(result, SELECTED)))]
    if not sel.task.probabilities:
        return [(question, f"see the {sel.task.headline_wording} below; within-drug figures and the benefit model are for "
                           "binary targets (response, remission)")]
    if "auroc_active" in sel.ci:
        low, high = sel.ci["auroc_active"]
        chance = summary.drug_probability(result)
        first = (f"{chance[:1].upper() + chance[1:]}; " if chance else "") + (
            f"how well it ranks drug-arm courses: AUROC {sel.metrics['auroc_active']:.3f} "
            f"(95% CI {low:.3f} to {high:.3f}), judged on drug-arm courses only, out of fold")
    elif "responders_active" in sel.metrics:
        first = withheld_active(sel.metrics, result.config.policy.min_events_per_arm, event_words(sel.task))
    else:
        first = "not estimated: the cohort has no drug-arm courses with this outcome, or the target is continuous"
    if not sel.task.benefit:  # a harm: how often it happens on each arm, not who benefits
        return [(question, first), ("How often does it happen on each arm?", sections.tolerability_answer(result))]
    benefit = result.benefit
    if benefit is None or not benefit.summaries:
        second = "not estimated: " + ("; ".join(benefit.notes) if benefit is not None and benefit.notes else
                                      "no placebo course has this outcome, or benefit is disabled in the config")
    else:
        second = "; ".join(benefit_sentence(s) for s in benefit.summaries)
    return [(question, first),
            ("How much more likely than on placebo (who benefits)?", second)]


def withheld_active(m: dict[str, float], min_events: int, words: tuple[str, str] = ("responders", "non-responders")) -> str:
    """Why the within-drug AUROC is not shown: the drug arm's counts (*m*, the metrics) against the policy's minimum;
    *words* name the courses with and without the event (``wording.event_words``)."""
    return (f"withheld: {int(m['responders_active'])} {words[0]} and {int(m['non_responders_active'])} {words[1]} "
            f"on the drug (at least {min_events} of each are needed); the p beside the AUROC pooling all arms tests "
            "that pooled AUROC, which the arm alone can carry")


def roles_exploratory(result: TrainingResult) -> str:
    """Why the roles table is exploratory (fewer patients than the configured interaction needs), or ""."""
    size, patients = result.sample_size, len(np.unique(result.data.patients))
    if not size.roles_exploratory(patients):
        return ""
    return (f"{patients} patients; detecting a change of {size.roles_interaction:.2f} in the drug's absolute gain per SD "
            f"of a feature with 80% power at alpha 0.05 needs about {size.roles_minimum}")


def benefit_tables(benefit: BenefitResult) -> dict[str, pd.DataFrame]:
    """The benefit artifacts (aggregates only), keyed by artifact path."""
    if not benefit.summaries:
        return {}
    calibration = pd.concat([s.calibration.assign(arm=s.arm) for s in benefit.summaries], ignore_index=True)
    crossover = pd.DataFrame([{"arm": s.arm, **dataclasses.asdict(s.crossover)} for s in benefit.summaries])
    path = [s.path.assign(arm=s.arm) for s in benefit.summaries if s.path is not None]
    return {"benefit/learners.csv": pd.concat([s.learners_table() for s in benefit.summaries], ignore_index=True),
            "benefit/calibration.csv": calibration, "benefit/crossover.csv": crossover} | (
        {"benefit/path.csv": pd.concat(path, ignore_index=True)} if path else {})


def benefit_content(benefit: BenefitResult, parent: RunContent) -> RunContent:
    """The parent run's content plus the benefit metrics, tables (roles included) and figures."""
    # a figure only where some group shows a rate: axes of counts alone read as an empty plot
    figures = {f"benefit/calibration_{s.arm}.png": benefit_calibration_figure(s.calibration, s.arm)
               for s in benefit.summaries if s.calibration["observed_benefit"].notna().any()}
    figures |= {f"benefit/treatment_selection_{s.arm}.png": treatment_selection_figure(s.selection, s.arm)
                for s in benefit.summaries if not s.selection.empty}
    figures |= {f"benefit/path_{s.arm}.png": path_figure(s.path, s.arm)
                for s in benefit.summaries if s.path is not None and s.path["shown"].astype(bool).any()}
    metrics = {k: v for k, v in benefit.metrics().items() if v == v}
    selection = [s.selection.assign(arm=s.arm) for s in benefit.summaries if not s.selection.empty]  # CSV only: 41 rows
    figures_csv = {"benefit/treatment_selection.csv": pd.concat(selection, ignore_index=True)} if selection else {}
    return {**parent, "metrics": parent["metrics"] | metrics,
            "tables": parent["tables"] | benefit_tables(benefit) | figures_csv | {"benefit/biomarkers.csv": benefit.roles},
            "figures": parent["figures"] | figures}
