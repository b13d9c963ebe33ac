"""Nested benefit estimation: which comparisons are formed, out-of-fold coverage, and the selection rule."""

from __future__ import annotations

import numpy as np
from joblib import Parallel

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.pipelines.config import load_config
from ketamine_response.pipelines.flows.train import build_training_data
from ketamine_response.pipelines.folds import Data, FoldResult
from ketamine_response.pipelines.training.benefit import comparisons, design_strata, one_se_choice, propensity, pseudo_outcomes, run_benefit
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


def test_pseudo_outcomes_average_to_the_trial_effect():
    data = _data(3000, 5, "constant_effect")
    c = comparisons(data)[0][0]
    sub = data.take(c.rows)
    half = np.arange(len(sub.y)) % 2 == 0
    train, test = np.flatnonzero(half), np.flatnonzero(~half)
    psi = pseudo_outcomes(sub, c.treated, train, test, propensity(data, c, train, test, "allocation"))
    rows = ~half
    observed = sub.y[rows][c.treated[rows] == 1].mean() - sub.y[rows][c.treated[rows] == 0].mean()
    assert abs(psi.mean() - observed) < 0.05


def test_one_se_rule_prefers_the_simpler_learner_within_noise():
    rng = np.random.default_rng(0)
    noise = rng.normal(1.0, 0.5, 400)
    dr = np.vstack([noise + rng.normal(0.01, 0.3, 400), noise])  # candidate 0 (s) a hair worse, within noise
    best = {"s_learner": (0, float(dr[0].mean())), "t_learner": (1, float(dr[1].mean()))}
    patients = np.arange(400) // 2  # pairs of courses: the SE is per patient
    assert one_se_choice(("s_learner", "t_learner"), dr, best, patients) == "s_learner"
    dr[0] += 1.0  # clearly worse
    best["s_learner"] = (0, float(dr[0].mean()))
    assert one_se_choice(("s_learner", "t_learner"), dr, best, patients) == "t_learner"


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
        result = run_benefit(data, folds, c, ("s_learner", "t_learner", "dr_learner"), 2, 0, "allocation", parallel)
    assert np.all(np.isfinite(result.oof)) and len(result.oof) == len(c.rows)
    assert set(result.oof_learners) == {"s_learner", "t_learner", "dr_learner"}
    assert len(result.selections) == 3 and set(result.selections) <= set(result.oof_learners)
    assert result.final.arm == "ketamine_iv" and set(result.final_losses) == set(result.oof_learners)
