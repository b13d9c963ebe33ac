"""What the terminal shows: training progress, the short result table of a run, the runs list."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pandas as pd

from ketamine_response.pipelines.reporting.tables import label
from ketamine_response.pipelines.training.progress import Progress

if TYPE_CHECKING:
    from ketamine_response.features.tasks import Task
    from ketamine_response.pipelines.evaluation.benefit import BenefitResult


class TerminalProgress(Progress):
    """Stage lines on stderr, and a tqdm bar with ETA over each counted stage's fits when stdout is a
    terminal (quiet in pipes, logs and CI)."""

    def __init__(self, bar: bool | None = None) -> None:
        self.bar_wanted = sys.stdout.isatty() and sys.stderr.isatty() if bar is None else bar
        self.bar: Any = None

    def stage(self, message: str, total: int = 0) -> None:
        self.close()
        print(f"... {message}", file=sys.stderr, flush=True)
        if self.bar_wanted and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="fit", file=sys.stderr, leave=False, dynamic_ncols=True)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


RUN_COLUMNS = {"run_id": "run", "start": "started", "target": "target", "cv": "cv", "selected": "selected",
               "auroc_active": "AUROC active", "auroc_active_p": "p", "auroc": "AUROC", "n_courses": "courses"}


def render_runs(runs: pd.DataFrame, wide: bool = False) -> str:
    """The runs list: within 100 columns (short run id, rounded metrics, counts as integers), or every
    column with *wide*."""
    out = runs.copy()
    for column in ("n_courses", "n_events", "auroc_active_permutations"):
        if column in out:
            out[column] = out[column].astype("Int64")
    if "start" in out:
        out["start"] = pd.to_datetime(out["start"]).dt.strftime("%Y-%m-%d %H:%M")
    if not wide:
        out["run_id"] = out["run_id"].str.slice(0, 8)
        if "auroc_ci_low" in out:
            out["auroc"] = [f"{a:.3f} ({lo:.2f}-{hi:.2f})" if a == a else "-"
                            for a, lo, hi in zip(out["auroc"], out["auroc_ci_low"], out["auroc_ci_high"], strict=True)]
        out = out[[c for c in RUN_COLUMNS if c in out]].rename(columns=RUN_COLUMNS)
    return out.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}")


def render_table(table: pd.DataFrame, task: Task, statistic: str = "auroc_active", target: str = "") -> str:
    """The short result table printed after training, under the clinical question it answers.

    For a probability (binary target) the within-active-arm AUROC leads (response *if given the drug*),
    then the gain over a model that knows only the arm, then the AUROC pooling all arms. For each, the
    interval is the corrected one over outer folds. *statistic* is what the p tests (the column it sits
    beside). Any other task shows its headline and its table metrics. *target* (its name) words the question
    of a harm by its column and threshold; without it a response or remission table prints no question line
    (it names none that its columns do not).
    """
    question = _question(task, target)
    if not task.probabilities or statistic != "auroc_active":
        return question + _render_task(table, task, statistic)
    w = _model_width(table)
    lines = [f"{'model':{w}s} {'AUROC active arm(s) (95% CI)':>29s} {'p':>5s} {'p adj':>5s} {'B':>3s} "
             f"{'gain over arm (95% CI)':>27s} {'AUROC all arms (95% CI)':>27s} {'Brier':>6s} {'slope':>6s}"]
    for r in table.to_dict("records"):
        lines.append(f"{r['model']:{w}s} {_ci(r, 'auroc_active'):>29s} {_tests(r, statistic)} "
                     f"{_ci(r, 'auroc_gain_over_arm'):>27s} {_ci(r, 'auroc'):>27s} {r['brier']:6.3f} "
                     f"{r['calibration_slope']:6.2f}")
    return question + "\n".join([*lines, _footer(table, statistic)])


def _question(task: Task, target: str) -> str:
    """``question: ...`` and a line break, or "" for a response or remission table given no target."""
    from ketamine_response.features.tasks import TaskKind, parse_target
    from ketamine_response.pipelines.reporting.wording import first_question

    if not target and task.kind is TaskKind.BINARY:
        return ""
    return f"question: {first_question(task, parse_target(target) if target else None)}\n"


def _tests(row: dict, statistic: str) -> str:
    """p, max-T adjusted p (families only) and permutations run, of the statistic the row leads with."""
    adjusted = row.get(f"{statistic}_p_adjusted", float("nan"))
    return (f"{row[f'{statistic}_p']:5.3f} " + (f"{adjusted:5.3f}" if adjusted == adjusted else f"{'-':>5s}")
            + f" {int(row[f'{statistic}_permutations']):3d}")


def _model_width(table: pd.DataFrame) -> int:
    """The model column's width: 28, or the longest name (``selected (lightgbm_regression)``) so columns align."""
    return max([28, *(len(str(m)) for m in table["model"])])


