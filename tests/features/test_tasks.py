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


def check_task(kind: TaskKind) -> None:
    """What every task must provide: the contract a new entry (time to event, say) is held to."""
    task = TASKS[kind]
    assert task.kind is kind and task.description and task.label
    assert task.target_kinds and all(task_of(f"{k}_24h") is task for k in task.target_kinds)
    cohort, _ = build_cohort(200, 3, "strong")
    rng = np.random.default_rng(0)
    for target_kind in task.target_kinds:
        target = parse_target(f"{target_kind}_24h")
        assert "24h" in task.describe(target, 10.0)
        y = build_target(cohort, target).dropna().to_numpy()
        assert len(y) > 100 and task.labels_ok(y)
        strata = task.strata(y)
        assert len(strata) == len(y) and 2 <= len(np.unique(strata)) <= 10  # balanceable by StratifiedGroupKFold
        p = np.clip(y + rng.normal(0, 0.3 * (np.std(y) or 1), len(y)), 0.01, 0.99) if task.probabilities else y + 5.0
        # the headline is the permutation statistic, it lies in its bounds, and the suite computes it and the table
        assert task.headline in STATISTICS and task.headline_bounds[0] <= STATISTICS[task.headline](y, p) <= 1
        evaluation = evaluate(y, p, np.arange(len(y)).astype(str), {}, 0.5, 50, 0, task)
        assert {task.headline, *task.table_metrics} <= set(evaluation.metrics) and task.headline in evaluation.ci
    assert kind in SUITES
    assert task.selection_metric is None or task.selection_metric in CRITERIA
    assert family_names(kind) and getattr(TrainConfig(), task.families_key) == family_names(kind)
    assert all(FAMILIES[f].task is kind for f in family_names(kind))
    assert task.score_columns and len(task.score_columns) == len(set(task.score_columns)) <= 2
    assert task.size_unit in ("events", "courses") and task.r2_wording and task.outcome_heading and task.explain_unit


@pytest.mark.parametrize("kind", list(TASKS), ids=str)
def test_check_task(kind):
    check_task(kind)


def test_target_kinds_belong_to_one_task_each():
    assert len(TARGET_KINDS) == len(set(TARGET_KINDS))
    assert task_of("response_24h").kind is TaskKind.BINARY and task_of("pct_change_day2").kind is TaskKind.CONTINUOUS
    with pytest.raises(ValueError, match="pct_change_<tp>"):
        parse_target("change_24h")


def test_values():
    np.testing.assert_array_equal(build_target(TABLE, parse_target("response_24h")), [1.0, 0.0, 0.0, np.nan])
    np.testing.assert_array_equal(build_target(TABLE, parse_target("remission_24h")), [0.0, 0.0, 1.0, np.nan])
    change = build_target(TABLE, parse_target("pct_change_24h"))
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
