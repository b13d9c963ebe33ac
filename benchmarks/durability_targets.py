"""Benchmark: durability and harm targets against their planted truth, with the default config.

``python benchmarks/durability_targets.py [N] [--quick]`` on the 2-core machine; the README reports the result.

* ``time_to_relapse`` on an N-course ``durability`` cohort (default 1,500): the whole default procedure
  (nested CV, 19 permutations), its wall time and peak memory, the reported Harrell's C with its interval
  and permutation p; then the final model scores a fresh 8,000-course cohort from its features alone, and
  its predicted 28-day relapse risk is ranked against the fresh cohort's observed relapses (Harrell's C)
  beside the oracle's true log hazard (the acceptance asks for >= 0.95x the oracle's C, and the reported C
  within 0.04 of the fresh one).
* ``time_to_relapse`` on a ``durability_null`` cohort: no patient factor moves relapse; the permutation p
  of the C must exceed 0.05.
* The harm targets ``cadss_40min_ge5``, ``sbp_change_mmhg_ge40`` and ``nausea_ge1`` on the ``durability``
  cohort: fresh-cohort AUROC of the final model against the oracle's true harm probability (the default
  config without the permutation test, which does not touch the final model; the response benchmarks time it).

``--quick`` turns the permutation test off for the relapse runs too (development only).
"""

from __future__ import annotations

import os
import resource
import sys
import time
import warnings
from dataclasses import replace

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
warnings.filterwarnings("ignore")
FRESH, SEED, FRESH_SEED = 8000, 11, 99
HARMS = {"cadss_40min_ge5": ("cadss_40min", 5.0), "sbp_change_mmhg_ge40": ("sbp_change_mmhg", 40.0),
         "nausea_ge1": ("nausea", 1.0)}


def train(scenario: str, target: str, n: int, quick: bool):
    """The default procedure on *n* courses of *scenario* (no permutations when *quick*)."""
    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.features.tasks import task_of
    from ketamine_response.models.families import SELECTED
    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.evaluation.evaluate import evaluate_all
    from ketamine_response.pipelines.flows.train import build_training_data
    from ketamine_response.pipelines.training.procedure import fit_all
    from ketamine_response.pipelines.training.progress import Progress

    config = load_config(None)
    config = replace(config, families=config.families_for(task_of(target)))
    if quick:
        config = replace(config, evaluation=replace(config.evaluation, permutations=0))
    cohort = validate_table(build_cohort(n, SEED, scenario)[0], scenario)
    start = time.perf_counter()
    data, _, _ = build_training_data(cohort, target, config, False)
    folds, permutation, estimator, _ = fit_all(data, config, Progress())
    evaluation = evaluate_all(data, folds, config, cohort.table)[SELECTED]
    return data, permutation, estimator, evaluation, time.perf_counter() - start


def fresh_features(scenario: str, target: str, columns):
    from ketamine_response.features.build import build_feature_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.features.tasks import parse_target

    cohort, oracle = build_cohort(FRESH, FRESH_SEED, scenario)
    return cohort, oracle, build_feature_table(cohort, parse_target(target)).frame[list(columns)]


def durability(n: int, quick: bool) -> None:
    from sksurv.metrics import concordance_index_censored

    from ketamine_response.models.families import SELECTED
    from ketamine_response.models.survival import relapse_free

    data, permutation, estimator, ev, seconds = train("durability", "time_to_relapse", n, quick)
    cohort, oracle, X = fresh_features("durability", "time_to_relapse", data.X.columns)
    seen = cohort["days_to_relapse"].notna().to_numpy()
    event, days = cohort["relapse_observed"].to_numpy(float)[seen] == 1, cohort["days_to_relapse"].to_numpy(float)[seen]
    fresh = concordance_index_censored(event, days, 1 - relapse_free(estimator, X, (28,))[seen, 0])[0]
    truth = concordance_index_censored(event, days, oracle["relapse_log_hazard"].to_numpy()[seen])[0]
    low, high = ev.ci["c_index"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"| durability | {n} | {len(data.y)} followed, {int(data.y['event'].sum())} relapses | {seconds:.0f} s, "
          f"{peak:.0f} MB | {ev.metrics['c_index']:.3f} ({low:.3f}-{high:.3f}) | {permutation.p[SELECTED]:.3f} | "
          f"{fresh:.3f} | {truth:.3f} | {fresh / truth:.3f} | {ev.metrics['c_index'] - fresh:+.3f} |")


def null(n: int, quick: bool) -> None:
    from ketamine_response.models.families import SELECTED

    data, permutation, _, ev, seconds = train("durability_null", "time_to_relapse", n, quick)
    low, high = ev.ci["c_index"]
    print(f"| durability_null | {n} | {len(data.y)} followed, {int(data.y['event'].sum())} relapses | {seconds:.0f} s | "
          f"{ev.metrics['c_index']:.3f} ({low:.3f}-{high:.3f}) | {permutation.p[SELECTED]:.3f} "
          f"({permutation.b[SELECTED]} permutations) |")


def harm(target: str, n: int) -> None:
    from ketamine_response.pipelines.evaluation.metrics import auroc

    data, _, estimator, ev, seconds = train("durability", target, n, True)
    cohort, oracle, X = fresh_features("durability", target, data.X.columns)
    column, threshold = HARMS[target]
    harmed = (cohort[column].to_numpy(float) >= threshold).astype(float)
    fresh = auroc(harmed, estimator.predict_proba(X)[:, 1])
    truth = auroc(harmed, oracle[f"p_harm_{target}" if target != "nausea_ge1" else "p_harm_nausea"].to_numpy())
    low, high = ev.ci.get("auroc_active", (float("nan"), float("nan")))
    print(f"| {target} | {n} | {int(data.y.sum())} | {seconds:.0f} s | {ev.metrics.get('auroc_active', float('nan')):.3f} "
          f"({low:.3f}-{high:.3f}) | {fresh:.3f} | {truth:.3f} | {fresh / truth:.3f} |")


def main(argv: list[str]) -> None:
    quick = "--quick" in argv
    n = int(next((a for a in argv if a.isdigit()), 1500))
    print("| scenario | courses | analysed | wall, peak RSS | reported C (95% CI) | permutation p | fresh C | oracle C "
          "| ratio | reported - fresh |\n|---|---|---|---|---|---|---|---|---|---|")
    durability(n, quick)
    print("\n| scenario | courses | analysed | wall | reported C (95% CI) | permutation p |\n|---|---|---|---|---|---|")
    null(n, quick)
    print("\n| harm target | courses | harms | wall (no permutations) | reported AUROC within drug (95% CI) | fresh AUROC "
          "| oracle AUROC | ratio |\n|---|---|---|---|---|---|---|---|")
    for target in HARMS:
        harm(target, n)


if __name__ == "__main__":
    main(sys.argv[1:])