def _ci(row: dict, name: str) -> str:
    """The mean over outer folds with its interval (the pooled value is in the logged metrics)."""
    value = row.get(name + "_fold_mean", row[name])
    return f"{value:.3f} ({row[name + '_ci_low']:.3f} to {row[name + '_ci_high']:.3f})"


def _render_task(table: pd.DataFrame, task: Task, statistic: str) -> str:
    """The tested statistic with its interval and p (a time to relapse: Harrell's C within the drug arm(s)), the
    headline with its interval where it is another, then the task's table metrics (continuous targets, relapse)."""
    names = [label(m).replace("calibration slope", "slope") for m in task.table_metrics]  # as the binary table says
    w = _model_width(table)
    lead = statistic if f"{statistic}_ci_low" in table else task.headline
    rest = [task.headline] if lead != task.headline else []
    header = f"{'model':{w}s} {label(lead) + ' (95% CI)':>27s} {'p':>5s} {'p adj':>5s} {'B':>3s} "
    lines = [header + "".join(f"{label(h) + ' (95% CI)':>27s} " for h in rest)
             + " ".join(f"{n:>{max(len(n), 7)}s}" for n in names)]
    for r in table.to_dict("records"):
        cells = " ".join(f"{r[m]:>{max(len(n), 7)}.2f}" for m, n in zip(task.table_metrics, names))
        lines.append(f"{r['model']:{w}s} {_ci(r, lead):>27s} {_tests(r, statistic)} "
                     + "".join(f"{_ci(r, h):>27s} " for h in rest) + cells)
    return "\n".join([*lines, _footer(table, statistic)])


def _footer(table: pd.DataFrame, statistic: str) -> str:
    planned = int(table[f"{statistic}_permutations"].max()) if len(table) else 0
    return (f"Estimates: mean over outer folds, 95% CI by the corrected resampled t (means over CV repeats are logged). "
            f"p tests {statistic} (per repeat, then averaged): the whole procedure re-run on labels exchanged between "
            f"whole patients within site and arm, B permutations (0: constant where judged, p = 1); p adj: each "
            f"family's p adjusted for testing every family (max-T); smallest possible p = 1/(B+1)"
            + (f" = {1 / (planned + 1):.3f}" if planned else ""))


def render_benefit(benefit: BenefitResult, exploratory: str = "") -> str:
    """Benefit over placebo per drug, then the features' roles on each scale, the scale named.

    *exploratory*: why the roles table is underpowered (empty when it is not).
    """
    from ketamine_response.pipelines.reporting.content import benefit_sentence
    from ketamine_response.pipelines.reporting.html import SCALE_WORDS

    lines = [f"benefit over placebo: {benefit_sentence(s)}" for s in benefit.summaries]
    roles = benefit.roles
    lines.append("biomarker roles" + (f" (EXPLORATORY: {exploratory})" if exploratory else "") + ", table in benefit/biomarkers.csv:")
    if (roles["role_absolute"] == "withheld").all():
        return "\n".join([*lines, "  withheld: too few responders or non-responders in an arm (counts above)"])
    for scale, column, kinds in (("absolute", "role_absolute", ("predictive",)),
                                 ("log_odds", "role_log_odds", ("predictive", "both", "prognostic"))):
        lines.append(f"  {SCALE_WORDS[scale]}")
        for role in kinds:
            names = roles.loc[roles[column] == role, "feature"].tolist()
            lines.append(f"    {role:10s} ({len(names)}): {', '.join(names) or '-'}")
    return "\n".join(lines)
