"""Benchmark: ``train`` with the local backend (joblib worker processes) vs the Spark backend (joblibspark).

Both run the whole ``train`` flow (nested CV, permutation test, refit, evaluation, SHAP, benefit model,
MLflow logging) on the same synthetic cohort with the same config, each into a fresh SQLite store;
only ``backend`` differs. Reported per run: total seconds, the seconds of the distributed stages (the
outer folds and permutations; the benefit model's outer folds), and whether the results are identical
(selected family, every family's AUROC, every permutation p-value).

The Spark session (``$SPARK_MASTER``, default local[2]) is started once before timing; its start-up is
reported on its own. Each backend's workers are warmed first (imports), so neither run pays for them.
``load`` is the machine's 5-minute load average when the run ended (other work on a shared machine
slows both backends alike; on 2 cores, anything above 2 means the runs shared the CPUs).

``python benchmarks/train_spark_speed.py [N ...] [--config NAME] [--permutations B]`` (default: 200 and
3000 courses, config ``train``); ``--overhead`` times only empty tasks that carry each cohort, the
backend's own cost per task. The README reports the results.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Spark's console progress bar would interleave with the table
os.environ.setdefault("PYSPARK_SUBMIT_ARGS", "--conf spark.ui.showConsoleProgress=false pyspark-shell")
warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)

from ketamine_response.pipelines.training.progress import Progress  # noqa: E402


class Stamps(Progress):
    """When each stage of training began, by its first word."""

    def __init__(self) -> None:
        self.stamps: dict[str, float] = {}

    def stage(self, message: str, total: int = 0) -> None:
        self.stamps.setdefault(message.split(":")[0].split(" ")[0], time.perf_counter())


def _warm() -> int:
    """Imports a worker needs for a fold (run once per worker before timing)."""
    import lightgbm  # noqa: F401
    import shap  # noqa: F401

    import ketamine_response.models.benefit
    import ketamine_response.pipelines.training.nested  # noqa: F401

    return os.getpid()


def warm(config: Any) -> None:
    from joblib import delayed

    from ketamine_response.pipelines.training.backend import parallel

    with parallel(config) as runner:
        runner(delayed(_warm)() for _ in range(8))


def _nothing(data: Any = None) -> int:
    return 0


def dispatch_overhead(config: Any, data: Any, tasks: int = 20) -> float:
    """Seconds per task of *tasks* empty tasks that each carry *data* (as a fold task carries the
    cohort), at the backend's parallelism: the price of the backend itself, without the fitting."""
    from joblib import delayed

    from ketamine_response.pipelines.training.backend import parallel

    with parallel(config) as runner:
        start = time.perf_counter()
        runner(delayed(_nothing)(data) for _ in range(tasks))
        return (time.perf_counter() - start) / tasks


def outcome(result: Any) -> tuple[Any, ...]:
    """What must not depend on the backend."""
    return (result.selected, {f: e.metrics["auroc"] for f, e in result.evaluations.items()},
            dict(result.permutation.p), dict(result.permutation.b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[200, 3000])
    parser.add_argument("--config", default="train", help="training config (default train)")
    parser.add_argument("--permutations", type=int, help="override evaluation.permutations")
    parser.add_argument("--backends", default="local,spark")
    parser.add_argument("--overhead", action="store_true", help="only time empty tasks carrying each cohort")
    args = parser.parse_args()

    from ketamine_response.features.cohort.reader import write_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.flows.train import run_train
    from ketamine_response.pipelines.training.backend import spark_session

    config = load_config(args.config)
    if args.permutations is not None:
        config = dataclasses.replace(config, evaluation=dataclasses.replace(config.evaluation, permutations=args.permutations))
    backends = args.backends.split(",")
    if "spark" in backends:
        start = time.perf_counter()
        spark = spark_session()
        spark.sparkContext.setLogLevel("ERROR")
        print(f"Spark session {spark.sparkContext.master} (default parallelism "
              f"{spark.sparkContext.defaultParallelism}) started in {time.perf_counter() - start:.1f} s", flush=True)
    for backend in backends:
        warm(dataclasses.replace(config, backend=backend))
    if args.overhead:
        from ketamine_response.features.cohort.validation import validate_table
        from ketamine_response.pipelines.flows.train import build_training_data

        print(f"{'courses':>8} " + " ".join(f"{b + ' s/task':>14}" for b in backends), flush=True)
        for n in args.sizes:
            data = build_training_data(validate_table(build_cohort(n, 1, "literature")[0], "c"), "response_24h",
                                       config, False)[0]
            per_task = [dispatch_overhead(dataclasses.replace(config, backend=b), data) for b in backends]
            print(f"{n:>8,} " + " ".join(f"{t:>14.3f}" for t in per_task), flush=True)
        return
    c = config
    print(f"config {args.config}: {c.cv.outer_folds} folds x {c.cv.outer_repeats} repeats, inner {c.cv.inner_folds}, "
          f"budget {c.search.budget}, {len(c.families)} families, up to {c.evaluation.permutations} permutations, "
          f"n_jobs {c.n_jobs} (local)", flush=True)
    print(f"{'courses':>8} {'backend':>7} {'total s':>8} {'folds+perms s':>13} {'benefit s':>9} {'B run':>5} "
          f"{'selected':>18} {'AUROC':>6} {'same':>5} {'load':>5}", flush=True)
    for n in args.sizes:
        cohort, _ = build_cohort(n, 1, "literature")
        first = None
        for backend in backends:
            with tempfile.TemporaryDirectory() as tmp:
                os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
                path = Path(tmp) / "cohort.csv"
                write_table(cohort, path)
                progress = Stamps()
                start = time.perf_counter()
                result = run_train(path, "response_24h", dataclasses.replace(config, backend=backend), "benchmark",
                                   progress=progress)
                seconds = time.perf_counter() - start
            s = progress.stamps
            folds = s["refitting"] - s["nested"]
            benefit = s["logging"] - s["benefit"] if "benefit" in s else 0.0
            first = first or repr(outcome(result))  # repr: exact floats, and NaN equals NaN
            same = "yes" if repr(outcome(result)) == first else "NO"
            print(f"{n:>8,} {backend:>7} {seconds:>8.1f} {folds:>13.1f} {benefit:>9.1f} "
                  f"{result.permutation.b['selected']:>5} {result.selected:>18} "
                  f"{result.evaluations['selected'].metrics['auroc']:>6.3f} {same:>5} {os.getloadavg()[1]:>5.1f}", flush=True)


if __name__ == "__main__":
    main()
