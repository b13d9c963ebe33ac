"""Benchmark: do the AUROC intervals cover the procedure's real performance on new patients?

``python benchmarks/auroc_coverage.py [REPEATS] [COURSES]`` (default 30 and 400) on the 2-core
machine; the README reports the result. Each repeat draws a ``literature`` cohort, runs the nested
CV of the default config (no permutations), refits the selected candidate on all courses as
``train`` does, and scores a fresh 10,000-course cohort from the same scenario. The question: how
often does each 95% interval contain that fresh AUROC?

* corrected: the corrected resampled t interval over outer folds (the headline ``auroc_ci_*``);
* bootstrap: the patient bootstrap of the pooled out-of-fold predictions (``auroc_bootstrap_ci_*``),
  the interval this project reported before.
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


def main(repeats: int, courses: int) -> None:
    from joblib import Parallel
    from scipy.stats import binomtest

    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.evaluation.evaluate import add_cv_uncertainty, evaluate
    from ketamine_response.pipelines.evaluation.metrics import auroc
    from ketamine_response.pipelines.flows.train import build_training_data
    from ketamine_response.pipelines.folds import pooled, pooled_threshold
    from ketamine_response.pipelines.training.nested import fit_selected, run_nested

    base = load_config()
    config = dataclasses.replace(base, evaluation=dataclasses.replace(base.evaluation, permutations=0, bootstrap=200))
    fresh_cohort, _ = build_cohort(10_000, 424242, "literature")
    fresh = build_training_data(validate_table(fresh_cohort, "fresh"), "response_24h", config, False)[0]
    hits = {"corrected": 0, "bootstrap": 0}
    widths: dict[str, list[float]] = {"corrected": [], "bootstrap": []}
    start = time.perf_counter()
    with Parallel(n_jobs=config.n_jobs) as parallel:
        for r in range(repeats):
            cohort, _ = build_cohort(courses, 7000 + r, "literature")
            data = build_training_data(validate_table(cohort, "c"), "response_24h", config, False)[0]
            folds = run_nested(data, config, parallel, explain=False)
            p = pooled(data, folds)
            ev = add_cv_uncertainty(evaluate(data.y, p, data.patients, {}, pooled_threshold(data, folds), 200, r),
                                    data, folds, None)
            _, model = fit_selected(data, config)
            truth = auroc(fresh.y, model.predict_proba(fresh.X[data.X.columns])[:, 1])
            for name, key in (("corrected", "auroc"), ("bootstrap", "auroc_bootstrap")):
                low, high = ev.ci[key]
                hits[name] += int(low <= truth <= high)
                widths[name].append(high - low)
            print(f"  repeat {r + 1}: estimate {ev.metrics['auroc']:.3f}, fresh {truth:.3f}, corrected "
                  f"{ev.ci['auroc'][0]:.3f}-{ev.ci['auroc'][1]:.3f}, bootstrap {ev.ci['auroc_bootstrap'][0]:.3f}-"
                  f"{ev.ci['auroc_bootstrap'][1]:.3f} ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    print(f"{repeats} literature cohorts of {courses} courses, default config; the fresh AUROC is the selected "
          f"procedure refit on the cohort and scored on 10,000 new courses:")
    for name in hits:
        ci = binomtest(hits[name], repeats).proportion_ci(0.95)
        print(f"  {name:10s} 95% interval covered it in {hits[name]}/{repeats} = {hits[name] / repeats:.2f} "
              f"(95% CI {ci.low:.2f}-{ci.high:.2f}); median width {np.median(widths[name]):.3f}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:]]
    main(args[0] if args else 30, args[1] if len(args) > 1 else 400)
