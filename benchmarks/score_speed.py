"""Benchmark: streaming ``score`` of a 1,000,000-row Parquet cohort, against LightGBM's own predict.

``python benchmarks/score_speed.py [N]``. Each mode runs in a fresh process so its peak memory
(ru_maxrss) is its own. The model is the LightGBM family (small-data settings, in-fold calibrated: an
ensemble of 3 boosters) fitted on 5,000 synthetic courses, scored twice: as it is, and with the per-patient
interval replicates training gives it (``intervals.replicates`` refits, 3 boosters each), as a model
trained today has. Each reference is the bare ``booster.predict`` of the same boosters on the in-memory
feature matrix (each replicate on its own missing-value fills), with the threads ``score`` predicts with
(``os.cpu_count()``); the plain reference is also timed on one thread, the boosters' stored setting.
"""

from __future__ import annotations

import os
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
PARAMS = {"model__num_leaves": 8, "model__n_estimators": 100, "model__learning_rate": 0.06,
          "model__min_child_samples": 20, "model__reg_lambda": 1.0}


def _model(path: Path, intervals: Path | None = None) -> None:
    """The benchmark model at *path*; with *intervals*, the same model with its interval replicates there too,
    fitted as training fits them (no percentile grids: those need the cross-validation's predictions)."""
    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.models.explain import background_centres
    from ketamine_response.models.wrapper import CohortModel
    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.flows.train import build_training_data
    from ketamine_response.pipelines.training.nested import fit_calibrated
    from ketamine_response.pipelines.training.progress import Progress
    from ketamine_response.pipelines.training.replicates import fit_intervals

    config = load_config()
    cohort, _ = build_cohort(5_000, 3)
    validated = validate_table(cohort, "bench")
    data, built, _ = build_training_data(validated, "response_24h", config, False)
    estimator = fit_calibrated("lightgbm", PARAMS, data, config, 1)
    derivations = tuple(dict.fromkeys(built.dictionary.set_index("feature").loc[list(data.X.columns), "derivation"]))
    model = CohortModel(estimator, "lightgbm", tuple(data.X.columns), derivations, tuple(validated.table.columns),
                        "response_24h", 0.4, (), background_centres(estimator, "lightgbm", data.X))
    path.write_bytes(pickle.dumps(model))
    if intervals is not None:
        model.intervals = fit_intervals(estimator, data, config, Progress())
        intervals.write_bytes(pickle.dumps(model))


def _score(model_path: Path, cohort: Path, out: Path, explain: int) -> None:
    from ketamine_response.pipelines.flows.score import score_file

    model = pickle.loads(model_path.read_bytes())
    start = time.perf_counter()
    summary = score_file(cohort, out, model, "bench", "1", explain=explain, chunk_rows=100_000)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    replicates = len(model.intervals.estimators) if model.intervals is not None else 0
    print(f"score --explain {explain}, {replicates} interval replicates: {summary.read:,} rows in {seconds:.1f} s "
          f"({summary.read / seconds:,.0f} rows/s), peak memory {peak:,.0f} MB")


def _reference(model_path: Path, cohort: Path) -> None:
    import numpy as np
    import pandas as pd

    from ketamine_response.features.cohort.validation import validate_table

    model = pickle.loads(model_path.read_bytes())
    features = model.feature_table(validate_table(pd.read_parquet(cohort), "bench").table)
    ivs = model.intervals
    # (estimator, fills): the selected model on the features as they are, each replicate on its own fills
    fits: list[tuple[Any, dict[str, float]]] = [(model.estimator, {})]
    if ivs is not None:
        fits += [(e, {c: float(v[r]) for c, v in ivs.fills.items()}) for r, e in enumerate(ivs.estimators)]
    threads = (os.cpu_count() or 1,) if ivs is not None else (os.cpu_count() or 1, 1)
    for n in threads:
        seconds, boosters = 0.0, 0
        for estimator, fills in fits:
            matrix = np.asarray(estimator.calibrated_classifiers_[0].estimator[:-1].transform(features.fillna(fills)))
            for calibrated in estimator.calibrated_classifiers_:
                start = time.perf_counter()
                calibrated.estimator[-1].booster_.predict(matrix, num_threads=n)
                seconds, boosters = seconds + time.perf_counter() - start, boosters + 1
        print(f"LightGBM booster.predict, {n} thread(s), on the in-memory feature matrix: {boosters} boosters "
              f"({len(fits) - 1} interval replicates) {seconds:.1f} s ({len(features) / seconds:,.0f} rows/s)")


def _prepare(n: int, tmp: Path) -> None:
    from ketamine_response.features.cohort.reader import write_table
    from ketamine_response.features.synthetic.cohort import build_cohort

    _model(tmp / "model.pkl", tmp / "model_intervals.pkl")
    cohort, _ = build_cohort(n, 9)
    cohort = cohort.drop(columns=[c for c in cohort.columns if c.startswith("madrs_") and c != "madrs_baseline"])
    write_table(cohort, tmp / "cohort.parquet")


def main(n: int) -> None:
    # Every step runs in its own process from this small parent: a child forked from a big parent
    # would inherit its peak resident memory in ru_maxrss.
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        me = [sys.executable, __file__]
        subprocess.run([*me, "prepare", str(n), str(tmp)], check=True)
        for mode, model in (("reference", "model"), ("0", "model"), ("3", "model"),
                            ("reference", "model_intervals"), ("0", "model_intervals")):
            subprocess.run([*me, mode, str(tmp / f"{model}.pkl"), str(tmp / "cohort.parquet"), str(tmp / "out.parquet")],
                           check=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"]:
        _prepare(int(sys.argv[2]), Path(sys.argv[3]))
    elif len(sys.argv) == 5:
        mode, model_path, cohort_path, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
        _reference(model_path, cohort_path) if mode == "reference" else _score(model_path, cohort_path, out, int(mode))
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
