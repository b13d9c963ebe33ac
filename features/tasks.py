"""The task registry: what kind of outcome a target is, and everything that follows from that.

One declarative table, the fourth beside the feature, family and benefit-learner registries. A
:class:`Task` owns parsing a target name and building it from the cohort, the label it holds, what
the splits stratify on, the inner-loop selection loss, the headline metric (also the permutation
statistic) and the metric suite, the sample-size rule, whether predictions are calibrated
probabilities, which columns ``score`` writes, and the wording of tables and reports. Training,
evaluation, reporting, scoring and the logged model read it; none tests a task by name.

It lives in ``features`` (the lowest layer) because the feature table builds the target; metric
*functions* stay in ``pipelines.evaluation.metrics``, keyed by the metric names given here.
Adding a task (time to event, say) is one entry here plus its metric suite in ``SUITES`` of
``pipelines/evaluation/evaluate.py``; ``tests/features/test_tasks.py`` checks every entry.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from ketamine_response.features.cohort.schema import (
    FOLLOW_UP,
    HARM_COLUMNS,
    REMISSION_THRESHOLD,
    TIMEPOINT_PATTERN,
    outcome_timepoints,
)
from ketamine_response.features.cohort.targets import Target
from ketamine_response.features.errors import CohortFileError

if TYPE_CHECKING:  # numpy and pandas load on use: the CLI's parser reads this registry and --help stays fast
    import numpy as np
    import pandas as pd


class TaskKind(StrEnum):
    """The kinds of outcome the pipeline predicts (the value is what configs and run tags show)."""

    BINARY = "binary"
    CONTINUOUS = "continuous"
    HARM = "harm"          # a binary harm (a safety column at or above a threshold): the binary families
    SURVIVAL = "survival"  # right-censored time to relapse after a response


# (cohort table, target, remission threshold) -> the target per course (NaN where missing); a time to event
# also returns its event flag as a second column
Builder = Callable[["pd.DataFrame", Target, float], "pd.DataFrame"]
HORIZONS: tuple[int, int] = (28, 56)  # days after the response: what a durability model predicts and is judged at


def _scores(table: pd.DataFrame, target: Target) -> tuple[pd.Series, pd.Series]:
    return table[target.outcome_column].astype("float64"), table["madrs_baseline"].astype("float64")


def _binary(table: pd.DataFrame, target: Target, remission_threshold: float) -> pd.DataFrame:
    # response: MADRS at tp <= 50% of baseline; remission: MADRS at tp <= the threshold
    import numpy as np
    import pandas as pd

    score, baseline = _scores(table, target)
    hit = score <= 0.5 * baseline if target.kind == "response" else score <= remission_threshold
    return pd.DataFrame({target.name: np.where(score.isna(), np.nan, hit.astype("float64"))}, index=table.index)


def _pct_change(table: pd.DataFrame, target: Target, remission_threshold: float) -> pd.DataFrame:
    # negative is improvement; NaN for a baseline of 0
    score, baseline = _scores(table, target)
    return (100 * (score - baseline) / baseline.where(baseline > 0)).rename(target.name).to_frame()


def _harm(table: pd.DataFrame, target: Target, remission_threshold: float) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    value = table[target.column].astype("float64")
    hit = np.where(value.isna(), np.nan, (value >= target.threshold).astype("float64"))
    return pd.DataFrame({target.name: hit}, index=table.index)


def _relapse(table: pd.DataFrame, target: Target, remission_threshold: float) -> pd.DataFrame:
    # days and event flag; both empty (not followed after a response) leaves the course out of the analysis
    import pandas as pd

    return pd.DataFrame({target.name: table["days_to_relapse"].astype("float64"),
                         EVENT.format(target=target.name): table["relapse_observed"].astype("float64")},
                        index=table.index)


def _describe_binary(target: Target, remission_threshold: float) -> str:
    tp = target.timepoint
    rule = f"MADRS at {tp} <= 50% of baseline" if target.kind == "response" else f"MADRS at {tp} <= {remission_threshold:g}"
    return f"{target.kind} at {tp}: {rule}"


def _describe_change(target: Target, remission_threshold: float) -> str:
    return f"percentage change in MADRS from baseline to {target.timepoint} (negative is improvement)"


def _describe_harm(target: Target, remission_threshold: float) -> str:
    return f"{target.column} >= {target.threshold:g} (a harm of the course, predicted from baseline features only)"


def _describe_relapse(target: Target, remission_threshold: float) -> str:
    return ("days from the response to relapse, right-censored at the last relapse-free contact (courses followed "
            "after a response only; predicted from baseline features)")


def _estimates_harm(target: Target) -> str:
    return f"the probability that {target.column} reaches {target.threshold:g}"


def _estimates_relapse(target: Target) -> str:
    return f"the probability of relapse within {HORIZONS[0]} days of a response (a higher one ranks as sooner relapse)"


def _directions_relapse(target: Target) -> tuple[str, str]:
    return "relapse sooner", "relapse later"


def _estimates_binary(target: Target) -> str:
    return f"the probability of {target.kind} at {target.timepoint}"


def _estimates_change(target: Target) -> str:
    return f"the percentage change in MADRS at {target.timepoint}"


def _directions_binary(target: Target) -> tuple[str, str]:
    return f"{target.kind} more likely", f"{target.kind} less likely"


def _directions_change(target: Target) -> tuple[str, str]:
    return "larger predicted % change", "smaller predicted % change"


def _strata_binary(y: np.ndarray) -> np.ndarray:
    return y


def _strata_quintiles(y: np.ndarray) -> np.ndarray:
    import numpy as np

    edges = np.quantile(y, np.linspace(0, 1, 6)[1:-1])
    return np.searchsorted(edges, y, side="right")


def _strata_event(y: np.ndarray) -> np.ndarray:
    return y["event"].astype(int)


def _labels_survival(y: np.ndarray) -> bool:
    import numpy as np

    return y.dtype.names == ("event", "time") and bool((np.isfinite(y["time"]) & (y["time"] >= 0)).all())


def _labels_binary(y: np.ndarray) -> bool:
    import numpy as np

    return bool(np.isin(y, (0.0, 1.0)).all())


def _labels_finite(y: np.ndarray) -> bool:
    import numpy as np

    return bool(np.isfinite(y).all())


def _y_float(frame: pd.DataFrame, name: str) -> np.ndarray:
    return frame[name].to_numpy(dtype=float)


def _y_survival(frame: pd.DataFrame, name: str) -> np.ndarray:
    """The structured (event, time) array scikit-survival takes: it travels through splits and permutations
    as one label, so a permutation moves a course's time and event flag together."""
    import numpy as np

    y = np.empty(len(frame), dtype=[("event", "?"), ("time", "<f8")])
    y["event"], y["time"] = frame[EVENT.format(target=name)].to_numpy(dtype=float) == 1, frame[name].to_numpy(dtype=float)
    return y


