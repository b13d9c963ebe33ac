"""Evaluate pooled out-of-fold probabilities: metrics with CIs, decision curve, subgroups."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.tasks import TASKS, Task, TaskKind
from ketamine_response.models.families import SELECTED
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.evaluation.drug_arm import add_active_arm_metrics, drug_threshold
from ketamine_response.pipelines.evaluation.estimators import centred, check_intervals, honest, skewed
from ketamine_response.pipelines.evaluation.metrics import (
    STATISTICS,
    Threshold,
    auroc,
    averaged,
    bootstrap_ci,
    continuous_bootstrap_ci,
    continuous_metrics,
    continuous_subgroups,
    corrected_cv_interval,
    decision_curve,
    flexible_calibration,
    point_metrics,
    subgroup_table,
)
from ketamine_response.pipelines.evaluation.repeats import (
    ACTIVE_C,
    active,
    constant_within,
    drug_auroc,
    judged_drugs,
    per_repeat,
    repeats,
    statistic_of,
    within_c,
)
from ketamine_response.pipelines.evaluation.survival import (
    GRID_DAYS,
    brier_with_ci,
    calibration_28d,
    survival_bootstrap_ci,
    survival_metrics,
    survival_subgroups,
)
from ketamine_response.pipelines.folds import Data, FoldResult, pooled_threshold


@dataclass(frozen=True)
class Evaluation:
    """Everything one run (parent or child) reports, for a target of *task*. Never changed in place:
    each ``add_*`` step returns a new one."""

    metrics: dict[str, float]
    ci: dict[str, tuple[float, float]]
    curve: pd.DataFrame
    subgroups: pd.DataFrame
    task: Task = TASKS[TaskKind.BINARY]
    curve_active: pd.DataFrame = field(default_factory=pd.DataFrame)  # the decision curve of the drug-arm courses
    # names whose bootstrap interval was withheld because it missed its point (estimators.skewed): shown as such
    withheld: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        # one number per name: no point estimate outside its own interval, wherever the evaluation is assembled
        check_intervals(self.metrics, self.ci)

    def with_curve_active(self, curve: pd.DataFrame) -> Evaluation:
        """A copy with the drug arm's decision curve."""
        return replace(self, curve_active=curve)

    @property
    def headline(self) -> str:
        """The metric the run is judged by (the task's): AUROC, or R2 of the percentage change."""
        return self.task.headline

    def adding(self, metrics: dict[str, float], ci: dict[str, tuple[float, float]] | None = None,
               withheld: frozenset[str] = frozenset()) -> Evaluation:
        """A copy with *metrics* and *ci* added (or replaced), and *withheld* intervals recorded."""
        return replace(self, metrics=self.metrics | metrics, ci=self.ci | (ci or {}), withheld=self.withheld | withheld)

    def tracked_metrics(self, tests: dict[str, float]) -> dict[str, float]:
        """The metric names every run carries, the other CIs, and *tests* (the permutation test's metrics)."""
        out = dict(self.metrics)
        for name, (low, high) in self.ci.items():
            out[f"{name}_ci_low"], out[f"{name}_ci_high"] = low, high
        return out | tests

    def row(self, name: str, tests: dict[str, float]) -> dict[str, Any]:
        """One line of the comparison table; *tests* are the permutation test's metrics of this run."""
        m, ci, h = self.metrics, self.ci, self.headline
        head = {"model": name, h: m[h], f"{h}_ci_low": ci[h][0], f"{h}_ci_high": ci[h][1],
                f"{h}_repeat_min": m.get(f"{h}_repeat_min", m[h]), f"{h}_repeat_max": m.get(f"{h}_repeat_max", m[h])}
        within = {}
        if self.task.probabilities:  # NaN where the cohort has no active arm or no arm-only model
            nan = (float("nan"), float("nan"))
            within = {"auroc_active": m.get("auroc_active", float("nan")),
                      "auroc_active_ci_low": ci.get("auroc_active", nan)[0],
                      "auroc_active_ci_high": ci.get("auroc_active", nan)[1],
                      "auroc_gain_over_arm": m.get("auroc_gain_over_arm", float("nan")),
                      "auroc_gain_over_arm_ci_low": ci.get("auroc_gain_over_arm", nan)[0],
                      "auroc_gain_over_arm_ci_high": ci.get("auroc_gain_over_arm", nan)[1]}
        elif "c_index_active" in m:  # a time to relapse: within the drug arm(s) first
            within = {"c_index_active": m["c_index_active"], "c_index_active_ci_low": ci["c_index_active"][0],
                      "c_index_active_ci_high": ci["c_index_active"][1]}
        return head | within | {k: m[k] for k in self.task.table_metrics} | tests


