"""Per-patient intervals and percentiles of the shared strong-scenario run (one extra small refit)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.models.families import predict
from ketamine_response.models.intervals import probability_bounds
from ketamine_response.pipelines.training.nested import refit
from ketamine_response.pipelines.training.progress import Progress
from ketamine_response.pipelines.training.replicates import bootstrap_rows, fit_intervals


def _courses(strong_run, n: int = 300) -> pd.DataFrame:
    result, cohort, _ = strong_run
    seen = cohort["site"].isin(result.model.sites) & cohort["treatment"].isin(result.model.arms)
    return validate_table(cohort[seen].head(n), "scored").table


def test_every_probability_lies_in_its_interval_and_percentiles_rank_within_its_arm(strong_run):
    result, _, _ = strong_run
    model, table = result.model, _courses(strong_run)
    assert len(model.intervals.estimators) == result.config.intervals.replicates
    out = model.predictions(table)
    assert list(out)[:4] == ["probability", "probability_low", "probability_high", "probability_percentile"]
    assert list(model.score_columns) == [*list(out)]
    p, low, high, pct = (np.asarray(out[c], dtype=float) for c in list(out)[:4])
    assert ((low <= p) & (p <= high) & (high - low > 0)).all()
    assert ((pct >= 1) & (pct <= 99)).all()
    arms = table["treatment"].astype(str).to_numpy()
    for arm in np.unique(arms):
        order = np.argsort(p[arms == arm], kind="stable")
        assert (np.diff(pct[arms == arm][order]) >= -1e-12).all(), arm
    per_arm = model.arm_table(table)
    for column in [c for c in model.arm_columns() if not c.endswith(("_low", "_high"))]:
        assert ((per_arm[f"{column}_low"] <= per_arm[column]) & (per_arm[column] <= per_arm[f"{column}_high"])).all()
    benefit = model.benefit["ketamine_iv"]
    assert len(benefit.replicates) == result.config.intervals.benefit_replicates
    assert (per_arm["predicted_benefit_ketamine_iv_high"] - per_arm["predicted_benefit_ketamine_iv_low"] > 0).all()


def test_a_model_fitted_on_fewer_courses_has_wider_intervals(strong_run):
    result, _, _ = strong_run
    data, config = result.data, result.config
    config = dataclasses.replace(config, intervals=dataclasses.replace(config.intervals, replicates=10))
    patients = np.unique(data.patients)
    quarter = data.take(np.flatnonzero(np.isin(data.patients, patients[: len(patients) // 4])))
    small = refit(result.model.estimator, quarter, config, config.seed)
    X = _courses(strong_run).pipe(result.model.feature_table)
    width, spread = {}, {}
    for name, estimator, intervals in (("all", result.model.estimator, result.model.intervals),
                                       ("quarter", small, fit_intervals(small, quarter, config, Progress()))):
        p = predict(estimator, X)
        low, high = intervals.bounds(X, p, True)
        width[name] = float(np.median(high - low))
        # the refits' own part, without the between-site term (which does not shrink with more courses)
        low, high = probability_bounds(p, intervals.replicate_predictions(X), config.intervals.level)
        spread[name] = float(np.median(high - low))
    assert width["quarter"] > 1.1 * width["all"], width
    # a quarter of the patients: about twice the standard error (1/sqrt(n))
    assert spread["quarter"] > 1.4 * spread["all"], spread


def test_a_bootstrap_resample_draws_whole_patients():
    rng = np.random.default_rng(3)
    patients = np.array(["a", "a", "b", "c", "c", "c"])
    rows = bootstrap_rows(patients, rng)
    drawn = pd.Series(patients[rows]).value_counts()
    assert all(count % {"a": 2, "b": 1, "c": 3}[p] == 0 for p, count in drawn.items())  # all of a patient's courses
    assert drawn.sum() == len(rows) and sum(count // {"a": 2, "b": 1, "c": 3}[p] for p, count in drawn.items()) == 3


def _arrays(value, seen: set[int], depth: int = 0):  # type: ignore[no-untyped-def]
    """Every numpy array and pandas object reachable from *value*."""
    if id(value) in seen or depth > 12 or isinstance(value, (str, bytes, int, float, type)):
        return
    seen.add(id(value))
    if isinstance(value, (np.ndarray, pd.Series, pd.DataFrame, pd.Index)):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _arrays(v, seen, depth + 1)
    elif isinstance(value, (list, tuple, set)):
        for v in value:
            yield from _arrays(v, seen, depth + 1)
    elif hasattr(value, "__dict__"):
        yield from _arrays(vars(value), seen, depth + 1)


def test_the_percentile_grid_is_the_out_of_fold_1st_to_99th_percentiles_per_arm(strong_run):
    """In-sample predictions of the final model would rank a new patient against a too-wide spread."""
    from ketamine_response.models.intervals import quantile_grid
    from ketamine_response.pipelines.folds import pooled

    result, _, _ = strong_run
    data, intervals = result.data, result.model.intervals
    oof = pooled(data, result.folds)
    for arm, grid in intervals.grids.items():
        np.testing.assert_allclose(grid, quantile_grid(oof[data.treatments == arm]))
        in_sample = predict(result.model.estimator, data.X[data.treatments == arm])
        assert not np.allclose(grid, quantile_grid(in_sample)), arm
    assert (intervals.failed, intervals.requested) == (0, result.config.intervals.replicates)


def test_the_intervals_keep_no_per_course_values(strong_run):
    """Aggregates only: the grids' 99 quantiles and fitted parameters, never an array over courses."""
    result, _, _ = strong_run
    model = result.model
    assert all(grid.shape == (99,) for grid in model.intervals.grids.values())
    assert set(model.intervals.grids) == {"ketamine_iv", "placebo"}
    kept = [*_arrays(model.intervals, set()), *_arrays(model.benefit["ketamine_iv"].replicates, set())]
    longest = max(len(a) for a in kept)
    assert kept and longest < 500 < len(result.data.y) / 2, longest  # no array as long as a fold of courses