def _timepoint_target(kind: str, m: re.Match[str]) -> Target:
    return Target(kind, m["tp"])


@dataclass(frozen=True)
class Task:
    """One kind of outcome.

    Attributes
    ----------
    kind : the registry key
    description : one line for humans
    target_kinds : the target-name prefixes of this task (``response`` in ``response_24h``)
    forms : the target-name patterns (regular expressions with the named groups the parser reads), their
        spelling for help texts and an example name, one per target kind
    label : what the outcome array holds
    build : the target per course from the cohort (NaN where missing)
    outcome : the outcome array of the courses in the analysis, from the feature frame (float; a structured
        (event, time) array for a time to event)
    describe : the outcome definition of a target, in words (reports, given the remission threshold)
    estimates : what a prediction of the target is, in words (the report's intended use)
    directions : what a positive and a negative SHAP value do to the prediction, in words
    labels_ok : whether an outcome array is a valid label set for this task
    strata : what the cross-validation splits stratify on
    probabilities : predictions are calibrated probabilities of a binary outcome: in-fold calibration, an
        operating threshold, decision curve, within-arm AUROC and gain over the arm apply
    benefit : whether benefit-over-placebo models apply (a difference in the probability of a good outcome)
    family_kind : the kind of model families it is fitted with (a harm uses the binary families)
    selection_metric : the inner-loop loss; None means the config's ``search.selection_metric``
    headline : the metric the run is judged and permutation-tested by
    headline_wording, headline_bounds : how the headline is named, and its range (for intervals)
    table_metrics : the other metrics on each row of the comparison table
    families_key : the config key listing this task's model families
    size_unit : what Riley's sample-size rule counts per parameter (``events`` or ``courses``)
    r2_wording : the R2 that rule anticipates
    score_columns : the prediction columns ``score`` writes (``{target}`` stands for the target's name): the
        prediction, then (for probabilities) whether it reaches the model's operating threshold
    outcome_heading : the report's heading for the outcome distribution
    explain_unit : the scale of a SHAP value
    """

    kind: TaskKind
    description: str
    target_kinds: tuple[str, ...]
    forms: tuple[tuple[str, str, str], ...]
    parse: Callable[[str, re.Match[str]], Target]
    label: str
    build: Builder
    outcome: Callable[[pd.DataFrame, str], np.ndarray]
    describe: Callable[[Target, float], str]
    estimates: Callable[[Target], str]
    directions: Callable[[Target], tuple[str, str]]
    labels_ok: Callable[[np.ndarray], bool]
    strata: Callable[[np.ndarray], np.ndarray]
    probabilities: bool
    benefit: bool
    family_kind: TaskKind
    selection_metric: str | None
    headline: str
    headline_wording: str
    headline_bounds: tuple[float, float]
    table_metrics: tuple[str, ...]
    families_key: str
    size_unit: str
    r2_wording: str
    score_columns: tuple[str, ...]
    outcome_heading: str
    explain_unit: str

    def columns_for(self, target: str) -> tuple[str, ...]:
        """The prediction columns ``score`` writes for *target* (a target name)."""
        return tuple(c.format(target=target) for c in self.score_columns)