# A suite takes the predictions of each CV repeat (one row each): metrics and their CIs per repeat, then
# averaged; the decision curve and subgroup table describe the repeat-averaged predictions.
def _binary(y: np.ndarray, p: np.ndarray, patients: np.ndarray, subgroups: dict[str, np.ndarray], threshold: Threshold,
            n_boot: int, seed: int, min_n: int, min_events: int) -> tuple[Any, ...]:
    mean = p.mean(axis=0)
    metrics = averaged(point_metrics, y, p, threshold) | averaged(flexible_calibration, y, p)  # ICI: no CI (too slow)
    return (metrics, bootstrap_ci(y, p, patients, threshold, n_boot, seed),
            decision_curve(y, mean), subgroup_table(y, mean, subgroups, min_n, min_events))


def _continuous(y: np.ndarray, p: np.ndarray, patients: np.ndarray, subgroups: dict[str, np.ndarray], threshold: Threshold,
                n_boot: int, seed: int, min_n: int, min_events: int) -> tuple[Any, ...]:
    # no threshold and no decision curve for a continuous prediction
    return (averaged(continuous_metrics, y, p), continuous_bootstrap_ci(y, p, patients, n_boot, seed), pd.DataFrame(),
            continuous_subgroups(y, p.mean(axis=0), subgroups, min_n))


def _survival(y: np.ndarray, p: np.ndarray, patients: np.ndarray, subgroups: dict[str, np.ndarray], threshold: Threshold,
              n_boot: int, seed: int, min_n: int, min_events: int) -> tuple[Any, ...]:
    # the curve slot holds calibration at 28 days by fifths; the integrated Brier score needs the stored
    # relapse-free curves and is added by add_integrated_brier
    mean = p.mean(axis=0)
    return (averaged(survival_metrics, y, p), survival_bootstrap_ci(y, p, patients, n_boot, seed),
            calibration_28d(y, mean), survival_subgroups(y, mean, subgroups, min_n, min_events))


# Each task's metric suite (its metric names are in features/tasks.py); tests/features/test_tasks.py
# checks every task has one.
SUITES: dict[TaskKind, Callable[..., tuple[Any, ...]]] = {
    TaskKind.BINARY: _binary, TaskKind.CONTINUOUS: _continuous, TaskKind.HARM: _binary, TaskKind.SURVIVAL: _survival}


def evaluate(y: np.ndarray, p: np.ndarray, patients: np.ndarray, subgroups: dict[str, np.ndarray],
             threshold: Threshold, n_boot: int, seed: int, task: Task = TASKS[TaskKind.BINARY],
             min_n: int = 10, min_events: int = 5) -> Evaluation:
    """Point metrics, patient-bootstrap CIs, decision curve and subgroup table of one prediction set, or of
    one row of predictions per CV repeat (metrics per repeat, then averaged); a subgroup with fewer than
    *min_n* courses or *min_events* events (or non-events) shows counts only."""
    metrics, ci, curve, groups = SUITES[task.kind](y, np.atleast_2d(p), patients, subgroups, threshold, n_boot, seed, min_n, min_events)
    return Evaluation(metrics, honest(metrics, ci), curve, groups, task, withheld=skewed(metrics, ci))


def _share(data: Data, folds: list[FoldResult]) -> float:
    return float(np.mean([len(f.split.test) / len(data.y) for f in folds]))


