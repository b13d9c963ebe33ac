"""Benchmark: the default ``train`` on null cohorts must find nothing.

``python benchmarks/null_default.py [N ...] [--seeds K]`` (default 400 and 800 courses, seed 0 only)
on the 2-core machine; the README reports the result. Each size trains the shipped default config on a
synthetic ``null`` cohort (response independent of every column) made with ``synth``'s default seed
0 (and seeds 1..K-1 with ``--seeds K``) against a fresh SQLite store, and prints the selected
procedure's AUROC with its interval, the permutation p and the permutations run.
"""

from __future__ import annotations

import os
import sys
import tempfile
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
warnings.filterwarnings("ignore", message=".*Any type hint is inferred", category=UserWarning)


def main(sizes: list[int], seeds: int) -> None:
    from ketamine_response.features.cohort.reader import write_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.flows.train import run_train

    config = load_config()
    print(f"{'courses':>8} {'seed':>4} {'selected':>18} {'AUROC (95% CI)':>22} {'perm p':>7} {'B':>3} {'consistent features':>20}")
    for n, seed in ((n, seed) for seed in range(seeds) for n in sizes):
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
            cohort, _ = build_cohort(n, seed, "null")
            path = Path(tmp) / "null.csv"
            write_table(cohort, path)
            result = run_train(path, "response_24h", config, "benchmark-null")
        ev = result.evaluations["selected"]
        low, high = ev.ci["auroc"]
        auc = f"{ev.metrics['auroc']:.3f} ({low:.3f}-{high:.3f})"
        print(f"{n:>8,} {seed:>4} {result.selected:>18} {auc:>22} {result.permutation.p['selected']:>7.3f} "
              f"{result.permutation.b['selected']:>3} {int(result.shap.importance['consistent'].sum()):>20}", flush=True)


if __name__ == "__main__":
    args = sys.argv[1:]
    k = int(args[args.index("--seeds") + 1]) if "--seeds" in args else 1
    sizes = [int(a) for i, a in enumerate(args) if a != "--seeds" and (i == 0 or args[i - 1] != "--seeds")]
    main(sizes or [400, 800], k)
