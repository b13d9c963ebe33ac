"""Benchmark: ``score`` with the local engine against ``score --engine spark`` on Spark local[2].

``python benchmarks/score_spark_speed.py [N ...]`` (default 1,000 1,000,000 10,000,000 rows). The model is the
one of ``score_speed.py`` (LightGBM family, in-fold calibrated: 3 boosters, 100 trees, 8 leaves, fitted on 5,000
synthetic courses), logged and registered in a throwaway tracking store, so both engines resolve, verify and
load it as ``score`` does. Cohorts are synthetic Parquet files in row groups of 100,000 rows (a row group is
the unit Spark splits a Parquet file by: a file written as one row group is read by one task). Each engine
runs in its own process; Spark's session start is timed apart, then each size is one full ``run_score_spark``
(key pass, validation, model, writing the single output file and the reject file). CPU time counts the
engine's process and its live descendants (Spark's JVM and Python workers): on a shared machine it moves less
with the other load than wall time does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
ROW_GROUP = 100_000
TILE = 1_000_000  # larger cohorts repeat a 1,000,000-row one with new patient ids (memory stays flat)


def _register(tmp: Path) -> str:
    import pickle

    import mlflow

    from benchmarks.score_speed import _model
    from ketamine_response.features.synthetic.cohort import input_example
    from ketamine_response.pipelines import registry, store

    _model(tmp / "model.pkl")
    model = pickle.loads((tmp / "model.pkl").read_bytes())
    with mlflow.start_run(experiment_id=store.open_experiment("bench")):
        info, digest = registry.log_model(model, input_example(model.training_columns))
    registry.register(info.model_uri, "bench-score", tags=digest)
    return "models:/bench-score@champion"


def _cohort(n: int, path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from ketamine_response.features.synthetic.cohort import build_cohort

    cohort, _ = build_cohort(min(n, TILE), 9)
    cohort = cohort.drop(columns=[c for c in cohort.columns if c.startswith("madrs_") and c != "madrs_baseline"])
    with pq.ParquetWriter(path, pa.Table.from_pandas(cohort.head(0), preserve_index=False).schema) as writer:
        for k in range(0, n, TILE):
            tile = cohort.head(n - k).assign(patient_id=cohort["patient_id"].astype(str) + f"-{k // TILE}")
            writer.write_table(pa.Table.from_pandas(tile, preserve_index=False), row_group_size=ROW_GROUP)


def _tree_cpu() -> float:
    """CPU seconds (user + system) of this process and its descendants (Spark's JVM and Python workers),
    from /proc: a measure the other load on a shared machine does not inflate as it does wall time."""
    tick, parents, cpu = os.sysconf("SC_CLK_TCK"), {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        parents[int(entry.name)], cpu[int(entry.name)] = int(fields[1]), sum(map(int, fields[11:15])) / tick  # and reaped children's
    mine, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        mine.add(pid)
        todo += [child for child, parent in parents.items() if parent == pid and child not in mine]
    return sum(cpu.get(pid, 0.0) for pid in mine)


def _engine(engine: str, uri: str, cohorts: list[Path], out: Path) -> None:
    from ketamine_response.pipelines.flows.score import run_score
    from ketamine_response.pipelines.flows.score_spark import run_score_spark
    from ketamine_response.pipelines.spark import session

    if engine == "spark":
        start = time.perf_counter()
        spark = session(None)
        print(f"spark session start ({spark.sparkContext.master}): {time.perf_counter() - start:.1f} s", flush=True)
    # the first size again at the end: the first run of a process also pays for imports, the model's first load
    # and (Spark) starting the Python workers
    lines = []
    for i, cohort in enumerate([*cohorts, cohorts[0]]):
        start, cpu = time.perf_counter(), _tree_cpu()
        summary = run_score_spark(cohort, out, uri) if engine == "spark" else run_score(cohort, out, uri)
        seconds, cpu = time.perf_counter() - start, _tree_cpu() - cpu
        when = " (first run)" if i == 0 else " (again)" if i == len(cohorts) else ""
        lines.append(f"| {summary.read:,}{when} | {engine} | {seconds:.1f} s | {summary.read / seconds:,.0f} | {cpu:.1f} s |")
    print("\n".join(lines), flush=True)  # after Spark's progress bars


def main(sizes: list[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        me = [sys.executable, __file__]
        subprocess.run([*me, "prepare", str(tmp), *map(str, sizes)], check=True)
        uri = (tmp / "uri").read_text()
        cohorts = [str(tmp / f"cohort-{n}.parquet") for n in sizes]
        print("| rows | engine | time | rows/s | CPU time |\n|---|---|---|---|---|", flush=True)
        for engine in ("local", "spark"):
            subprocess.run([*me, engine, uri, str(tmp / "scores.parquet"), *cohorts], check=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["prepare"]:
        root = Path(sys.argv[2])
        (root / "uri").write_text(_register(root))
        for size in map(int, sys.argv[3:]):
            _cohort(size, root / f"cohort-{size}.parquet")
    elif sys.argv[1:2] in (["local"], ["spark"]):
        _engine(sys.argv[1], sys.argv[2], [Path(p) for p in sys.argv[4:]], Path(sys.argv[3]))
    else:
        main([int(a) for a in sys.argv[1:]] or [1_000, 1_000_000, 10_000_000])