def add_cv_uncertainty(evaluation: Evaluation, data: Data, folds: list[FoldResult], family: str | None) -> Evaluation:
    """Add the spread over CV repeats, and make the headline interval one that includes refit and selection.

    The point estimate stays the mean over repeats (the one estimator of the name, see
    :mod:`~ketamine_response.pipelines.evaluation.estimators`); its interval is the corrected resampled t
    interval of the per-fold values, centred on it. *family* None means the selected procedure. The
    patient-bootstrap interval stays beside it as ``<headline>_bootstrap`` (it holds the models fixed).
    """
    h, metric = evaluation.headline, STATISTICS[evaluation.headline]
    repeats = [metric(data.y, p) for p in per_repeat(data, folds, family)]
    per_fold = np.array([_fold_metric(evaluation.task, data.y, f, family) for f in folds])
    mean, low, high = corrected_cv_interval(per_fold, _share(data, folds), evaluation.task.headline_bounds)
    shown = evaluation.metrics[h]
    return evaluation.adding({f"{h}_repeat_min": min(repeats), f"{h}_repeat_max": max(repeats)},
                             {f"{h}_bootstrap": evaluation.ci[h],
                              h: centred(shown, mean, low, high, evaluation.task.headline_bounds)})


def _fold_metric(task: Task, y: np.ndarray, fold: FoldResult, family: str | None) -> float:
    truth, predicted = y[fold.split.test], fold.predictions[family or fold.selected]
    if task.headline == "r2_pct_change":  # against the whole cohort's variance, so folds' R2 average to the pooled one
        return float(1 - np.mean((truth - predicted) ** 2) / np.var(y))
    return STATISTICS[task.headline](truth, predicted)


def add_integrated_brier(evaluation: Evaluation, data: Data, folds: list[FoldResult], family: str | None,
                         n_boot: int, seed: int) -> Evaluation:
    """A durability model's integrated Brier score from its stored out-of-fold relapse-free curves (per CV repeat,
    averaged), with its patient-bootstrap interval."""
    if not any(f.curves for f in folds):
        return evaluation
    curves = []
    for group in repeats(folds):
        c = np.full((len(data.y), len(GRID_DAYS)), np.nan)
        for f in group:
            c[f.split.test] = f.curves[family or f.selected]
        curves.append(c)
    value, ci = brier_with_ci(data.y, curves, data.patients, n_boot, seed)
    point, interval = {"integrated_brier": value}, {"integrated_brier": ci}
    return evaluation.adding(point, honest(point, interval), skewed(point, interval))


def add_active_c_index(evaluation: Evaluation, data: Data, folds: list[FoldResult], family: str | None,
                       min_events: int = 0) -> Evaluation:
    """A time to relapse within the drug arm(s): how well the model ranks relapse *after responding to the drug*.

    The pooled C mixes arms and routes, which set most of the relapse rate (placebo responders relapse about
    twice as fast; maintained esketamine far more slowly than six IV infusions), so the arm alone carries it.
    ``c_index_active`` is Harrell's C within each drug, weighted by its courses (the permutation test's
    statistic), with the corrected interval over outer folds; with two drugs ``c_index_<drug>`` for each.
    With fewer than *min_events* relapses on every drug it is withheld: ``relapses_active`` stands instead.
    """
    drug = active(data)
    if not data.y.dtype.names or not drug.any():
        return evaluation
    counts = {"relapses_active": float(data.y["event"][drug].sum()), "courses_active": float(drug.sum())}
    if statistic_of(data, min_events) != ACTIVE_C:
        return evaluation.adding(counts)
    arms = judged_drugs(data, min_events)
    per_fold = np.array([_fold_c(f, data, family, arms) for f in folds])
    mean, low, high = corrected_cv_interval(per_fold, _share(data, folds), (0.0, 1.0))
    shown = drug_auroc(data, folds, family, min_events)  # the value the permutation test tests; the interval centred on it
    m = counts | {"c_index_active": shown}
    for arm in arms if len(arms) > 1 else []:
        m[f"c_index_{arm}"] = within_c(data, folds, family, data.treatments == arm)
    return evaluation.adding(m, {"c_index_active": (max(shown - (mean - low), 0.0), min(shown + (high - mean), 1.0))})


def _fold_c(fold: FoldResult, data: Data, family: str | None, arms: list[str]) -> float:
    """One outer fold's Harrell's C within each drug, weighted by the drug's test courses."""
    test, predicted = fold.split.test, fold.predictions[family or fold.selected]
    values, sizes = [], []
    for arm in arms:
        keep = data.treatments[test] == arm
        values.append(STATISTICS["c_index"](data.y[test][keep], predicted[keep]) if keep.sum() > 1 else float("nan"))
        sizes.append(keep.sum())
    seen = ~np.isnan(values)
    return float(np.average(np.asarray(values)[seen], weights=np.asarray(sizes)[seen])) if seen.any() else float("nan")


