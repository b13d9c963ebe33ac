"""Benchmark: the default ``train`` (all families, nested CV, all 19 permutations, MLflow logging).

``python benchmarks/train_speed.py [N ...] [--backend spark] [--permutations B]`` on the 2-core machine (default 1,000, 10,000
and 100,000 courses of the ``literature`` scenario); the README reports the result. Each size runs against
a fresh SQLite store in a temporary folder. Reported per size: wall seconds, the peak resident memory of
the whole process tree (this process and its joblib or Spark workers, sampled every 0.2 s from /proc), the
permutation test's share of the time and the permutations run, the outer folds of one run (one repeat
from 1,000 courses in the smaller outcome stratum), the (permutation, fold) tasks one batch holds on this
backend, and the selected family with its headline AUROC (all arms) and AUROC within the drug arm.
``--stages`` adds where the time went: seconds per training stage (validation, nested CV, permutations,
refit, evaluation, explanation, benefit model, its intervals, per-patient intervals, MLflow logging).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
import threading
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("PYSPARK_SUBMIT_ARGS", "--conf spark.ui.showConsoleProgress=false pyspark-shell")
warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)

from ketamine_response.pipelines.training.progress import Progress  # noqa: E402


class Stamps(Progress):
    """When each stage of training began, by its first word."""

    def __init__(self) -> None:
        self.stamps: dict[str, float] = {}  # by the stage's first word
        self.stages: dict[str, float] = {}  # by its first two words ("benefit model", "benefit intervals")

    def stage(self, message: str, total: int = 0) -> None:
        now, words = time.perf_counter(), message.split(":")[0].split()
        self.stamps.setdefault(words[0], now)
        self.stages.setdefault(" ".join(w for w in words[:2] if "/" not in w), now)  # no file paths


def tree_rss_mb(root: int) -> float:
    """Resident memory of *root* and every descendant process, in MB (Linux /proc)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            parents[int(entry)], rss[int(entry)] = int(stat[1]), int(stat[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):  # a process that ended while we looked
            continue
    tree, frontier = {root}, [root]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier and p not in tree]
        tree.update(children)
        frontier = children
    return sum(rss.get(p, 0) for p in tree) / 2**20


class PeakMemory(threading.Thread):
    """Samples :func:`tree_rss_mb` of this process until stopped; ``peak`` is the largest sample."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.done = 0.0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.2):
            self.peak = max(self.peak, tree_rss_mb(os.getpid()))


def print_stages(stamps: dict[str, float], end: float) -> None:
    """Seconds from each stage's start to the next one's (the last: to *end*), in the order they ran."""
    ordered = sorted(stamps.items(), key=lambda item: item[1])
    for (name, began), (_, ended) in zip(ordered, [*ordered[1:], ("end", end)]):
        print(f"{'':>8} {name:<24} {ended - began:>7.1f} s", flush=True)


def main(sizes: list[int], backend: str, permutations: int | None, stages: bool = False) -> None:
    from ketamine_response.features.cohort.reader import write_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.flows.train import run_train
    from ketamine_response.pipelines.training.backend import parallel
    from ketamine_response.pipelines.training.nested import n_outer
    from ketamine_response.pipelines.training.permutation import batch_width

    config = dataclasses.replace(load_config(), backend=backend)
    if permutations is not None:  # a partial measurement (the acceptance figures are with the default 19)
        config = dataclasses.replace(config, evaluation=dataclasses.replace(config.evaluation, permutations=permutations))
    print(f"{'courses':>8} {'with outcome':>12} {'seconds':>8} {'peak MB':>8} {'permutation share':>17} {'B run':>5} "
          f"{'folds':>5} {'tasks/batch':>11} {'selected':>17} {'AUROC':>6} {'drug arm':>8}", flush=True)
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
            cohort, _ = build_cohort(n, 1, "literature")
            path = Path(tmp) / "cohort.csv"
            write_table(cohort, path)
            del cohort
            progress, memory = Stamps(), PeakMemory()
            memory.start()
            start = time.perf_counter()
            result = run_train(path, "response_24h", config, "benchmark", progress=progress)
            end = time.perf_counter()
            seconds = end - start
            memory.done.set()
            memory.join()
        stamps = progress.stamps
        share = (stamps["refitting"] - stamps["permutation"]) / seconds
        folds = n_outer(result.data, config)
        with parallel(config) as runner:
            tasks = batch_width(runner, folds) * folds
        metrics = result.evaluations["selected"].metrics
        print(f"{n:>8,} {len(result.data.y):>12,} {seconds:>8.1f} {memory.peak:>8,.0f} {share:>17.0%} "
              f"{max(result.permutation.b.values()):>5} {folds:>5} {tasks:>11} {result.selected:>17} "
              f"{metrics['auroc']:>6.3f} {metrics.get('auroc_active', float('nan')):>8.3f}", flush=True)
        if stages:
            print_stages(progress.stages, end)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 10_000, 100_000])
    parser.add_argument("--backend", choices=["local", "spark"], default="local")
    parser.add_argument("--permutations", type=int, help="permutations instead of the default config's 19")
    parser.add_argument("--stages", action="store_true", help="also print the seconds each training stage took")
    args = parser.parse_args()
    main(args.sizes, args.backend, args.permutations, args.stages)
