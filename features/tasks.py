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

from ketamine_response.features.cohort.schema import REMISSION_THRESHOLD, TIMEPOINT_PATTERN, outcome_timepoints
from ketamine_response.features.cohort.targets import Target
from ketamine_response.features.errors import CohortFileError

if TYPE_CHECKING:  # numpy and pandas load on use: the CLI's parser reads this registry and --help stays fast
    import numpy as np
    import pandas as pd


class TaskKind(StrEnum):
    """The kinds of outcome the pipeline predicts (the value is what configs and run tags show)."""

    BINARY = "binary"
    CONTINUOUS = "continuous"


# score column -> (MADRS at the timepoint, MADRS at baseline, target kind, remission threshold) -> target
Builder = Callable[["pd.Series", "pd.Series", str, float], "pd.Series"]


def _binary(score: pd.Series, baseline: pd.Series, kind: str, remission_threshold: float) -> pd.Series:
    # response: MADRS at tp <= 50% of baseline; remission: MADRS at tp <= the threshold
    import numpy as np
    import pandas as pd

    hit = score <= 0.5 * baseline if kind == "response" else score <= remission_threshold
    return pd.Series(np.where(score.isna(), np.nan, hit.astype("float64")), index=score.index)


def _pct_change(score: pd.Series, baseline: pd.Series, kind: str, remission_threshold: float) -> pd.Series:
    # negative is improvement; NaN for a baseline of 0
    return 100 * (score - baseline) / baseline.where(baseline > 0)


def _describe_binary(target: Target, remission_threshold: float) -> str:
    tp = target.timepoint
    rule = f"MADRS at {tp} <= 50% of baseline" if target.kind == "response" else f"MADRS at {tp} <= {remission_threshold:g}"
    return f"{target.kind} at {tp}: {rule}"


def _describe_change(target: Target, remission_threshold: float) -> str:
    return f"percentage change in MADRS from baseline to {target.timepoint} (negative is improvement)"


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


def _labels_binary(y: np.ndarray) -> bool:
    import numpy as np

    return bool(np.isin(y, (0.0, 1.0)).all())


def _labels_finite(y: np.ndarray) -> bool:
    import numpy as np

    return bool(np.isfinite(y).all())


@dataclass(frozen=True)
class Task:
    """One kind of outcome.

    Attributes
    ----------
    kind : the registry key
    description : one line for humans
    target_kinds : the target-name prefixes of this task (``response`` in ``response_24h``)
    label : what the outcome array holds
    build : the target per course from the timepoint's and baseline MADRS (NaN where missing)
    describe : the outcome definition of a target, in words (reports, given the remission threshold)
    estimates : what a prediction of the target is, in words (the report's intended use)
    directions : what a positive and a negative SHAP value do to the prediction, in words
    labels_ok : whether an outcome array is a valid label set for this task
    strata : what the cross-validation splits stratify on
    probabilities : predictions are calibrated probabilities: in-fold calibration, an operating
        threshold, decision curve, within-arm AUROC, gain over the arm and benefit models apply
    selection_metric : the inner-loop loss; None means the config's ``search.selection_metric``
    headline : the metric the run is judged and permutation-tested by
    headline_wording, headline_bounds : how the headline is named, and its range (for intervals)
    table_metrics : the other metrics on each row of the comparison table
    families_key : the config key listing this task's model families
    size_unit : what Riley's sample-size rule counts per parameter (``events`` or ``courses``)
    r2_wording : the R2 that rule anticipates
    score_columns : the prediction columns ``score`` writes: the prediction, then (for probabilities) whether it
        reaches the model's operating threshold
    outcome_heading : the report's heading for the outcome distribution
    explain_unit : the scale of a SHAP value
    """

    kind: TaskKind
    description: str
    target_kinds: tuple[str, ...]
    label: str
    build: Builder
    describe: Callable[[Target, float], str]
    estimates: Callable[[Target], str]
    directions: Callable[[Target], tuple[str, str]]
    labels_ok: Callable[[np.ndarray], bool]
    strata: Callable[[np.ndarray], np.ndarray]
    probabilities: bool
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


_ENTRIES = (
    Task(TaskKind.BINARY, "response or remission at a timepoint: the probability of the event",
         ("response", "remission"), "0/1 event per course", _binary, _describe_binary, _estimates_binary, _directions_binary,
         _labels_binary, _strata_binary,
         probabilities=True, selection_metric=None, headline="auroc", headline_wording="AUROC pooling all arms",
         headline_bounds=(0.0, 1.0),
         table_metrics=("auprc", "brier", "calibration_slope", "calibration_intercept", "balanced_accuracy",
                        "sensitivity", "specificity"),
         families_key="families", size_unit="events", r2_wording="Cox-Snell R2",
         score_columns=("probability", "predicted_responder"), outcome_heading="Events", explain_unit="log-odds"),
    Task(TaskKind.CONTINUOUS, "percentage change in MADRS from baseline to a timepoint (negative is improvement)",
         ("pct_change",), "percentage change per course", _pct_change, _describe_change, _estimates_change,
         _directions_change, _labels_finite, _strata_quintiles,
         probabilities=False, selection_metric="mse", headline="r2_pct_change",
         headline_wording="R2 of the percentage change", headline_bounds=(float("-inf"), 1.0),
         table_metrics=("rmse_pct_change", "mae_pct_change", "calibration_slope_pct_change"),
         families_key="regression_families", size_unit="courses", r2_wording="R2",
         score_columns=("predicted_pct_change",), outcome_heading="Outcome distribution",
         explain_unit="percentage points"),
)
TASKS: dict[TaskKind, Task] = {t.kind: t for t in _ENTRIES}
TARGET_KINDS: tuple[str, ...] = tuple(k for t in _ENTRIES for k in t.target_kinds)
_TARGET = re.compile(rf"^(?P<kind>{'|'.join(TARGET_KINDS)})_{TIMEPOINT_PATTERN}$")


def parse_target(name: str) -> Target:
    """Parse a target name (``response_24h``, ``pct_change_day7`` ...); ValueError says what is expected."""
    m = _TARGET.match(name)
    if m is None:
        forms = ", ".join(f"{k}_<tp>" for k in TARGET_KINDS)
        raise ValueError(f"target '{name}' is not of the form {forms} with tp like 40min, 4h, 24h or day7")
    return Target(m["kind"], m["tp"])


def task_of(target: Target | str) -> Task:
    """The task of a target (or a target name)."""
    kind = (parse_target(target) if isinstance(target, str) else target).kind
    return next(t for t in _ENTRIES if kind in t.target_kinds)


def build_target(table: pd.DataFrame, target: Target, source: str = "cohort",
                 remission_threshold: float = REMISSION_THRESHOLD) -> pd.Series:
    """The target per course (NaN where the outcome is missing), built by its task.

    Raises
    ------
    CohortFileError
        If the cohort has no ``madrs_<tp>`` column for the target.
    """
    import pandas as pd

    if target.outcome_column not in table.columns:
        tps = outcome_timepoints(list(table.columns))
        supported = ", ".join(f"{k}_{tp}" for tp in tps for k in TARGET_KINDS) or "none"
        raise CohortFileError(
            f"{source}: target '{target.name}' needs column '{target.outcome_column}', which the cohort "
            f"lacks. Targets this cohort supports: {supported}."
        )
    score = table[target.outcome_column].astype("float64")
    baseline = table["madrs_baseline"].astype("float64")
    built = task_of(target).build(score, baseline, target.kind, remission_threshold)
    return pd.Series(built.to_numpy(), index=table.index, name=target.name)