EVENT = "{target}_event"  # the feature frame's event-flag column of a time-to-event target
_TP = TIMEPOINT_PATTERN
_BINARY_FORMS = ((rf"response_{_TP}", "response_<tp>", "response_24h"),
                 (rf"remission_{_TP}", "remission_<tp>", "remission_day14"))
# a response and a harm are both the probability of an event: the same comparison-table metrics
_BINARY_TABLE = ("auprc", "brier", "calibration_slope", "calibration_intercept", "balanced_accuracy", "sensitivity",
                 "specificity")
_ENTRIES = (
    Task(TaskKind.BINARY, "response or remission at a timepoint: the probability of the event",
         ("response", "remission"), _BINARY_FORMS, _timepoint_target,
         "0/1 event per course", _binary, _y_float, _describe_binary, _estimates_binary, _directions_binary,
         _labels_binary, _strata_binary,
         probabilities=True, benefit=True, family_kind=TaskKind.BINARY, selection_metric=None, headline="auroc",
         headline_wording="AUROC pooling all arms", headline_bounds=(0.0, 1.0),
         table_metrics=_BINARY_TABLE,
         families_key="families", size_unit="events", r2_wording="Cox-Snell R2",
         score_columns=("probability", "predicted_responder"), outcome_heading="Events", explain_unit="log-odds"),
    Task(TaskKind.CONTINUOUS, "percentage change in MADRS from baseline to a timepoint (negative is improvement)",
         ("pct_change",), ((rf"pct_change_{_TP}", "pct_change_<tp>", "pct_change_day7"),), _timepoint_target,
         "percentage change per course", _pct_change, _y_float, _describe_change, _estimates_change,
         _directions_change, _labels_finite, _strata_quintiles,
         probabilities=False, benefit=False, family_kind=TaskKind.CONTINUOUS, selection_metric="mse",
         headline="r2_pct_change", headline_wording="R2 of the percentage change", headline_bounds=(float("-inf"), 1.0),
         table_metrics=("rmse_pct_change", "mae_pct_change", "calibration_slope_pct_change"),
         families_key="regression_families", size_unit="courses", r2_wording="R2",
         score_columns=("predicted_pct_change",), outcome_heading="Outcome distribution",
         explain_unit="percentage points"),
    Task(TaskKind.HARM, "a harm of the course (a safety column at or above a threshold): its probability from "
         "baseline features", ("harm",), ((r"(?P<column>[a-z][a-z0-9_]*?)_ge(?P<threshold>\d+(\.\d+)?)", "<column>_ge<threshold>",
                                       "sbp_change_mmhg_ge40"),),
         lambda kind, m: Target(kind, column=m["column"], threshold=float(m["threshold"])),
         "0/1 harm per course", _harm, _y_float, _describe_harm, _estimates_harm, _directions_binary,
         _labels_binary, _strata_binary,
         probabilities=True, benefit=False, family_kind=TaskKind.BINARY, selection_metric=None, headline="auroc",
         headline_wording="AUROC pooling all arms", headline_bounds=(0.0, 1.0),
         table_metrics=_BINARY_TABLE,
         families_key="families", size_unit="events", r2_wording="Cox-Snell R2",
         score_columns=("probability_{target}", "predicted_{target}"), outcome_heading="Events", explain_unit="log-odds"),
    Task(TaskKind.SURVIVAL, "time to relapse after a response (right-censored): relapse-free probabilities",
         ("time_to_relapse",), (("time_to_relapse", "time_to_relapse", "time_to_relapse"),), lambda kind, m: Target(kind),
         "(event, days) per course followed after a response", _relapse, _y_survival, _describe_relapse,
         _estimates_relapse, _directions_relapse, _labels_survival, _strata_event,
         probabilities=False, benefit=False, family_kind=TaskKind.SURVIVAL, selection_metric="partial_likelihood",
         headline="c_index", headline_wording="Harrell's C of relapse", headline_bounds=(0.0, 1.0),
         table_metrics=("uno_c", "auroc_28d", "auroc_56d", "integrated_brier", "calibration_28d_gap"),
         families_key="survival_families", size_unit="events", r2_wording="Cox-Snell R2",
         score_columns=("relapse_free_28d", "relapse_free_56d", "median_days_to_relapse"),
         outcome_heading="Relapses", explain_unit="log relapse hazard"),
)
TASKS: dict[TaskKind, Task] = {t.kind: t for t in _ENTRIES}
TARGET_KINDS: tuple[str, ...] = tuple(k for t in _ENTRIES for k in t.target_kinds)
# each form tried in registry order: a harm's pattern would also match names of the other forms' shape only by
# accident (no safety column is called response_...), and the timepoint forms come first
_FORMS = tuple((task, kind, re.compile(rf"^{form}$")) for task in _ENTRIES
               for kind, (form, _, _) in zip(task.target_kinds, task.forms, strict=True))
