"""The benefit model on every scenario of the benefit suite, against its oracle on fresh courses.

Benefit comes from drug-arm modifiers, from baseline risk under a constant log odds ratio, or from
placebo prognosis the drug does not share: the model ranks it in each, and never says "no
heterogeneity predicted" there. Under a constant risk difference and under no effect at all its
benefit barely varies, and it claims no heterogeneity that its test does not show.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest
from scipy.stats import spearmanr

from ketamine_response.features.build import build_feature_table
from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.features.synthetic.scenarios import BENEFIT_SUITE
from ketamine_response.features.tasks import parse_target
from ketamine_response.pipelines.config import load_config
from ketamine_response.pipelines.evaluation.heterogeneity import Verdict
from ketamine_response.pipelines.flows.train import build_training_data
from ketamine_response.pipelines.folds import FoldResult
from ketamine_response.pipelines.training.cv import outer_splits
from ketamine_response.pipelines.training.procedure import estimate_benefit
from ketamine_response.pipelines.training.progress import Progress
from tests.pipelines.conftest import FAST_CONFIG

TARGET = "response_24h"
VARIES = {"benefit": 0.8, "constant_log_odds": 0.8, "placebo_driven": 0.75}  # the least Spearman with the truth
PLACEBO_PROGNOSIS = {"n_failed_treatments", "madrs_baseline", "bmi_kg_m2"}  # planted on placebo only
MODIFIERS = {"family_history_aud", "bmi_kg_m2", "benzodiazepine", "bdnf_met_carrier"}  # the benefit scenario's
PROXIES = {"bdnf_met_alleles", "obese"}  # share a modifier's source column: tested with it as one group


# courses per scenario: 1,400, as in benchmarks/benefit_learners.py; placebo_driven at the 2,400 the roles table
# needs to call its absolute-scale modifiers (:func:`_placebo_prognosis_modifies_absolute_benefit`), one estimation
# for all its claims. Its ranking keeps its margin there: Spearman 0.922 at 2,400 courses, 0.936 at 1,400 (this
# seed and config, 2026-12-07), against the 0.75 asked; the benchmark measures it at 1,400 with the default config
SIZES = {"placebo_driven": 2400}


@functools.cache
def _run(scenario: str, n: int):
    """Benefit estimated on *n* courses of *scenario* (3 outer folds; the shipped 3 inner folds, which make the
    final model), and that final model's benefit on fresh courses with the oracle's truth."""
    fast = load_config(FAST_CONFIG)
    config = dataclasses.replace(fast, cv=dataclasses.replace(fast.cv, inner_folds=load_config().cv.inner_folds))
    cohort, _ = build_cohort(n, 31, scenario)
    data, built, _ = build_training_data(validate_table(cohort, scenario), TARGET, config, False)
    splits = outer_splits(data.y, data.patients, data.sites, "kfold", 3, 1, config.seed)
    benefit, models = estimate_benefit(data, [FoldResult(s, "elastic_net", {}, {}) for s in splits], built, config,
                                       None, Progress())
    fresh, oracle = build_cohort(3000, 97, scenario)
    iv = oracle["benefit_24h_ketamine_iv"].notna().to_numpy()
    table = validate_table(fresh[iv].reset_index(drop=True), "fresh").table
    X = build_feature_table(table, parse_target(TARGET)).frame[list(data.X.columns)]
    truth = oracle.loc[iv, ["benefit_24h_ketamine_iv", "p_response_24h_ketamine_iv"]].to_numpy()
    return benefit, models["ketamine_iv"].effect(X), truth


@pytest.mark.parametrize("scenario", BENEFIT_SUITE)
def test_benefit_is_found_wherever_it_comes_from(scenario):
    benefit, predicted, truth = _run(scenario, SIZES.get(scenario, 1400))
    summary = benefit.primary
    roles = benefit.roles.set_index("feature")
    called = set(roles.index[roles["role_absolute"] == "predictive"])  # the scale that says who gains more
    assert (roles["n_courses"] == roles["n_courses"].max()).all()  # every course counts for every feature
    if scenario in VARIES:
        assert spearmanr(predicted, truth[:, 0])[0] >= VARIES[scenario]
        assert summary.verdict is not Verdict.NONE and summary.varies
        assert summary.c_for_benefit[2] > 0.5  # never wholly below chance where the truth varies
        if scenario == "benefit":  # the planted modifiers (or their proxies), and nothing else
            assert len(called & MODIFIERS) >= 2 and not called - MODIFIERS - PROXIES
            assert summary.heterogeneity.blp_p < 0.05
        if scenario == "placebo_driven":
            _placebo_prognosis_modifies_absolute_benefit(called, summary.path)
    else:
        # a constant risk difference or no effect: the benefit barely varies, against the drug-arm probability's
        # spread (the oracle's under a constant risk difference; under no effect, any spread of 0.05 is too much)
        assert np.std(predicted) <= 0.3 * max(np.std(truth[:, 1]), 0.05 / 0.3)
        assert summary.verdict not in (Verdict.SHOWN, Verdict.OTHER, Verdict.MISSED)  # no claim of heterogeneity
        # every patient gains the same (+0.25, or nothing): nothing modifies the absolute effect, however prognostic;
        # the log-odds scale may call an interaction ("both"): a constant risk difference is not a constant odds ratio
        # "none" for every feature, not merely none "predictive": a withheld or missing role would pass that vacuously
        assert (roles["role_absolute"] == "none").all(), roles.loc[roles["role_absolute"] != "none", ["role_absolute",
                                                                   "absolute_interaction", "absolute_interaction_q"]]


def _placebo_prognosis_modifies_absolute_benefit(called: set[str], path) -> None:
    """Who gains more: those with a poor prognosis on placebo (~0.07 of benefit per SD on the absolute scale: the
    roles table needs ~1,700 IV courses to call it); PATH: benefit falls as placebo-arm risk rises (the drug's
    response is the same for everyone)."""
    assert called & PLACEBO_PROGNOSIS
    shown = path[path["shown"]]
    assert shown["observed_benefit"].iloc[0] > shown["observed_benefit"].iloc[-1]
