"""The permutation test re-runs the whole procedure, finds nothing on null cohorts, and stops early."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from joblib import Parallel

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.pipelines.config import load_config
from ketamine_response.pipelines.evaluation.evaluate import evaluate_all
from ketamine_response.pipelines.evaluation.repeats import statistic_values
from ketamine_response.pipelines.flows.train import build_training_data
from ketamine_response.pipelines.training.nested import run_nested
from ketamine_response.pipelines.training.permutation import permutation_test
from tests.pipelines.conftest import FAST_CONFIG, TARGET


def _design(n: int, scenario: str, seed: int, **evaluation):
    config = load_config(FAST_CONFIG)
    config = dataclasses.replace(config, evaluation=dataclasses.replace(config.evaluation, **evaluation))
    cohort, _ = build_cohort(n, seed, scenario)
    data = build_training_data(validate_table(cohort, "c"), TARGET, config, False)[0]
    return data, config


def _test(data, config):
    with Parallel(n_jobs=1) as parallel:
        folds = run_nested(data, config, parallel, explain=False)
        return folds, permutation_test(data, folds, config, parallel)


def test_null_cohort_is_not_significant():
    data, config = _design(400, "null", 4, permutations=19)
    _, result = _test(data, config)
    assert result.p["selected"] > 0.05
    # every statistic was either permuted or is a constant predictor (p = 1 without permuting)
    assert all(0 < b <= 19 or (b == 0 and result.p[name] == 1.0) for name, b in result.b.items())


@pytest.fixture(scope="module")
def unpermuted_strong():
    """300 strong-scenario courses through the procedure with no permutation asked for: data, config, folds, test."""
    data, config = _design(300, "strong", 5, permutations=0)
    return data, config, *_test(data, config)


def test_the_statistic_tested_is_the_one_shown_beside_its_p(unpermuted_strong):
    data, config, folds, result = unpermuted_strong
    assert result.statistic == "auroc_active"
    assert result.observed == statistic_values(data, folds, config.families)
    shown = evaluate_all(data, folds, config, pd.DataFrame(index=data.X.index))
    assert all(result.observed[name] == pytest.approx(shown[name].metrics["auroc_active"]) for name in result.observed)
    assert np.isnan(result.p["selected"]) and result.b["selected"] == 0  # nothing asked for, nothing claimed
    assert set(result.metrics("elastic_net")) == {"auroc_active_p", "auroc_active_permutations", "auroc_active_p_adjusted"}
    assert set(result.metrics("selected")) == {"auroc_active_p", "auroc_active_permutations"}  # the procedure needs none


def test_models_constant_within_the_drug_arm_rank_nobody_there(unpermuted_strong):
    data, config, folds, result = unpermuted_strong
    shown = evaluate_all(data, folds, config, pd.DataFrame(index=data.X.index))
    for family in ("prevalence", "arm_only"):
        assert shown[family].metrics["auroc_active"] == 0.5 and np.isnan(shown[family].metrics["calibration_slope_active"])
        assert result.p[family] == 1.0 and result.adjusted[family] == 1.0
    assert np.isnan(shown["prevalence"].metrics["calibration_slope"]) and shown["prevalence"].metrics["auroc"] == 0.5


def test_strong_signal_runs_every_permutation_and_reaches_the_floor():
    data, config = _design(400, "strong", 6, permutations=9)
    _, result = _test(data, config)
    assert result.b["selected"] == 9 and result.p["selected"] == pytest.approx(1 / 10)
    assert result.p["prevalence"] == 1.0 and result.b["prevalence"] == 0
    # max-T: each family's adjusted p is at least its own, and the strong family survives the adjustment
    assert all(result.adjusted[f] >= result.p[f] for f in config.families)
    assert result.adjusted["elastic_net"] == pytest.approx(1 / 10)


def test_sequential_stopping_ends_a_statistic_at_h_exceedances():
    data, config = _design(200, "null", 7, permutations=9, permutation_stop=1)
    _, result = _test(data, config)
    stopped = {name: b for name, b in result.b.items() if 0 < b < 9}
    assert stopped  # on a null cohort some statistic meets a permuted value at least as high early on
    for name, b in stopped.items():  # p = h / permutations run
        assert result.p[name] == pytest.approx(1 / b)


def test_constant_procedure_gets_p_1_without_permuting():
    data, config = _design(300, "literature", 8, permutations=19)
    config = dataclasses.replace(config, families=("prevalence",))
    _, result = _test(data, config)
    assert result.p == {"prevalence": 1.0, "selected": 1.0} and result.b == {"prevalence": 0, "selected": 0}


def test_placebo_only_prognosis_is_not_response_if_given_the_drug():
    """Features predict placebo response only: within the drug arm nothing is predictable, so the headline
    (within-active-arm AUROC) must not reject, although the pooled all-arms AUROC is high. One null cohort
    rejects 5% of the time by design (this one, seed 9 at 600 courses, did); the rate over 200 cohorts is
    benchmarks/headline_type1.py's."""
    data, config = _design(1000, "placebo_prognosis", 11, permutations=19)
    folds, result = _test(data, config)
    shown = evaluate_all(data, folds, config, pd.DataFrame(index=data.X.index))["selected"]
    assert result.statistic == "auroc_active" and result.p["selected"] > 0.05
    low, high = shown.ci["auroc_active"]
    assert low <= 0.5 <= high


def test_batches_as_wide_as_the_workers_give_the_one_at_a_time_p_values():
    """Permutations run in batches of (permutation, fold) tasks; stopping is applied in permutation order, so the
    p-values, the permutations counted and the null values do not depend on how many run at once."""
    from ketamine_response.pipelines.training.permutation import batch_width

    data, config = _design(240, "null", 6, permutations=6, permutation_stop=2)
    config = dataclasses.replace(config, families=("prevalence", "clinical_logistic", "elastic_net"))
    with Parallel(n_jobs=1) as one:
        folds = run_nested(data, config, one, explain=False)
        alone = permutation_test(data, folds, config, one)
    with Parallel(n_jobs=9, backend="threading") as wide:  # three permutations of three folds per batch
        assert batch_width(wide, 3) == 3
        batched = permutation_test(data, folds, config, wide)
    assert batched.p == alone.p and batched.b == alone.b and batched.null == alone.null
    assert any(n % 3 for n in alone.b.values() if n)  # a test stopped inside a batch of three, not at its end
