"""Benchmark: one outer fold as a permuted run fits it (inner search of every family, calibrated fits, no SHAP),
and what nested cross-validation selects, on the ``literature`` scenario with the default config.

``OMP_NUM_THREADS=1 python benchmarks/fold_speed.py [N ...]`` (default 1,000 and 10,000 courses): CPU seconds per
fold on one core (the mean of the first folds, after one fold that loads the libraries), then the nested CV's
selections and AUROCs (all arms and within the drug arm) and the family the whole procedure selects on every
course, and the CPU seconds of one LightGBM fit per candidate of the default search on an inner-fold-sized
training set (two thirds of an outer training fold): the floor the permutation test re-runs. The README
reports the figures (its "before" column: the same calls on commit 98db8a0, where the final
selection was ``select(search(...))``).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections import Counter
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
warnings.filterwarnings("ignore")


def lightgbm_fit_seconds(data: Any, rows: Any, config: Any) -> list[float]:
    """CPU seconds of one fit of each LightGBM candidate of the default search on *rows* of *data*."""
    from ketamine_response.models.families import get_family
    from ketamine_response.pipelines.training.nested import family_pipeline

    train = data.take(rows)
    family_pipeline("lightgbm", train, {}, config.seed).fit(train.X, train.y)  # imports and first-call costs
    seconds = []
    for params in get_family("lightgbm").candidates(config.search.budget, config.seed):
        pipeline = family_pipeline("lightgbm", train, params, config.seed)
        start = time.process_time()
        pipeline.fit(train.X, train.y)
        seconds.append(time.process_time() - start)
    return seconds


def main(sizes: list[int], folds_timed: int = 2) -> None:
    from joblib import Parallel

    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.evaluation.evaluate import evaluate_all
    from ketamine_response.pipelines.flows.train import build_training_data
    from ketamine_response.pipelines.training.cv import outer_splits
    from ketamine_response.pipelines.training.nested import fit_selected, run_fold, run_nested

    config = load_config()
    for n in sizes:
        cohort, _ = build_cohort(n, 1, "literature")
        validated = validate_table(cohort, "bench")
        data = build_training_data(validated, "response_24h", config, False)[0]
        splits = outer_splits(data.y, data.patients, data.sites, "kfold", 5, 1, 1)
        run_fold(data, splits[0], config, False)  # imports and first-call costs
        start = time.process_time()
        for split in splits[1:1 + folds_timed]:
            run_fold(data, split, config, False)
        per_fold = (time.process_time() - start) / folds_timed
        with Parallel(n_jobs=config.n_jobs) as parallel:
            folds = run_nested(data, config, parallel, explain=False)
        metrics = evaluate_all(data, folds, config, validated.table)["selected"].metrics
        print(f"{n:,} courses: {per_fold:.2f} CPU s per permuted fold; {len(folds)} outer folds selected "
              f"{dict(Counter(f.selected for f in folds))}, final {fit_selected(data, config)[0]}; AUROC "
              f"{metrics['auroc']:.4f}, drug arm {metrics.get('auroc_active', float('nan')):.4f}", flush=True)
        inner = splits[0].train[: len(splits[0].train) * 2 // 3]
        fits = lightgbm_fit_seconds(data, inner, config)
        print(f"{n:,} courses: one LightGBM fit on {len(inner):,} courses takes {min(fits):.3f}-{max(fits):.3f} CPU s "
              f"(the {len(fits)} candidates)", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10_000])