def without_spread(evaluation: Evaluation, data: Data, folds: list[FoldResult], family: str | None) -> Evaluation:
    """A model with no spread in any outer fold ranks nobody and has no calibration slope, whatever its
    fold-to-fold constants pool to (the prevalence model's pooled slope read -8.34): AUROC 0.5, slope none; for a
    time to relapse every C and time-dependent AUROC 0.5 (the Kaplan-Meier floor's pooled C read 0.487)."""
    if not constant_within(folds, family, np.ones(len(data.y), bool)):
        return evaluation
    nan = (float("nan"), float("nan"))
    if data.y.dtype.names:  # a time to relapse: no ranking at all (the Kaplan-Meier floor), C 0.5 everywhere
        ranks = ("c_index", "uno_c", "auroc_28d", "auroc_56d")
        return evaluation.adding(dict.fromkeys(ranks, 0.5), {r: (0.5, 0.5) for r in ranks})
    if not evaluation.task.probabilities:
        return evaluation
    return evaluation.adding({"auroc": 0.5, "calibration_slope": float("nan")},
                             {"calibration_slope": nan, "auroc": (0.5, 0.5), "auroc_bootstrap": (0.5, 0.5)})


def add_gain_over_arm(evaluations: dict[str, Evaluation], data: Data, folds: list[FoldResult]) -> dict[str, Evaluation]:
    """``auroc_arm_only`` and ``auroc_gain_over_arm`` (with its corrected interval) on every run.

    The gain asks what the biomarkers add to knowing the arm: the difference of the two repeat-mean AUROCs, with
    the corrected interval of the per-fold differences (both models saw the same folds) centred on it.
    """
    if "arm_only" not in evaluations or not evaluations["arm_only"].task.probabilities:
        return evaluations
    arm_only = evaluations["arm_only"].metrics["auroc"]
    out = {}
    for name, evaluation in evaluations.items():
        family = None if name == SELECTED else name
        diffs = np.array([auroc(data.y[f.split.test], f.predictions[family or f.selected])
                          - auroc(data.y[f.split.test], f.predictions["arm_only"]) for f in folds])
        mean, low, high = corrected_cv_interval(diffs, _share(data, folds), (-1.0, 1.0))
        gain = evaluation.metrics["auroc"] - arm_only
        out[name] = evaluation.adding({"auroc_arm_only": arm_only, "auroc_gain_over_arm": gain},
                                      {"auroc_gain_over_arm": centred(gain, mean, low, high, (-1.0, 1.0))})
    return out


def evaluate_all(data: Data, folds: list[FoldResult], config: TrainConfig, cohort_table: pd.DataFrame) -> dict[str, Evaluation]:
    """Evaluate every family's and the selected procedure's pooled out-of-fold predictions."""
    sex = cohort_table["sex"] if "sex" in cohort_table else pd.Series(None, index=cohort_table.index, dtype=object)
    groups = {"sex": sex.loc[data.X.index].to_numpy(object), "arm": data.treatments, "site": data.sites}
    t = pooled_threshold(data, folds)  # each course judged at its training folds' threshold
    drug_t = drug_threshold(data, folds, config.evaluation.threshold)  # in the drug arm: its own training event rate
    out = {}
    for name in (*config.families, SELECTED):
        family = None if name == SELECTED else name
        # a time to relapse bootstraps the selected procedure only: its censoring-weighted metrics cost about
        # 25 ms a resample, and each family's headline keeps its cross-validation interval
        n_boot = config.evaluation.bootstrap if family is None or data.task.kind is not TaskKind.SURVIVAL else 0
        evaluation = evaluate(data.y, per_repeat(data, folds, family), data.patients, groups, t, n_boot,
                              config.seed, data.task, config.policy.min_courses_per_group, config.policy.min_events_per_arm)
        evaluation = without_spread(add_cv_uncertainty(evaluation, data, folds, family), data, folds, family)
        evaluation = add_integrated_brier(evaluation, data, folds, family, n_boot, config.seed)
        evaluation = add_active_arm_metrics(evaluation, data, folds, family, config.policy.min_events_per_arm,
                                            drug_t, n_boot if family is None else 0, config.seed)
        out[name] = add_active_c_index(evaluation, data, folds, family, config.policy.min_events_per_arm)
    return add_gain_over_arm(out, data, folds)
