"""Nested benefit estimation: which comparisons are formed, out-of-fold coverage, and the selection rule."""

from __future__ import annotations

import numpy as np
from joblib import Parallel

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.pipelines.config import load_config
from ketamine_response.pipelines.flows.train import build_training_data
from ketamine_response.pipelines.folds import Data, FoldResult
from ketamine_response.pipelines.training.benefit import InnerFit, choose, comparisons, design_strata, inner_fit, propensity, r_stack, run_benefit
from ketamine_response.pipelines.training.cv import outer_splits


def _data(n: int, seed: int, scenario: str, target: str = "response_24h") -> Data:
    cohort, _ = build_cohort(n, seed, scenario)
    return build_training_data(validate_table(cohort, scenario), target, load_config(), False)[0]


def test_comparisons_hold_each_drug_and_the_placebo_of_its_sites():
    data = _data(600, 4, "literature", "response_day7")  # both drugs have a day 7 visit
    found, notes = comparisons(data)
    assert [c.arm for c in found] == ["ketamine_iv", "esketamine_in"] and not notes
    for c in found:
        arms = set(data.treatments[c.rows])
        assert arms == {c.arm, "placebo"}
        assert set(data.sites[c.rows]) == set(data.sites[data.treatments == c.arm])
        np.testing.assert_array_equal(c.treated, data.treatments[c.rows] == c.arm)


def test_too_few_placebo_courses_give_a_note_not_a_model():
    data = _data(300, 4, "literature")
    keep = np.flatnonzero((data.treatments != "placebo") | (np.arange(len(data.y)) % 40 == 0))
    found, notes = comparisons(data.take(keep))
    assert found == [] and "no benefit model for ketamine_iv" in notes[0]


def test_r_stack_intercept_is_the_trial_effect():
    data = _data(3000, 5, "constant_effect")
    c = comparisons(data)[0][0]
    fit = inner_fit(data, c, ("path",), 2, 0, "allocation")
    intercept, slope, _ = r_stack(fit, 0)
    sub = data.take(c.rows)
    observed = sub.y[c.treated == 1].mean() - sub.y[c.treated == 0].mean()
    assert abs(intercept - observed) < 0.03 and slope >= 0


def _fit(truth: np.ndarray, tau: np.ndarray, outcome: np.ndarray, seed: int = 0) -> InnerFit:
    """An inner fit of candidates *tau* whose residuals follow the benefit *truth*, plus noise."""
    rng = np.random.default_rng(seed)
    t_tilde = rng.binomial(1, 0.5, truth.size) - 0.5
    return InnerFit(tau, t_tilde * truth + rng.normal(0, 0.45, truth.size), t_tilde, outcome)


def test_r_stack_slope_is_one_for_the_truth_and_zero_for_noise():
    rng = np.random.default_rng(1)
    truth = 0.3 + 0.15 * rng.normal(size=20_000)
    fit = _fit(truth, np.vstack([truth, rng.normal(0.3, 0.15, truth.size), 0.3 - (truth - 0.3)]), np.full(3, np.nan))
    assert abs(r_stack(fit, 0)[1] - 1) < 0.1
    assert r_stack(fit, 1)[1] < 0.1
    assert r_stack(fit, 2)[1] == 0  # a ranking that runs against the outcomes gets no weight


def test_choice_is_the_r_loss_with_the_outcome_fit_breaking_ties_within_noise():
    patients = np.arange(4000) // 2
    best = {"x_learner": 0, "t_learner": 1}  # the outcome log-loss prefers t_learner; x_learner models no outcome
    kept = 0
    for seed in range(20):
        rng = np.random.default_rng(seed)
        truth = 0.3 + 0.15 * rng.normal(size=4000)
        two = truth + rng.normal(0, 0.15, (2, truth.size))  # equally good, independently wrong
        kept += choose(_fit(truth, two, np.array([np.nan, 0.6]), seed), best, patients) == "t_learner"
        clear = np.vstack([truth, rng.normal(0.3, 0.15, truth.size)])
        assert choose(_fit(truth, clear, np.array([np.nan, 0.6]), seed), best, patients) == "x_learner"
    assert kept >= 16  # within noise (one SE) the outcome fit decides


def test_propensity_is_the_allocation_ratio_of_each_design_stratum():
    sites = np.array(["a"] * 6 + ["b"] * 4)
    patients = np.array(["p1", "p1", "p2", "p3", "p4", "p5", "q1", "q1", "q2", "q3"])
    strata = design_strata(sites, patients)
    assert len(set(strata)) == 4 and strata[0] == strata[1] and strata[2] == strata[3]
    from ketamine_response.pipelines.training.benefit import Comparison

    treated = np.array([1, 0, 1, 1, 1, 0, 0, 1, 1, 0], dtype=float)
    c = Comparison("ketamine_iv", np.arange(10), treated, strata)
    every = np.arange(10)
    e = propensity(None, c, every, every, "allocation")  # type: ignore[arg-type]
    np.testing.assert_allclose(e, [0.5, 0.5, 0.75, 0.75, 0.75, 0.75, 0.5, 0.5, 0.5, 0.5])


def test_every_course_gets_an_out_of_fold_benefit():
    data = _data(500, 6, "benefit")
    splits = outer_splits(data.y, data.patients, data.sites, "kfold", 3, 1, 0)
    folds = [FoldResult(s, "elastic_net", {}, {}) for s in splits]
    c = comparisons(data)[0][0]
    with Parallel(n_jobs=1) as parallel:
        result = run_benefit(data, folds, c, ("s_learner", "t_learner", "path"), 2, 0, "allocation", parallel)
    assert np.all(np.isfinite(result.oof)) and len(result.oof) == len(c.rows)
    assert set(result.oof_learners) == {"s_learner", "t_learner", "path"}
    assert len(result.selections) == 3 and set(result.selections) <= set(result.oof_learners)
    assert result.final.arm == "ketamine_iv" and set(result.final_losses) == set(result.oof_learners)
