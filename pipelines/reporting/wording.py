"""What a run's outcome is called, by task: a response, a relapse or a harm.

One place for the words, so the report, the terminal and the run description never call a harm a response
(or its courses responders). The task registry (``features/tasks.py``) holds the definitions; these are the
nouns and the clinical question the reporting layer needs beside them.
"""

from __future__ import annotations

from ketamine_response.features.cohort.targets import Target
from ketamine_response.features.tasks import HORIZONS, Task, TaskKind
from ketamine_response.pipelines.evaluation.benefit import BenefitSummary
from ketamine_response.pipelines.evaluation.heterogeneity import Verdict
from ketamine_response.pipelines.reporting import tables

DRUG_NAMES = {"ketamine_iv": "ketamine", "esketamine_in": "esketamine", "placebo": "placebo"}
RELAPSE_QUESTION = f"If this course responds, how likely is relapse within {HORIZONS[0]} days?"


def outcome_word(task: Task) -> str:
    """The outcome as a noun phrase: "response" (also a % change of MADRS), "relapse", "the harm"."""
    return {TaskKind.SURVIVAL: "relapse", TaskKind.HARM: "the harm"}.get(task.kind, "response")


def event_words(task: Task) -> tuple[str, str]:
    """The courses with and without the event (withheld-count sentences)."""
    if task.kind is TaskKind.HARM:
        return "courses with the harm", "courses without it"
    if task.kind is TaskKind.SURVIVAL:
        return "relapses", "courses still relapse-free at last contact"
    return "responders", "non-responders"


def events_heading(task: Task) -> str:
    """The summary's heading for the outcome count (the registry's, except that harms are named harms)."""
    return "Harms" if task.kind is TaskKind.HARM else task.outcome_heading


def harm_phrase(target: Target) -> str:
    """A harm target in words: ``sbp_change_mmhg >= 40``."""
    return f"{target.column} >= {target.threshold:g}"


def first_question(task: Task, target: Target | None = None) -> str:
    """The clinical question a run of *task* answers first (*target* names a harm's column and threshold)."""
    if task.kind is TaskKind.SURVIVAL:
        return RELAPSE_QUESTION
    if task.kind is TaskKind.HARM:
        what = f"the harm {harm_phrase(target)}" if target is not None else "this harm"
        return f"How likely is {what} if given the drug?"
    if not task.probabilities:
        return (f"What will {task.estimates(target)} be if given the drug?" if target is not None
                else "What will the percentage change in MADRS be if given the drug?")
    return f"How likely is {target.kind if target is not None else 'the event'} if given the drug?"


def points(values: tuple[float, float, float]) -> str:
    """A difference of proportions in percentage points with its CI: "+36 percentage points (95% CI +30 to +42)"
    (never a bare +0.36)."""
    d, low, high = (100 * v for v in values)
    if low != low:
        return f"{d:+.0f} percentage points"
    return f"{d:+.0f} percentage points (95% CI {low:+.0f} to {high:+.0f})"


def _p(value: float) -> str:
    """'p = 0.125', or 'p < 0.001' below what three decimals show."""
    shown = tables.fmt(value)
    return f"p {shown[0]} {shown[1:]}" if shown.startswith("<") else f"p = {shown}"


def _ci3(values: tuple[float, float, float], digits: int = 3) -> str:
    if values[1] != values[1]:  # a bootstrap interval that missed its point (skewed) or was undefined: withheld
        return f"{values[0]:.{digits}f} (interval withheld: bootstrap skewed or undefined)"
    return f"{values[0]:.{digits}f} (95% CI {values[1]:.{digits}f} to {values[2]:.{digits}f})"


def _verdict_words(s: BenefitSummary) -> str:
    """What the run says about heterogeneity of a benefit model whose benefit varies."""
    if s.verdict is Verdict.SHOWN:
        return "heterogeneity shown: the predicted benefit tracks the doubly robust benefit (see the BLP test)"
    if s.verdict is Verdict.OTHER and s.heterogeneity is not None:
        p, name = s.heterogeneity.best_learner_p
        return (f"heterogeneity not shown for this model's ranking (see the BLP test), though {name}'s out-of-fold "
                f"benefit tracks the doubly robust benefit (one-sided BLP {_p(p)}, below alpha after Bonferroni over "
                f"the {s.heterogeneity.learners_tested} learners tested); see the learners table")
    return ("heterogeneity not shown: neither this model's BLP test nor any learner's own shows that the predicted "
            "differences in benefit are real, so read the ranking as unproven")


def _constant_sentence(s: BenefitSummary) -> str:
    """A benefit model that predicts one benefit for everyone: "no heterogeneity" only where the learners' tests agree."""
    gap = f"mean observed minus predicted benefit {points(s.calibration_summary['gap'])}"
    p, name = s.heterogeneity.best_learner_p if s.heterogeneity is not None else (float("nan"), "")
    if s.verdict is Verdict.MISSED:
        return (f"the benefit model ({s.learner}) predicts the same benefit for everyone, yet {name}'s out-of-fold "
                f"benefit tracks the doubly robust benefit (one-sided BLP {_p(p)}, below alpha after Bonferroni over "
                f"the learners): heterogeneity is likely and this model does not rank it; see the learners table; {gap}")
    if s.verdict is Verdict.NOT_SHOWN:
        return (f"the benefit model ({s.learner}) predicts the same benefit for everyone; no test shows heterogeneity "
                f"(smallest one-sided learner BLP {_p(p)}, not below alpha once adjusted for the learners tried), nor "
                f"does that support 'none'; {gap}")
    tested = (f"and no learner's out-of-fold benefit tracks the doubly robust benefit (smallest one-sided BLP {_p(p)}, "
              "unadjusted)") if p == p else "and no learner's benefit varies"
    return (f"no heterogeneity predicted (the benefit model, {s.learner}, predicts the same benefit for everyone, "
            f"{tested}; this is no proof that benefit is the same for all, and it gets no c-for-benefit); {gap}")


