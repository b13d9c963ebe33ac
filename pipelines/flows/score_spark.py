"""The ``score --engine spark`` flow: the local engine's scoring, with validation and the model run as Spark tasks.

Same inputs, outputs, row numbers, reject file and exit codes as :mod:`ketamine_response.pipelines.flows.score`:

1. On the driver, before Spark starts: the output paths, the file's header and first row (the local reader's
   file-level checks), the mapping, the required columns, and the model: its registry version is resolved
   and its files are copied and checked against the SHA-256 recorded when it was logged
   (:func:`ketamine_response.pipelines.registry.verified_copy`), before anything is unpickled.
2. A first Spark pass reads the key columns and finds duplicated keys across the whole file
   (``groupBy(patient_id, treatment)``, more than one row: every one of them is rejected).
3. The main pass validates each Arrow batch with the project's validator and adds the model's per-arm
   columns, warnings and reasons (:mod:`ketamine_response.pipelines.flows.score_spark_tasks`); the probability is the logged
   model's pyfunc run as a Spark UDF built from the verified copy
   (:func:`ketamine_response.pipelines.registry.spark_udf`), over the validated cells of the valid rows.
4. The validated batches are kept on disk (persisted) and read twice: Spark writes the scored rows (after
   spark_udf) and the rejected rows as Parquet parts into a hidden folder beside the output, rather than
   collecting them to the driver; the driver merges the parts in row order, 100,000 rows in memory at a
   time, into the single output file and ``<stem>.rejected.csv``, written aside and renamed as the local
   engine does. The folder is removed whatever happens, and a failed run leaves no output. Input and
   output folders must be reachable by the executors (local[N], or storage shared with the cluster).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import warnings
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from ketamine_response.features.cohort.formats import FORMATS, Header, SparkRead, format_of
from ketamine_response.features.cohort.mapping import ColumnMapping, apply_mapping, load_mapping
from ketamine_response.features.cohort.reader import OutputSink, iter_cohort_chunks
from ketamine_response.features.cohort.schema import KEY
from ketamine_response.features.cohort.validation import duplicate_keys, validate_table
from ketamine_response.features.errors import CohortFileError, UsageError
from ketamine_response.features.tasks import TASKS
from ketamine_response.pipelines.flows.score import (
    Scorer,
    ScoreSummary,
    all_caveats,
    check_paths,
    empty_scores,
    rejected_path_for,
    with_thresholds,
)
from ketamine_response.pipelines.flows.score_inputs import is_blind, model_inputs, require_keys
from ketamine_response.pipelines.flows.score_sidecar import Sidecar, blank_predictions, check_threshold, label_column, sidecar_text
from ketamine_response.pipelines.flows.score_spark_tasks import columnar_rows, key_task, score_task, text_lines

log = logging.getLogger(__name__)
# every column a model writes that is not the cohort's own: each task's predictions, and the model's name
_PREDICTED = (*dict.fromkeys(c for task in TASKS.values() for c in task.score_columns), "model_name", "model_version")
_COHORT_ERROR = re.compile(r"CohortFileError: ([^\n]*)")
_BATCH_ROWS = "spark.sql.execution.arrow.maxRecordsPerBatch"


def run_score_spark(cohort_path: str | Path, out: str | Path, model_uri: str | None, explain: int = 0,
                    mapping_path: str | Path | None = None, master: str | None = None,
                    threshold: float | None = None) -> ScoreSummary:
    """Score *cohort_path* with the logged model *model_uri* on Spark (*master*: default ``$SPARK_MASTER`` or
    local[2]); the same files and counts as :func:`ketamine_response.pipelines.flows.score.run_score`."""
    from ketamine_response.pipelines import registry, store

    cohort_path, out = Path(cohort_path), Path(out)
    check_threshold(threshold)
    check_paths(cohort_path, out, mapping_path)
    read = _spark_read(cohort_path)
    header = _check_readable(cohort_path, read)
    mapping = load_mapping(mapping_path)
    store.open_store()
    uri, name, version = registry.resolve_model(model_uri)
    pyfunc = registry.load_model(uri)  # checked against the recorded SHA-256 before unpickling
    model = pyfunc.unwrap_python_model()
    predicted = model.task.columns_for(model.target)  # the prediction and its call; its interval columns are extras
    if len(predicted) > 2:  # the Spark UDF returns one prediction per course
        raise UsageError(f"{name} version {version} predicts {', '.join(predicted)}: the Spark engine scores "
                         "models with one prediction per course; score it with --engine local.")
    blind = is_blind(cohort_path, mapping, model)
    require_keys(cohort_path, mapping, blind)
    if getattr(model, "extra_features", ()):
        raise UsageError(f"model {uri} uses extra features declared by a column mapping ({', '.join(model.extra_features)}); "
                         "its MLflow pyfunc, which the Spark engine runs, validates without that mapping and would "
                         "score them as missing. Score with --engine local.")
    valid = _validated_schema(cohort_path, header.columns, mapping, blind)
    spark = _session(master)
    with _pandas3_note():
        udf = None if blind else registry.spark_udf(spark, uri)  # from its own verified copy of the files
    signature = pyfunc.metadata.get_input_schema()  # the columns the pyfunc takes (it warns about others)
    inputs = signature.input_names() if signature is not None else list(valid)
    scorer = with_thresholds([Scorer(model, name, version)], threshold)[0]
    job = dict(path=cohort_path, read=read, header=header, mapping=mapping, blind=blind, explain=explain, valid=valid,
               inputs=[c for c in inputs if c in valid], used=model_inputs([model]))
    return _score(spark, job, scorer, udf, out)


def _spark_read(path: Path) -> SparkRead:
    """How Spark reads *path*'s format; a format it cannot read is a usage error naming the local engine."""
    read = format_of(path).spark
    if read is None:
        readable = ", ".join(f.name for f in FORMATS if f.spark is not None)
        raise UsageError(f"{path}: the Spark engine reads {readable} files only. Score this file with --engine local, "
                         "or save it in one of those formats.")
    return read


