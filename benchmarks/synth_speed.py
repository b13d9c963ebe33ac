"""Benchmark: time to generate (and write) synthetic cohorts of growing size on one core.

Run with ``make bench`` or ``python benchmarks/synth_speed.py [N ...]``; the README reports the result.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from ketamine_response.features.cohort.reader import write_table
from ketamine_response.features.synthetic.cohort import build_cohort


def main(sizes: list[int]) -> None:
    build_cohort(1000, 0)  # warm the per-scenario calibration cache
    print(f"{'courses':>10} {'generate s':>11} {'parquet s':>10} {'csv s':>8}")
    for n in sizes:
        t0 = time.perf_counter()
        cohort, _ = build_cohort(n, 1)
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            write_table(cohort, f"{tmp}/c.parquet")
            t2 = time.perf_counter()
            write_table(cohort, f"{tmp}/c.csv")
            t3 = time.perf_counter()
        print(f"{n:>10,} {t1 - t0:>11.2f} {t2 - t1:>10.2f} {t3 - t2:>8.2f}")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10_000, 100_000, 1_000_000])