def benefit_sentence(s: BenefitSummary) -> str:
    """One comparison's benefit figures, each with its CI and what it answers; withheld figures give their counts."""
    text = (f"{s.arm} vs placebo ({s.n_drug} drug courses, {s.responders_drug} responders; {s.n_placebo} placebo "
            f"courses, {s.responders_placebo} responders)")
    if not s.shown:
        text += (f": benefit figures withheld, fewer than {s.min_events} responders or non-responders in an arm")
    elif not s.varies:
        text += ": " + _constant_sentence(s)
    else:
        text += (f": c-for-benefit of the out-of-fold procedure {_ci3(s.c_for_benefit)} (0.5 = no better than chance "
                 f"at ranking benefit; learner chosen within each fold), final model {s.learner} (x: the share of the "
                 f"learner's spread of benefit it keeps, the BLP slope shrunk by its uncertainty, 0.10 to 1, 0.10 where "
                 f"the data support no more; its mean is the doubly robust average benefit); {_verdict_words(s)}")
        slope = s.calibration_summary["slope"]
        if reading := benefit_calibration_words(s):  # it gives the slope with its reading
            text += "; " + reading.rstrip(".") + " (1 = predicted differences in benefit are the observed ones)"
        elif slope[0] == slope[0]:  # none where fewer than 3 groups have enough events in both arms
            text += (f"; calibration slope for benefit across fifths {_ci3(slope, 2)} (1 = predicted differences in "
                     "benefit are the observed ones)")
        h = s.heterogeneity
        if h is not None and h.blp_p == h.blp_p:
            text += (f"; BLP slope {h.blp_slope:.2f}, {_p(h.blp_p)} (tests whether predicted benefit tracks doubly "
                     f"robust benefit, absolute scale; slope 1 = predicted differences as observed, above 1 = too "
                     f"narrow); QINI {_ci3((h.qini, h.qini - 1.96 * h.qini_se, h.qini + 1.96 * h.qini_se))}")
        if s.flagged:
            text += f"; WARNING: mean predicted benefit is off the observed by {points(s.calibration_summary['gap'])}"
    return text + withheld_sentence(s) + crossover_sentence(s)


def withheld_sentence(s: BenefitSummary) -> str:
    """How many benefit groups and baseline-risk quarters show counts only, and why."""
    if not s.shown:
        return ""
    groups = int(s.calibration["observed_benefit"].isna().sum())
    quarters = int((~s.path["shown"].astype(bool)).sum()) if s.path is not None else 0
    if not groups and not quarters:
        return ""
    return (f"; withheld (fewer than {s.min_events} responders or non-responders in an arm, counts in "
            f"benefit/calibration.csv and benefit/path.csv): {groups} of {len(s.calibration)} benefit groups, "
            f"{quarters} of {0 if s.path is None else len(s.path)} baseline-risk quarters")


def crossover_sentence(s: BenefitSummary) -> str:
    """The crossover patients' own difference with its exact test, next to the discordant counts."""
    x = s.crossover
    if not x.patients:
        return ""
    text = (f"; {x.patients} crossover patients: better on drug {x.better_on_drug}, same {x.same}, better on placebo "
            f"{x.better_on_placebo}; paired difference {points((x.mean_difference, x.ci_low, x.ci_high))} (Newcombe), exact McNemar {_p(x.p_exact)}")
    if x.period_adjusted_p == x.period_adjusted_p:
        text += f", period-adjusted (Mainland-Gart) {_p(x.period_adjusted_p)}"
    return text


def benefit_calibration_words(s: BenefitSummary) -> str:
    """One sentence on what the benefit calibration table shows ("" with fewer than three groups shown or no slope).

    The reading rests on the benefit calibration slope's CI and the heterogeneity verdict, never on the shape of a
    few group means (five noisy points "rising" is no evidence, and such a reading contradicted the verdict)."""
    shown = s.calibration.dropna(subset=["observed_benefit"])
    slope = s.calibration_summary["slope"]
    if len(shown) < 3 or slope[0] != slope[0]:
        return ""
    steps = ", ".join(f"{v:+.0f}" for v in 100 * shown["observed_benefit"].to_numpy(float))
    groups = f"{len(s.calibration)}" if len(shown) == len(s.calibration) else f"{len(shown)} of {len(s.calibration)}"
    return (f"Observed benefit of {DRUG_NAMES.get(s.arm, s.arm)} over placebo across {groups} groups of "
            f"predicted benefit shown, lowest first: {steps} percentage points; {_slope_reading(s, slope)}.")


def _slope_reading(s: BenefitSummary, slope: tuple[float, float, float]) -> str:
    """What the benefit calibration slope's CI, with the verdict, lets one say about telling who gains more."""
    ci = f"the calibration slope for benefit is {_ci3(slope, 2)}"
    if slope[1] != slope[1]:
        return f"{ci}: these groups cannot show that the model tells apart who gains more"
    if slope[1] <= 0:
        return f"{ci}, which includes 0: these groups do not show that the model tells apart who gains more"
    if s.verdict is not Verdict.SHOWN:
        return (f"{ci}, which excludes 0, but the heterogeneity test does not show it (heterogeneity not shown): "
                "suggestive at most")
    scale = "" if slope[1] <= 1 <= slope[2] else ", though the predicted differences are off in scale (CI excludes 1)"
    return f"{ci}, which excludes 0, and heterogeneity is shown: the model tells apart who gains more{scale}"
