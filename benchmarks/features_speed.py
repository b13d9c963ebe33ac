"""Benchmark: building the feature table (tier 1) for growing cohorts on one core.

``python benchmarks/features_speed.py [N ...]``; the README reports the result.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from ketamine_response.features.build import build_feature_table
from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.features.tasks import parse_target


def main(sizes: list[int]) -> None:
    print(f"{'courses':>10} {'validate s':>11} {'features s':>11} {'features':>9}")
    for n in sizes:
        cohort, _ = build_cohort(n, 1)
        t0 = time.perf_counter()
        table = validate_table(cohort, "synthetic").table
        t1 = time.perf_counter()
        built = build_feature_table(table, parse_target("response_day7"))
        t2 = time.perf_counter()
        print(f"{n:>10,} {t1 - t0:>11.2f} {t2 - t1:>11.2f} {len(built.features):>9}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000])
