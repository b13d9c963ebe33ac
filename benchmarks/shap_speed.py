"""Benchmark: cost of SHAP explanations.

1. Explaining 100,000 courses with a fitted LightGBM family vs LightGBM's own
   ``predict(pred_contrib=True)`` on the same feature matrix (the reference TreeSHAP).
2. Out-of-fold SHAP inside one outer fold of a 10,000-course cohort vs the fold's fitting time.

``python benchmarks/shap_speed.py``; the README reports the result.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _timed(func, *args):
    start = time.perf_counter()
    out = func(*args)
    return out, time.perf_counter() - start


def main() -> None:
    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.models.explain import explain
    from ketamine_response.models.families import get_family
    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.flows.train import build_training_data
    from ketamine_response.pipelines.training.cv import inner_splits, outer_splits
    from ketamine_response.pipelines.training.nested import fit_searched, search

    config = load_config()
    cohort, _ = build_cohort(10_000, 1)
    data, _, _ = build_training_data(validate_table(cohort, "bench"), "response_24h", config, False)
    params = {"model__num_leaves": 8, "model__n_estimators": 200, "model__learning_rate": 0.06,
              "model__min_child_samples": 20, "model__reg_lambda": 1.0}
    model = get_family("lightgbm").pipeline(tuple(data.X.columns), data.domains, params, 1).fit(data.X, data.y)
    big = data.X.sample(100_000, replace=True, random_state=1)
    features = model[:-1].transform(big)
    _, reference = _timed(model[-1].booster_.predict, features, 0, None, False, False, True)
    _, ours = _timed(explain, model, "lightgbm", data.X, big)
    print(f"100,000 courses, LightGBM (200 trees, 8 leaves, depth 3): pred_contrib {reference:.2f} s, "
          f"explain {ours:.2f} s, ratio {ours / reference:.2f}")

    split = outer_splits(data.y, data.patients, data.sites, "kfold", 5, 1, 1)[0]
    train, test = data.take(split.train), data.take(split.test)
    inner = inner_splits(train.y, train.patients, config.cv.inner_folds, 1)
    best, search_s = _timed(search, train, config, 1, inner)
    fitted = {}
    fit_s = 0.0
    for family in config.families:
        fitted[family], seconds = _timed(fit_searched, family, best[family], train, config, 1, inner)
        fit_s += seconds
    shap_s = sum(_timed(explain, fitted[f], f, train.X, test.X)[1] for f in config.families if f != "prevalence")
    total = search_s + fit_s
    print(f"one outer fold of 10,000 courses: search + fits {total:.1f} s; out-of-fold SHAP of every family "
          f"{shap_s:.2f} s ({100 * shap_s / total:.1f}% of the fold; training explains only the selected one)")


if __name__ == "__main__":
    main()
