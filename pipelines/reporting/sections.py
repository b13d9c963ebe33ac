"""The report's sections and answers that only some tasks have: durability of a time to relapse, tolerability of a
harm. Everything is computed in ``pipelines/evaluation/`` (durability, survival, tolerability); this renders it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ketamine_response.features.tasks import HORIZONS, TaskKind, parse_target
from ketamine_response.models.families import SELECTED
from ketamine_response.pipelines.evaluation.durability import durability_table, not_followed
from ketamine_response.pipelines.evaluation.survival import km_by_fifth
from ketamine_response.pipelines.evaluation.tolerability import tolerability_by_arm
from ketamine_response.pipelines.folds import pooled
from ketamine_response.pipelines.reporting import tables
from ketamine_response.pipelines.reporting.html import Section
from ketamine_response.pipelines.reporting.wording import harm_phrase
from ketamine_response.pipelines.result import TrainingResult

KM_FIGURES = ("plots/km_by_fifth.png", "plots/calibration_28d.png")


def tolerability(result: TrainingResult) -> pd.DataFrame:
    """Harms observed per arm (counts only below the policy's minimum)."""
    return tolerability_by_arm(result.data.y, result.data.treatments, result.config.policy.min_events_per_arm)


def excluded_text(result: TrainingResult) -> str:
    """How many courses were left out as not followed after a response, by arm."""
    left = not_followed(result.features.frame["treatment"], result.data.X.index)
    if not left.sum():
        return "no course was left out for want of follow-up"
    arms = ", ".join(f"{arm} {n}" for arm, n in left.items())
    return (f"{int(left.sum())} courses were left out as not followed after a response (no response, or no "
            f"follow-up after it: {arms})")


def followed_text(y: np.ndarray, metrics: dict[str, float] | None = None) -> str:
    """Courses followed after a response and their relapses; with *metrics* holding the drug arms' counts, those
    first (what the within-drug C is judged on)."""
    every = f"{len(y)} courses followed after a response, {int(y['event'].sum())} relapses ({y['event'].mean():.0%})"
    if metrics is None or "courses_active" not in metrics:
        return every
    return (f"{int(metrics['courses_active'])} drug-arm courses followed after a response, "
            f"{int(metrics['relapses_active'])} relapses (all arms: {every})")


def durability_section(result: TrainingResult) -> Section:
    """Discrimination and calibration of relapse over time: metrics with CIs and counts, KM curves by fifth of
    predicted risk, and calibration at the first horizon."""
    ev, y = result.evaluations[SELECTED], result.data.y
    shown = durability_table(ev, y).assign(metric=lambda f: f["metric"].map(tables.label))
    text = (f"{followed_text(y)}; {excluded_text(result)}. Each course's prediction is its probability of relapse "
            f"within {HORIZONS[0]} days of the response, out of fold (selected procedure). Kaplan-Meier curves split "
            "the courses into fifths of that prediction: curves that separate, highest risk lowest, mean the model "
            f"ranks relapse. Calibration compares, in each fifth, the mean predicted relapse by day {HORIZONS[0]} with "
            "the Kaplan-Meier observed one. Harrell's C has the corrected resampled t interval over outer folds "
            "(refit and selection included); the others a patient bootstrap of the out-of-fold predictions "
            "(– where none was run). A time-dependent AUROC is judged on the courses that relapsed by its day "
            "against those still relapse-free after it; those censored earlier do not enter.")
    return Section("Durability: time to relapse after a response (out of fold)", text,
                   [("Discrimination and calibration of relapse", tables.compact(shown)),
                    (f"Calibration at {HORIZONS[0]} days by fifth of predicted risk", tables.compact(ev.curve))],
                   KM_FIGURES)


def tolerability_section(result: TrainingResult) -> Section:
    """How often the harm happened on each arm: observed counts and rates, not predictions."""
    target, n = parse_target(result.target), result.config.policy.min_events_per_arm
    text = (f"Courses with the harm ({harm_phrase(target)}) observed on each arm, with the harm rate and its Wilson "
            f"95% CI; an arm with fewer than {n} harms shows counts only (– for its rate). Observed, not predicted: "
            "the arms are as randomised or as treated in these data, so a difference between arms is not adjusted "
            "for anything.")
    frame = tolerability(result).drop(columns="shown")
    return Section(f"Tolerability: {harm_phrase(target)} by arm", text, [("Harms by arm", tables.compact(frame))])


def task_sections(result: TrainingResult) -> list[Section]:
    """The sections a run's task adds to the report."""
    kind = result.data.task.kind
    return ([durability_section(result)] if kind is TaskKind.SURVIVAL else
            [tolerability_section(result)] if kind is TaskKind.HARM else [])


def task_tables(result: TrainingResult) -> dict[str, pd.DataFrame]:
    """The parent run's task-specific artifacts (aggregates only), keyed by artifact path."""
    kind, y = result.data.task.kind, result.data.y
    if kind is TaskKind.SURVIVAL:
        p = pooled(result.data, result.folds)
        return {"durability/metrics.csv": durability_table(result.evaluations[SELECTED], y),
                "durability/km_by_fifth.csv": km_by_fifth(y, p),
                "durability/not_followed.csv": not_followed(result.features.frame["treatment"], result.data.X.index)
                .rename_axis("arm").reset_index()}
    if kind is TaskKind.HARM:
        return {"tolerability.csv": tolerability(result)}
    return {}


def relapse_answer(result: TrainingResult, headline: str, test: str) -> str:
    """The answer to the durability question: the C-index with its CI, and the courses it is judged on."""
    judged = followed_text(result.data.y, result.evaluations[SELECTED].metrics)
    return (f"{headline}, judged on {judged}, out of fold; {test}. 0.5 = no better than chance at ranking who "
            "relapses first; durability section below")


def tolerability_answer(result: TrainingResult) -> str:
    """How often the harm happened on each arm, in one line (counts where the rate is withheld)."""
    parts = []
    for r in tolerability(result).itertuples():
        count = f"{r.arm} {r.harms} of {r.courses} courses"
        parts.append(f"{count} ({r.rate:.1%}, 95% CI {r.rate_ci_low:.1%} to {r.rate_ci_high:.1%})" if r.shown
                     else f"{count} (rate withheld: fewer than {result.config.policy.min_events_per_arm} harms)")
    return "; ".join(parts) + " (observed, not predicted; tolerability table below)"
