"""Benchmark: type-I error of the permutation test on null cohorts, new scheme vs the old one.

``python benchmarks/permutation_type1.py [COHORTS] [--start K] [--old M] [--csv FILE]`` on the 2-core
machine (defaults: 100 cohorts from number 0, the old scheme on all of them); the README reports the
result. Cohort *i* is seeded by *i*, so runs over disjoint ranges add up (``--csv`` keeps one row per
cohort to combine them). Each cohort is a synthetic ``null`` cohort of 300 or 400 courses (response is
independent of every column). A reduced config keeps the run near an hour: 3 outer folds x 1
repeat, 2 inner folds, 1 candidate per family, all five classification families.

* new: the whole procedure re-run per permutation (``pipelines.training.permutation``), up to 19
  permutations, sequential stopping at 5 exceedances.
* old: the scheme this project used before (first-repeat folds refit uncalibrated with the
  candidates chosen on the real labels, 99 permutations, NaN null values dropped from the count),
  kept here only to measure it.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import warnings

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
warnings.filterwarnings("ignore", category=RuntimeWarning)

REDUCED = {"cv": {"design": "kfold", "outer_folds": 3, "outer_repeats": 1, "inner_folds": 2},
           "search": {"budget": 1, "selection_metric": "log_loss"},
           "evaluation": {"permutations": 19, "permutation_stop": 5, "bootstrap": 50}, "n_jobs": 2}


def _config():
    from ketamine_response.pipelines.config import CVConfig, SearchConfig, load_config

    base = load_config()
    return dataclasses.replace(
        base, cv=CVConfig(**REDUCED["cv"]), search=SearchConfig(**REDUCED["search"]),
        evaluation=dataclasses.replace(base.evaluation, **REDUCED["evaluation"]), n_jobs=2)


def old_scheme_p(data, folds, config, b: int = 99) -> float:
    """The previous test, reproduced: fixed candidates, first repeat, uncalibrated, NaN dropped from the count."""
    from ketamine_response.pipelines.evaluation.metrics import auroc
    from ketamine_response.pipelines.training.cv import permute_labels
    from ketamine_response.pipelines.training.nested import family_pipeline

    def statistic(y):
        p = np.full(len(y), np.nan)
        for f in folds:
            if f.split.repeat:
                continue
            model = family_pipeline(f.selected, data, f.params[f.selected], config.seed + f.split.fold)
            model.fit(data.X.iloc[f.split.train], y[f.split.train])
            p[f.split.test] = model.predict_proba(data.X.iloc[f.split.test])[:, 1]
        return auroc(y, p)

    observed = statistic(data.y)
    null = [statistic(permute_labels(data.y, data.patients, data.sites, data.treatments,
                                     np.random.default_rng([config.seed, i]))) for i in range(b)]
    exceed = sum(v >= observed for v in null if not np.isnan(v))
    return (exceed + 1) / (b + 1)


def main(cohorts: int, start: int, old: int, csv: str | None) -> None:
    from joblib import Parallel
    from scipy.stats import binomtest

    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.pipelines.flows.train import build_training_data
    from ketamine_response.pipelines.training.nested import run_nested
    from ketamine_response.pipelines.training.permutation import permutation_test

    config = _config()
    new_p, old_p, ran = [], [], []
    clock = time.perf_counter()
    with Parallel(n_jobs=config.n_jobs) as parallel:
        for i in range(start, start + cohorts):
            cohort, _ = build_cohort(300 + 100 * (i % 2), 5000 + i, "null")
            data = build_training_data(validate_table(cohort, "null"), "response_24h", config, False)[0]
            folds = run_nested(data, config, parallel, explain=False)
            result = permutation_test(data, folds, config, parallel)
            new_p.append(result.p["selected"])
            ran.append(result.b["selected"])
            old_p.append(old_scheme_p(data, folds, config) if i < start + old else np.nan)
            if csv:
                with open(csv, "a") as out:
                    out.write(f"{i},{new_p[-1]},{ran[-1]},{old_p[-1]}\n")
            if (i + 1 - start) % 10 == 0:
                print(f"  {i + 1 - start} cohorts, {time.perf_counter() - clock:.0f} s", file=sys.stderr, flush=True)
    print(f"null cohorts {start}-{start + cohorts - 1} (300-400 courses), reduced config; rejection at alpha = 0.05:")
    for name, p in (("new (whole procedure re-run, <= 19 permutations)", new_p),
                    ("old (fixed candidates, 99 permutations)", old_p)):
        done = np.asarray(p)[~np.isnan(p)]
        if len(done):
            k = int(np.sum(done <= 0.05))
            ci = binomtest(k, len(done)).proportion_ci(0.95)
            print(f"  {name:50s} {k}/{len(done)} = {k / len(done):.3f} (95% CI {ci.low:.3f}-{ci.high:.3f})")
    print(f"  new scheme: median {np.median(ran):.0f} permutations run (0 = prevalence selected everywhere: p = 1); "
          f"{time.perf_counter() - clock:.0f} s in all")


if __name__ == "__main__":
    import argparse

    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_argument("cohorts", type=int, nargs="?", default=100)
    cli.add_argument("--start", type=int, default=0, help="number of the first cohort (its seed is 5000 + number)")
    cli.add_argument("--old", type=int, default=10**9, help="run the old scheme on only the first M cohorts")
    cli.add_argument("--csv", help="append one row per cohort: number, new p, permutations run, old p")
    a = cli.parse_args()
    main(a.cohorts, a.start, a.old, a.csv)
