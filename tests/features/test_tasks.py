"""Contract suite over every Task entry (``check_task``), target parsing and building, and the rule that
no module outside the registry tests an outcome kind by name."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ketamine_response.features.errors import CohortFileError
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.features.tasks import TARGET_KINDS, TASKS, TaskKind, build_target, parse_target, task_of
from ketamine_response.models.families import FAMILIES, family_names
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.evaluation.evaluate import SUITES, evaluate
from ketamine_response.pipelines.evaluation.metrics import STATISTICS
from ketamine_response.pipelines.training.nested import CRITERIA

ROOT = Path(__file__).resolve().parents[2]
TABLE = pd.DataFrame({"madrs_baseline": [30.0, 30.0, 0.0, 40.0], "madrs_24h": [12.0, 20.0, 5.0, np.nan]})


def _predictions(task, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Informative predictions of *y* on the task's scale (a time to event: relapse risk falls with time)."""
    if y.dtype.names:
        return np.clip(1 - y["time"] / (y["time"].max() + 1) + rng.normal(0, 0.2, len(y)), 0.01, 0.99)
    if task.probabilities:
        return np.clip(y + rng.normal(0, 0.3 * (np.std(y) or 1), len(y)), 0.01, 0.99)
    return y + 5.0


def check_task(kind: TaskKind) -> None:
    """What every task must provide: the contract a new entry is held to."""
    task = TASKS[kind]
    assert task.kind is kind and task.description and task.label
    assert len(task.forms) == len(task.target_kinds) and all(task_of(example) is task for _, _, example in task.forms)
    cohort, _ = build_cohort(1500, 3, "durability")  # every outcome, safety and follow-up column
    rng = np.random.default_rng(0)
    for _, _, example in task.forms:
        target = parse_target(example)
        assert target.name == example and task.describe(target, 10.0)
        frame = build_target(cohort, target)
        assert frame.columns[0] == example
        y = task.outcome(frame.dropna(), example)
        assert len(y) > 100 and task.labels_ok(y)
        strata = task.strata(y)
        assert len(strata) == len(y) and 2 <= len(np.unique(strata)) <= 10  # balanceable by StratifiedGroupKFold
        p = _predictions(task, y, rng)
        # the headline is the permutation statistic, it lies in its bounds, and the suite computes it and the table
        assert task.headline in STATISTICS and task.headline_bounds[0] <= STATISTICS[task.headline](y, p) <= 1
        evaluation = evaluate(y, p, np.arange(len(y)).astype(str), {}, 0.5, 50, 0, task)
        expected = {*task.table_metrics} - {"integrated_brier"}  # needs the fold curves: added by evaluate_all
        assert {task.headline, *expected} <= set(evaluation.metrics) and task.headline in evaluation.ci
        assert len(task.columns_for(example)) == len(set(task.columns_for(example)))
    assert kind in SUITES
    assert task.selection_metric is None or task.selection_metric in CRITERIA
    assert family_names(task.family_kind) and getattr(TrainConfig(), task.families_key) == family_names(task.family_kind)
    assert all(FAMILIES[f].task is task.family_kind for f in family_names(task.family_kind))
    assert task.score_columns and len(task.score_columns) <= 3
    assert task.size_unit in ("events", "courses") and task.r2_wording and task.outcome_heading and task.explain_unit


@pytest.mark.parametrize("kind", list(TASKS), ids=str)
def test_check_task(kind):
    check_task(kind)


def test_target_kinds_belong_to_one_task_each():
    assert len(TARGET_KINDS) == len(set(TARGET_KINDS))
    assert task_of("response_24h").kind is TaskKind.BINARY and task_of("pct_change_day2").kind is TaskKind.CONTINUOUS
    assert task_of("cadss_40min_ge5").kind is TaskKind.HARM and task_of("time_to_relapse").kind is TaskKind.SURVIVAL
    with pytest.raises(ValueError, match=r"pct_change_<tp>.*<column>_ge<threshold>.*time_to_relapse"):
        parse_target("change_24h")


def test_harm_and_relapse_targets():
    table = pd.DataFrame({"sbp_change_mmhg": [45.0, 39.0, np.nan], "days_to_relapse": [10.0, 30.0, np.nan],
                          "relapse_observed": [1.0, 0.0, np.nan]})
    np.testing.assert_array_equal(build_target(table, parse_target("sbp_change_mmhg_ge40")).iloc[:, 0], [1.0, 0.0, np.nan])
    frame = build_target(table, parse_target("time_to_relapse"))
    y = TASKS[TaskKind.SURVIVAL].outcome(frame.dropna(), "time_to_relapse")
    assert y["event"].tolist() == [True, False] and y["time"].tolist() == [10.0, 30.0]
    assert parse_target("sbp_change_mmhg_ge40").minutes == 0  # a harm is predicted before the dose


def test_durability_target_without_follow_up_columns_names_them():
    with pytest.raises(CohortFileError, match=r"days_to_relapse.*relapse_observed.*follow-up columns"):
        build_target(TABLE, parse_target("time_to_relapse"))


def test_a_harm_must_be_a_safety_column():
    with pytest.raises(CohortFileError, match="not a harm target"):
        build_target(TABLE, parse_target("madrs_24h_ge20"))


def test_values():
    np.testing.assert_array_equal(build_target(TABLE, parse_target("response_24h")).iloc[:, 0], [1.0, 0.0, 0.0, np.nan])
    np.testing.assert_array_equal(build_target(TABLE, parse_target("remission_24h")).iloc[:, 0], [0.0, 0.0, 1.0, np.nan])
    change = build_target(TABLE, parse_target("pct_change_24h")).iloc[:, 0]
    np.testing.assert_allclose(change[:2], [-60.0, -100 / 3])
    assert change[2:].isna().all()  # a baseline of 0 has no percentage change; a missing outcome is missing


def test_missing_outcome_column_lists_every_supported_target():
    with pytest.raises(CohortFileError, match="pct_change_24h"):
        build_target(TABLE, parse_target("pct_change_day7"))


def test_no_module_tests_an_outcome_kind_by_name():
    """Outcome kinds are registry entries: "classification" / "regression" strings appear nowhere else."""
    pattern = re.compile(r"""["'](classification|regression)["']""")
    offenders = [f"{path.relative_to(ROOT)}:{n}" for folder in ("features", "models", "pipelines", "tests")
                 for path in sorted((ROOT / folder).rglob("*.py")) if path.name != "test_tasks.py"
                 for n, line in enumerate(path.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders
