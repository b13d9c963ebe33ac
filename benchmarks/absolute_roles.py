"""Benchmark: roles on the absolute scale and the BLP heterogeneity test, on cohorts with a known truth.

``python benchmarks/absolute_roles.py [SEEDS]`` (default 20); the README reports the result.

* ``constant_risk_difference`` (1,400 courses per seed): every patient gains +0.25 from the drug on the
  probability scale, with strong prognostic factors. No feature may be called predictive on the absolute
  scale (false-call rate over all feature tests, bound 5%) and the BLP test of the out-of-fold benefit
  should reject at most at its level (bound 10%).
* ``benefit`` (1,400 courses, first 5 seeds): four planted drug-arm modifiers; at least 2 should be
  absolute-scale predictive and no planted null column.

The response model's folds come from the test config (3 outer folds x 1 repeat), the benefit learners and
roles are the defaults.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
warnings.filterwarnings("ignore")
MODIFIERS = {"family_history_aud", "bmi_kg_m2", "benzodiazepine", "bdnf_met_carrier"}
PROXIES = {"bdnf_met_alleles", "obese"}  # derived from a modifier's own source column: tested with it as one group


def _run(scenario: str, seed: int):
    from joblib import Parallel

    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.flows.train import build_training_data
    from ketamine_response.pipelines.training.nested import run_nested
    from ketamine_response.pipelines.training.procedure import estimate_benefit
    from ketamine_response.pipelines.training.progress import Progress

    config = load_config("tests/pipelines/fast_train.yaml")
    cohort, _ = build_cohort(1400, 100 + seed, scenario)
    data, built, _ = build_training_data(validate_table(cohort, scenario), "response_24h", config, False)
    with Parallel(n_jobs=2) as parallel:
        folds = run_nested(data, config, parallel, explain=False)
    benefit, _ = estimate_benefit(data, folds, built, config, None, Progress())
    return benefit


def main(seeds: int) -> None:
    from scipy.stats import binomtest

    clock, calls, tests, blp, any_call = time.perf_counter(), 0, 0, [], 0
    for seed in range(seeds):
        benefit = _run("constant_risk_difference", seed)
        roles = benefit.roles
        calls += int((roles["role_absolute"] == "predictive").sum())
        tests += int(roles["absolute_interaction_q"].notna().sum())
        any_call += int((roles["role_absolute"] == "predictive").any())
        blp.append(benefit.primary.heterogeneity.blp_p)
        print(f"  seed {seed}: {int((roles['role_absolute'] == 'predictive').sum())} absolute calls, BLP p {blp[-1]:.3f}",
              flush=True)
    rejected = int(np.sum(np.asarray(blp) <= 0.05))
    ci_calls, ci_blp = binomtest(calls, tests).proportion_ci(0.95), binomtest(rejected, seeds).proportion_ci(0.95)
    print(f"constant_risk_difference, {seeds} seeds x 1,400 courses: absolute-scale predictive calls {calls}/{tests} "
          f"feature tests = {calls / tests:.3f} (95% CI {ci_calls.low:.3f}-{ci_calls.high:.3f}); BLP p <= 0.05 in "
          f"{rejected}/{seeds} = {rejected / seeds:.2f} (95% CI {ci_blp.low:.2f}-{ci_blp.high:.2f}); seeds with any "
          f"absolute-scale call: {any_call}/{seeds}")
    for seed in range(min(seeds, 5)):
        roles = _run("benefit", seed).roles.set_index("feature")
        called = set(roles.index[roles["role_absolute"] == "predictive"])
        other = called - MODIFIERS - PROXIES
        print(f"benefit seed {seed}: planted modifiers called {len(called & MODIFIERS)}/4 "
              f"({', '.join(sorted(called & MODIFIERS))}); any other feature called: {', '.join(sorted(other)) or 'none'}")
    print(f"{time.perf_counter() - clock:.0f} s")


if __name__ == "__main__":
    import sys

    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
