"""Benchmark: the default ``train`` on null cohorts must find nothing.

``python benchmarks/null_default.py [N ...]`` (default 400 and 800 courses) on the 2-core machine;
the README reports the result. Each size trains the shipped default config on a synthetic ``null``
cohort (response independent of every column) against a fresh SQLite store and prints the
selected procedure's AUROC with its interval, the permutation p and the permutations run.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)


def main(sizes: list[int]) -> None:
    from features.cohort.reader import write_table
    from features.synthetic.cohort import build_cohort
    from pipelines.config import load_config
    from pipelines.flows.train import run_train

    config = load_config()
    print(f"{'courses':>8} {'selected':>18} {'AUROC (95% CI)':>22} {'perm p':>7} {'B':>3} {'consistent features':>20}")
    for n in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
            cohort, _ = build_cohort(n, 31, "null")
            path = Path(tmp) / "null.csv"
            write_table(cohort, path)
            result = run_train(path, "response_24h", config, "benchmark-null")
        ev = result.evaluations["selected"]
        low, high = ev.ci["auroc"]
        auc = f"{ev.metrics['auroc']:.3f} ({low:.3f}-{high:.3f})"
        print(f"{n:>8,} {result.selected:>18} {auc:>22} {result.permutation.p['selected']:>7.3f} "
              f"{result.permutation.b['selected']:>3} {int(result.shap.importance['consistent'].sum()):>20}", flush=True)


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [400, 800])