def _check_readable(path: Path, read: SparkRead) -> Header:
    """The header, after the local reader's file-level checks on it and the first row (missing, a folder,
    empty, compressed, UTF-16, no data rows...): the same messages, before Spark or the model start."""
    header = format_of(path).header(path) if path.is_file() else Header([])  # no file: the chunk reader says so
    # a columnar file is proven readable by one column; a text file's first line is checked whole
    chunks = iter_cohort_chunks(path, 1, header.columns[:1] if read.parse_lines is None else None)
    try:
        next(chunks)
    finally:
        chunks.close()
    return header


def _validated_schema(path: Path, header: list[str], mapping: ColumnMapping, blind: bool) -> dict[str, str]:
    """The validated table's columns and Spark types; an absent required column is the local engine's exit 2."""
    empty = apply_mapping(pd.DataFrame(columns=header, dtype=object), mapping, str(path))
    if blind:
        empty = empty.assign(treatment=pd.Series(dtype=object))
    table = validate_table(empty, str(path), mapping, check_duplicates=False).table
    return {str(c): "double" if pd.api.types.is_float_dtype(t) else "string" for c, t in table.dtypes.items()}


def _session(master: str | None) -> Any:
    from ketamine_response.pipelines.spark import session

    with _pandas3_note():
        return session(master)


@contextlib.contextmanager
def _pandas3_note() -> Iterator[None]:
    with warnings.catch_warnings():
        # pyspark 4.3 warns that it does not yet fully support pandas 3 whenever it builds a pandas UDF, and when a
        # session starts after pandas was imported (fatal under -W error). The conversions used here (text,
        # floats, longs, bytes) are checked cell for cell against the local engine by test_score_spark.py.
        warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
        yield


def _rows(spark: Any, read: SparkRead, path: Path, columns: list[str]) -> Any:
    """The file as Spark reads its format: a columnar file's *columns*, or a text file's lines (every column)."""
    if read.parse_lines is None:
        return columnar_rows(spark, str(path), columns, read.source)
    return text_lines(spark, str(path), read.source)


def _duplicates(spark: Any, source: Any, task: Callable) -> pd.DataFrame:
    """Duplicate-key problems across the file, the local engine's messages (both rows of a key rejected)."""
    from pyspark.sql import functions as F

    keys = source.mapInPandas(task, "row long, patient_id string, treatment string")
    groups = (keys.where(F.col("patient_id").isNotNull() & F.col("treatment").isNotNull())
              .groupBy("patient_id", "treatment").agg(F.collect_list("row").alias("rows"))
              .where(F.size("rows") > 1).collect())
    pairs = sorted((row, g["patient_id"], g["treatment"]) for g in groups for row in g["rows"])
    index = pd.Index([p[0] for p in pairs], name="row", dtype="int64")
    return duplicate_keys({k: pd.Series([p[i + 1] for p in pairs], index=index, dtype="str") for i, k in enumerate(KEY)})


