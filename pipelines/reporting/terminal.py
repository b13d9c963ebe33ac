"""What the terminal shows: training progress, the short result table of a run, the runs list."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pandas as pd

from ketamine_response.pipelines.reporting.comparison import WIDTH, runs_list
from ketamine_response.pipelines.reporting.tables import label
from ketamine_response.pipelines.training.progress import Progress

if TYPE_CHECKING:
    from ketamine_response.features.tasks import Task
    from ketamine_response.pipelines.evaluation.benefit import BenefitResult


class TerminalProgress(Progress):
    """Stage lines on stderr, and a tqdm bar over each counted stage's fits when stdout is a terminal (quiet
    in pipes, logs and CI).

    The time left is shown only once it means something: after *eta_after_fits* fits and *eta_after_seconds*
    seconds of the stage. Before that, tqdm's estimate rests on one or two fits (the first pays for imports
    and worker start-up) and swings by minutes.
    """

    EARLY = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, estimating time left]"
    LATE = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}]"

    def __init__(self, bar: bool | None = None, eta_after_fits: int = 3, eta_after_seconds: float = 10.0) -> None:
        self.bar_wanted = sys.stdout.isatty() and sys.stderr.isatty() if bar is None else bar
        self.bar: Any = None
        self.eta_after = (eta_after_fits, eta_after_seconds)

    def stage(self, message: str, total: int = 0) -> None:
        self.close()
        print(f"... {message}", file=sys.stderr, flush=True)
        if self.bar_wanted and total:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="fit", file=sys.stderr, leave=False, dynamic_ncols=True,
                            bar_format=self.EARLY)

    def advance(self, n: int = 1) -> None:
        if self.bar is None:
            return
        fits, seconds = self.eta_after
        if self.bar.bar_format == self.EARLY and self.bar.n + n >= fits and self.bar.format_dict["elapsed"] >= seconds:
            self.bar.bar_format = self.LATE
        self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def render_runs(runs: pd.DataFrame, wide: bool = False, now: pd.Timestamp | None = None) -> str:
    """The runs list, newest first: within 100 columns (:func:`~.comparison.runs_list`: short id, age, kind,
    status, target, the headline with its interval, gain over the arm, c-for-benefit, data origin, registered
    version and alias), or with *wide* every column and full run ids."""
    if wide:
        out = runs.copy()
        if "start" in out:
            out["start"] = pd.to_datetime(out["start"]).dt.strftime("%Y-%m-%d %H:%M")
        for count in [c for c in map(str, out.columns) if c.startswith(("n_", "responders_")) or c.endswith("_permutations")]:
            out[count] = [f"{v:.0f}" if v == v else "-" for v in pd.to_numeric(out[count], errors="coerce")]  # not 403.000
        return out.to_string(index=False, na_rep="-", float_format=lambda v: f"{v:.3f}")
    return runs_list(runs, now if now is not None else pd.Timestamp.now(tz="UTC"))


def render_table(table: pd.DataFrame, task: Task, statistic: str = "auroc_active", target: str = "",
                 wide: bool = False) -> str:
    """The short result table printed after training, under the clinical question it answers.

    For a probability (binary target) the within-active-arm AUROC leads (response *if given the drug*),
    then the gain over a model that knows only the arm, then the AUROC pooling all arms. For each, the
    interval is the corrected one over outer folds, centred on the mean over CV repeats. *statistic* is
    what the p tests (the column it sits beside). Any other task shows its headline and its table metrics. *target* (its name) words the question
    of a harm by its column and threshold; without it a response or remission table prints no question line
    (it names none that its columns do not). Within 100 columns (:func:`_narrow`), or every column with *wide*.
    """
    question = _question(task, target)
    if not wide:
        return question + _narrow(table, task, statistic)
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


def _narrow(table: pd.DataFrame, task: Task, statistic: str) -> str:
    """The result table within :data:`WIDTH` columns: compact intervals (two decimals), and the columns that
    do not fit left out, named in the footer (``--wide`` shows them)."""
    rows = table.to_dict("records")
    columns: list[tuple[str, list[str]]]
    tests = [("p", [f"{r[f'{statistic}_p']:.3f}" for r in rows]),
             ("p adj", [_adjusted(r, statistic) for r in rows]),
             ("B", [str(int(r[f"{statistic}_permutations"])) for r in rows])]
    if task.probabilities and statistic == "auroc_active":
        columns = [(_ci_header("auroc_active"), [_short(r, "auroc_active") for r in rows]), *tests,
                   (_ci_header("auroc_gain_over_arm"), [_short(r, "auroc_gain_over_arm") for r in rows]),
                   ("slope", [f"{r['calibration_slope']:.2f}" for r in rows]),  # in order of what to keep
                   ("Brier", [f"{r['brier']:.3f}" for r in rows]), (_ci_header("auroc"), [_short(r, "auroc") for r in rows])]
    else:
        lead = statistic if f"{statistic}_ci_low" in table else task.headline
        rest = [task.headline] if lead != task.headline else []
        columns = [(_ci_header(lead), [_short(r, lead) for r in rows]), *tests,
                   *((_ci_header(h), [_short(r, h) for r in rows]) for h in rest),
                   *((label(m).replace("calibration slope", "slope"), [f"{r[m]:.2f}" for r in rows])
                     for m in task.table_metrics)]
    w = max([len("model"), *(len(str(r["model"])) for r in rows)])
    shown: list[tuple[str, int, list[str]]] = []
    left_out: list[str] = []
    used = w
    for header, cells in columns:
        width = max(len(header), *map(len, cells))
        if used + 1 + width <= WIDTH:
            shown.append((header, width, cells))
            used += 1 + width
        else:
            left_out.append(header)
    lines = [f"{'model':{w}s}" + "".join(f" {h:>{cw}s}" for h, cw, _ in shown)]
    lines += [f"{r['model']!s:{w}s}" + "".join(f" {c[i]:>{cw}s}" for _, cw, c in shown) for i, r in enumerate(rows)]
    note = f"; not shown here (--wide shows every column): {', '.join(left_out)}" if left_out else ""
    return "\n".join([*lines, _footer(table, statistic) + note])


NARROW_LABELS = {"auroc_active": "AUROC drug arm", "auroc_gain_over_arm": "gain over arm", "auroc": "AUROC all arms",
                 "c_index_active": "C drug arm(s)"}


def _ci_header(name: str) -> str:
    return f"{NARROW_LABELS.get(name) or label(name)} (95% CI)"


def _short(row: dict, name: str) -> str:
    """``0.860 (0.81, 0.91)``: the mean over CV repeats and its interval, in two decimals to fit."""
    value = row[name]
    low, high = row[name + "_ci_low"], row[name + "_ci_high"]
    return f"{value:.3f} ({low:.2f}, {high:.2f})"


def _adjusted(row: dict, statistic: str) -> str:
    adjusted = row.get(f"{statistic}_p_adjusted", float("nan"))
    return f"{adjusted:.3f}" if adjusted == adjusted else "-"


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
    """The mean over CV repeats with its interval, as logged (one estimator per name)."""
    value = row[name]
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
    return (f"Estimates: mean over CV repeats (as logged), 95% CI by the corrected resampled t. "
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
