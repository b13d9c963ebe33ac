"""The report's sections and answers that only some tasks have: durability of a time to relapse, tolerability of a
harm. Everything is computed in ``pipelines/evaluation/`` (durability, survival, tolerability); this renders it."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ACTIVE_ARMS, ARM_COLUMNS
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


SOFTWARE = ("python", "ketamine-response", "scikit-learn", "lightgbm", "shap", "mlflow", "pandas", "numpy", "econml")


def software_versions() -> pd.DataFrame:
    """The versions of the software that produced the run (TRIPOD+AI item 18: reproducibility)."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    def installed(name: str) -> str:
        if name == "python":
            return platform.python_version()
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return pd.DataFrame({"software": SOFTWARE, "version": [installed(n) for n in SOFTWARE]})


def _final_step(estimator: object) -> object:
    """The fitted model inside the calibration and pipeline wrappers (scikit-learn's own attributes)."""
    while True:
        if hasattr(estimator, "calibrated_classifiers_"):
            estimator = estimator.calibrated_classifiers_[0].estimator
        elif hasattr(estimator, "steps"):
            estimator = estimator.steps[-1][1]
        else:
            return estimator


def final_heading(result: TrainingResult) -> str:
    """What the final-model table really shows. The logged model is a calibrated ensemble whose members are each
    fit on (k-1)/k of the courses; the table shows the first member before calibration (no single model was refit
    on all courses), so the heading says so rather than "refit on all courses"."""
    estimator = getattr(getattr(result, "model", None), "estimator", None)
    calibrated = getattr(estimator, "calibrated_classifiers_", None)
    if estimator is None:
        return f"Final model ({result.selected})"
    if not calibrated:  # an uncalibrated estimator (a continuous target) is the one model fit on every course
        return f"Final model ({result.selected}, fit on all courses)"
    k = len(calibrated)
    return (f"Final model ({result.selected}): the first of the logged ensemble's {k} members, fit on {k - 1}/{k} "
            "of the courses, before calibration")


def final_model(result: TrainingResult) -> pd.DataFrame:
    """The final model's first in-fold member (see :func:`final_heading`): its coefficients (log-odds per unit of the transformed feature) for a
    linear family, else the features it uses; the treatment indicator is named as such, not as a predictor."""
    model = getattr(result, "model", None)
    step = _final_step(getattr(model, "estimator", None))
    names = [str(n) for n in getattr(step, "feature_names_in_", getattr(step, "feature_name_", []))]
    role = [_role(n) for n in names]
    coef = getattr(step, "coef_", None)
    if coef is not None and len(names) == np.ravel(coef).size:
        intercept = float(np.ravel(getattr(step, "intercept_", [np.nan]))[0])
        frame = pd.DataFrame({"term": ["(intercept)", *names], "coefficient": [intercept, *np.ravel(coef).astype(float)],
                              "role": ["", *role]})
        return frame[frame["coefficient"] != 0].reset_index(drop=True)  # elastic net: the zeros are in the CSV of SHAP
    if names:
        return pd.DataFrame({"feature": names, "role": role})
    columns = list(getattr(model, "columns", ()) or result.data.X.columns)
    return pd.DataFrame({"feature": columns, "role": [_role(c) for c in columns]})


def _role(name: str) -> str:
    return "treatment (the arm, not a patient feature)" if name in ARM_COLUMNS else "feature"


def participant_flow(result: TrainingResult) -> pd.DataFrame:
    """Courses by arm from the cohort to the analysis: valid courses read, left out without the outcome (or not
    followed after a response), analysed (invalid rows, when dropping them was asked for, are counted in the notes)."""
    frame = result.features.frame
    analysed = pd.Series(result.data.treatments.astype(str)).value_counts()
    read = frame["treatment"].astype(str).value_counts() if "treatment" in frame else analysed
    arms = [a for a in (*ACTIVE_ARMS, "placebo") if a in read.index or a in analysed.index]
    rows = {"valid courses read": read, "excluded: no outcome (or not followed)": read.sub(analysed, fill_value=0).clip(lower=0),
            "analysed": analysed}
    table = pd.DataFrame({step: [int(counts.get(a, 0)) for a in arms] + [int(counts.sum())]
                          for step, counts in rows.items()}, index=[*arms, "all arms"])
    return table.rename_axis("arm").reset_index()


def completeness(result: TrainingResult) -> list[tuple[str, pd.DataFrame]]:
    """The report's reproducibility tables: participant flow by arm, the final model, software versions."""
    return [("Participant flow by arm", participant_flow(result)),
            (final_heading(result), final_model(result)),
            ("Software versions", software_versions())]