def _key_problems(spark: Any, job: dict[str, Any], source: Any) -> pd.DataFrame:
    """The duplicate-key problems of the whole file (none for a blind file: it has no course key)."""
    if job["blind"]:
        return pd.DataFrame(columns=["row", "column", "value", "problem"])
    path, read, header = job["path"], job["read"], job["header"]
    inverse = {v: k for k, v in job["mapping"].columns.items()}
    key_columns = [inverse.get(k, k) for k in KEY]
    if read.parse_lines is None:  # a columnar file: read only the key columns
        source, header = _rows(spark, read, path, key_columns), Header(key_columns)
    return _duplicates(spark, source, partial(key_task, parse=read.parse_lines, header=header, key_columns=key_columns,
                                              source=str(path)))


def _stage_schema(source: Any, job: dict[str, Any], extras: list[str]) -> str:
    """The Spark schema of what :func:`score_task` returns for each row."""
    if job["read"].parse_lines is None:  # a columnar file's cells keep the types Spark read
        kinds = [f.dataType.simpleString() for f in source.schema.fields if f.name.startswith("c")]
    else:
        kinds = ["string"] * len(job["header"].columns)
    return ", ".join(["row long", "problems string", *(f"c{i} {t}" for i, t in enumerate(kinds)),
                      *(f"v{j} {t}" for j, t in enumerate(job["valid"].values())),
                      *(f"e{k} {'string' if c == 'warnings' or c.endswith(('_feature', '_value')) else 'double'}"
                        for k, c in enumerate(extras))])


def _write_parts(spark: Any, job: dict[str, Any], scorer: Scorer, udf: Any, columns: list[str], tmp: Path,
                 held: list[Any]) -> None:
    """Validate and score in Spark tasks; write the scored and the rejected rows as Parquet parts under *tmp*.
    What Spark keeps for the job (broadcasts, the persisted stage) goes into *held* for the caller to release."""
    from pyspark import StorageLevel, cloudpickle
    from pyspark.sql import functions as F

    header, valid, model = job["header"], job["valid"], scorer.model
    extras = [c for c in columns if c not in (*_PREDICTED, *KEY)]
    source = _rows(spark, job["read"], job["path"], header.columns)
    duplicates = _key_problems(spark, job, source)
    held += [spark.sparkContext.broadcast(cloudpickle.dumps(model)), spark.sparkContext.broadcast(duplicates)]
    task = partial(score_task, parse=job["read"].parse_lines, header=header, source=str(job["path"]), mapping=job["mapping"],
                   blind=job["blind"], explain=job["explain"], model=(secrets.token_hex(8), held[0]), duplicates=held[1],
                   valid_columns=list(valid), extra_columns=extras, used=job["used"])
    stage = source.mapInPandas(task, _stage_schema(source, job, extras)).persist(StorageLevel.DISK_ONLY)
    held.append(stage)  # read twice below: scored, rejected rows
    v = {c: F.col(f"v{j}") for j, c in enumerate(valid)}
    picked = {**{c: F.col(f"e{k}") for k, c in enumerate(extras)}, "patient_id": v["patient_id"],
              "treatment": v["treatment"], "model_name": F.lit(scorer.name), "model_version": F.lit(scorer.version)}
    scored = stage.where(F.col("problems").isNull())
    if not job["blind"]:
        scored = scored.withColumn("_p", udf(F.struct(*[v[c].alias(c) for c in job["inputs"]])))
        p = F.col("_p")
        # the prediction, then the call at the stated threshold (none without one); its interval columns come
        # from the tasks, as extras
        picked[model.task.columns_for(model.target)[0]] = p
        label = label_column(model)
        if label is not None and scorer.threshold is not None:
            picked[label] = F.when(F.isnan(p) | p.isNull(), None).otherwise((p >= scorer.threshold).cast("long"))
    scored.select("row", *[picked[c].alias(c) for c in columns]).write.parquet(str(tmp / "scored"))
    stage.where(F.col("problems").isNotNull()).select(
        "row", *[F.col(f"c{i}") for i in range(len(header.columns))], "problems").write.parquet(str(tmp / "rejected"))