TARGET_HELP = "; ".join(f"{', '.join(h for _, h, _ in t.forms)} ({t.kind})" for t in _ENTRIES)


def parse_target(name: str) -> Target:
    """Parse a target name (``response_24h``, ``pct_change_day7``, ``sbp_change_mmhg_ge40``, ``time_to_relapse``);
    ValueError says what is expected."""
    for task, kind, pattern in _FORMS:
        m = pattern.match(name)
        if m is not None:
            return task.parse(kind, m)
    raise ValueError(f"target '{name}' is not of the form {TARGET_HELP}, with tp like 40min, 4h, 24h or day7")


def task_of(target: Target | str) -> Task:
    """The task of a target (or a target name)."""
    kind = (parse_target(target) if isinstance(target, str) else target).kind
    return next(t for t in _ENTRIES if kind in t.target_kinds)


def build_target(table: pd.DataFrame, target: Target, source: str = "cohort",
                 remission_threshold: float = REMISSION_THRESHOLD) -> pd.DataFrame:
    """The target per course (NaN where the outcome is missing), built by its task: one column named as the
    target, and for a time to event its event flag (:data:`EVENT`).

    Raises
    ------
    CohortFileError
        If the cohort lacks a column the target is built from.
    """
    task = task_of(target)
    if task.kind is TaskKind.HARM and target.column not in HARM_COLUMNS:
        raise CohortFileError(f"{source}: '{target.name}' is not a harm target: a harm is one of "
                              f"{', '.join(HARM_COLUMNS)} at or above a threshold. {_supported(table)}")
    needed = list(FOLLOW_UP) if task.kind is TaskKind.SURVIVAL else [target.outcome_column]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        named = f"column {missing[0]!r}" if len(missing) == 1 else f"columns {', '.join(repr(c) for c in missing)}"
        raise CohortFileError(f"{source}: target '{target.name}' needs {named}, which the cohort lacks. "
                              f"{_supported(table)}")
    built = task.build(table, target, remission_threshold)
    return built.set_axis(table.index)


def _supported(table: pd.DataFrame) -> str:
    tps = outcome_timepoints(list(table.columns))
    names = [f"{k}_{tp}" for tp in tps for k in TASKS[TaskKind.BINARY].target_kinds + TASKS[TaskKind.CONTINUOUS].target_kinds]
    names += [f"{c}_ge<threshold>" for c in HARM_COLUMNS if c in table.columns]
    names += ["time_to_relapse"] * all(c in table.columns for c in FOLLOW_UP)
    suffix = "" if all(c in table.columns for c in FOLLOW_UP) else (
        " A durability target needs the follow-up columns days_to_relapse and relapse_observed (days from the "
        "response to relapse or censoring, and 1 = relapsed / 0 = censored).")
    return f"Targets this cohort supports: {', '.join(names) or 'none'}.{suffix}"
