"""Benchmark: the default ``train`` (all families, nested CV, permutation test, MLflow logging).

The permutation test re-runs the whole procedure per permutation; its share of the time is reported,
and so is the benefit model's (the nested learner comparison, roles and benefit SHAP).

``python benchmarks/train_speed.py [N ...]`` on the 2-core machine; the README reports the result.
Each size runs against a fresh SQLite store in a temporary folder.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

from ketamine_response.pipelines.training.progress import Progress

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)


def main(sizes: list[int]) -> None:
    from ketamine_response.features.cohort.reader import write_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.flows.train import run_train

    config = load_config()
    print(f"{'courses':>8} {'with outcome':>12} {'seconds':>8} {'permutation share':>17} {'benefit share':>13} "
          f"{'B run':>5} {'selected':>18} {'AUROC':>6}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
            cohort, _ = build_cohort(n, 1, "literature")
            path = Path(tmp) / "cohort.csv"
            write_table(cohort, path)
            progress = Stamps()
            stamps = progress.stamps
            start = time.perf_counter()
            result = run_train(path, "response_24h", config, "benchmark", progress=progress)
            seconds = time.perf_counter() - start
        share = (stamps["refitting"] - stamps["permutation"]) / seconds
        benefit = (stamps["logging"] - stamps["benefit"]) / seconds if "benefit" in stamps else 0.0
        auc = result.evaluations["selected"].metrics["auroc"]
        print(f"{n:>8,} {len(result.data.y):>12,} {seconds:>8.1f} {share:>17.0%} {benefit:>13.0%} "
              f"{result.permutation.b['selected']:>5} {result.selected:>18} {auc:>6.3f}", flush=True)


class Stamps(Progress):
    """When each stage of training began, by its first word."""

    def __init__(self) -> None:
        self.stamps: dict[str, float] = {}

    def stage(self, message: str, total: int = 0) -> None:
        self.stamps.setdefault(message.split(":")[0].split(" ")[0], time.perf_counter())


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [200, 1000, 3000, 10000])