def _score(spark: Any, job: dict[str, Any], scorer: Scorer, udf: Any, out: Path) -> ScoreSummary:
    header, model, name, version = job["header"].columns, scorer.model, scorer.name, scorer.version
    empty = empty_scores(model, job["explain"], job["blind"], scorer.threshold)
    columns, label = empty.columns.tolist(), label_column(model)
    tmp = out.with_name(f".{out.name}.{os.getpid()}-{secrets.token_hex(4)}.spark")
    scored_sink, rejected_sink = OutputSink(out), OutputSink(rejected_path_for(out))
    held: list[Any] = []
    batch_rows = sidecar = None
    try:
        tmp.mkdir()  # a missing or read-only output folder fails here, before Spark writes (or creates) anything
        # Arrow batches of the local engine's chunk size (Spark's default, 10,000, makes the model's per-call
        # overhead dominate); set for this job only
        batch_rows = spark.conf.get(_BATCH_ROWS)
        spark.conf.set(_BATCH_ROWS, "100000")
        sidecar = Sidecar(out, sidecar_text([scorer], columns, job["path"]))
        with _pandas3_note():
            _write_parts(spark, job, scorer, udf, columns, tmp, held)
        blank = [0]

        def shaped(frame: pd.DataFrame) -> pd.DataFrame:
            blank[0] += blank_predictions(frame, [model], job["blind"])
            return frame.drop(columns="row").astype({c: t for c, t in ((label, "Int64"), ("warnings", object)) if c in frame})

        n_scored = _merge(tmp / "scored", scored_sink, shaped)
        n_rejected = _merge(tmp / "rejected", rejected_sink, lambda f: f.set_axis(["row", *header, "problems"], axis=1))
        if not scored_sink.started:
            scored_sink.write(empty)
        if not rejected_sink.started:
            rejected_sink.write(pd.DataFrame(columns=["row", *header, "problems"]))
        scored_sink.close()
        rejected_sink.close()
        sidecar.close()
    except BaseException as exc:
        scored_sink.discard()
        rejected_sink.discard()
        if sidecar is not None:
            sidecar.discard()
        if isinstance(exc, OSError):  # a full disk, a missing or read-only folder: the user can fix it
            raise CohortFileError(f"{out}: cannot be written ({exc.strerror or exc}). Check that the folder exists, "
                                  "is writable and has free space; nothing was left behind.") from None
        found = _COHORT_ERROR.search(str(exc)) if not isinstance(exc, CohortFileError) else None
        if found:  # a file-level problem met inside a Spark task: the message the local engine gives
            raise CohortFileError(found[1]) from None
        raise
    finally:
        if batch_rows is not None:
            spark.conf.set(_BATCH_ROWS, batch_rows)
        for value in reversed(held):  # the stage, then the broadcasts
            value.unpersist()
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("scored %s on Spark: read %d, scored %d, rejected %d", job["path"], n_scored + n_rejected, n_scored, n_rejected)
    return ScoreSummary(n_scored + n_rejected, n_scored, n_rejected, out, rejected_path_for(out), name, version,
                        caveats=all_caveats([scorer]), blank=blank[0])


def _merge(folder: Path, sink: OutputSink, shape: Callable[[pd.DataFrame], pd.DataFrame]) -> int:
    """Append Spark's Parquet parts to *sink* in row order, 100,000 rows in memory at a time.

    A part is one task's rows, in the order the task read them: a contiguous run of the file. Parts go in
    the order of their first row; rows that do not increase throughout stop the run (a bug, not data)."""
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    parts = []
    for part in folder.glob("part-*.parquet"):
        rows = pq.read_table(part, columns=["row"])["row"]
        if len(rows):
            parts.append((pc.min(rows).as_py(), part))
    count, last = 0, 0
    for _, part in sorted(parts):
        for batch in pq.ParquetFile(part).iter_batches(batch_size=100_000):
            frame = batch.to_pandas()
            rows = frame["row"].to_numpy()
            if rows[0] <= last or (np.diff(rows) <= 0).any():
                raise RuntimeError(f"Spark's parts under {folder} are not in row order")
            last = rows[-1]
            sink.write(shape(frame))
            count += len(frame)
    return count
