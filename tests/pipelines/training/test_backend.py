"""The Spark backend (joblibspark) runs the same folds and permutations as the local one, with identical results."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pandas as pd
import pytest

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.errors import ConfigError, UsageError
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.pipelines.config import load_config
from tests.pipelines.conftest import FAST_CONFIG, TARGET


def test_backend_key_defaults_to_local_and_is_checked(tmp_path):
    assert load_config().backend == "local" and load_config(FAST_CONFIG).backend == "local"
    path = tmp_path / "c.yaml"
    path.write_text("backend: spark")
    assert load_config(path).backend == "spark"
    path.write_text("backend: dask")
    with pytest.raises(ConfigError, match="backend must be local or spark, got 'dask'"):
        load_config(path)


def test_cli_backend_overrides_the_config_and_missing_spark_exits_2(monkeypatch, capsys):
    from ketamine_response.pipelines import cli

    parser = cli.build_parser()
    assert parser.parse_args(["train", "c.csv", "--target", TARGET, "--backend", "spark"]).backend == "spark"
    assert parser.parse_args(["train", "c.csv", "--target", TARGET]).backend is None  # the config decides
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["train", "c.csv", "--target", TARGET, "--backend", "dask"])
    assert exit_.value.code == 2
    capsys.readouterr()
    monkeypatch.setitem(sys.modules, "joblibspark", None)  # as if the spark extra were not installed
    args = parser.parse_args(["train", "never-read.csv", "--target", TARGET, "--config", str(FAST_CONFIG),
                              "--backend", "spark"])
    assert cli._run(args.func, args) == 2
    assert "pip install 'ketamine-response[spark]'" in capsys.readouterr().err
    from ketamine_response.pipelines.training.backend import spark_session

    with pytest.raises(UsageError):
        spark_session()


def test_spark_backend_gives_the_local_results(spark):
    """Outer folds (inner selection, predictions, SHAP), every permutation, and the benefit model's outer
    folds, on local[2]: the work that runs as Spark tasks. (The benefit figures and roles derived from
    them run in the driver either way.)"""
    from ketamine_response.pipelines.flows.train import build_training_data
    from ketamine_response.pipelines.training.backend import parallel
    from ketamine_response.pipelines.training.benefit import comparisons, run_benefit
    from ketamine_response.pipelines.training.procedure import fit_all
    from ketamine_response.pipelines.training.progress import Progress

    config = load_config(FAST_CONFIG)
    config = dataclasses.replace(config, n_jobs=2, evaluation=dataclasses.replace(
        config.evaluation, permutations=2, permutation_stop=99))  # every statistic runs both permutations
    cohort, _ = build_cohort(200, 3, "strong")
    data, _, _ = build_training_data(validate_table(cohort, "c"), TARGET, config, False)
    comparison = comparisons(data)[0][0]
    runs = {}
    for backend in ("local", "spark"):
        c = dataclasses.replace(config, backend=backend)
        folds, permutation, _, selected = fit_all(data, c, Progress())
        with parallel(c) as runner:
            benefit = run_benefit(data, folds, comparison, ("s_learner", "t_learner"), c.cv.inner_folds, c.seed,
                                  "allocation", runner)
        runs[backend] = folds, permutation, selected, benefit
    # the benefit model's 3 outer folds and its final fit ran as 4 Spark jobs in the backend's job group
    assert len(spark.sparkContext.statusTracker().getJobIdsForGroup(runner._backend._job_group)) == 4
    (local_folds, local_perm, local_selected, local_benefit), (folds, perm, selected, benefit) = runs["local"], runs["spark"]

    assert selected == local_selected and len(folds) == len(local_folds) == 3
    for a, b in zip(local_folds, folds, strict=True):
        np.testing.assert_array_equal(a.split.test, b.split.test)
        assert (a.selected, a.params, a.threshold) == (b.selected, b.params, b.threshold)
        np.testing.assert_equal(a.inner_scores, b.inner_scores)
        assert a.predictions.keys() == b.predictions.keys()
        for family in a.predictions:
            np.testing.assert_array_equal(a.predictions[family], b.predictions[family])
        pd.testing.assert_frame_equal(a.shap, b.shap, check_exact=True)
    assert max(perm.b.values()) == 2
    np.testing.assert_equal((local_perm.observed, local_perm.p, local_perm.b, local_perm.null),
                            (perm.observed, perm.p, perm.b, perm.null))
    assert benefit.selections == local_benefit.selections
    np.testing.assert_array_equal(benefit.oof, local_benefit.oof)
    np.testing.assert_equal(benefit.oof_learners, local_benefit.oof_learners)
