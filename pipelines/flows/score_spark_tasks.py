"""What ``score --engine spark`` runs inside Spark tasks, and how it numbers the rows it reads.

How a file is read is its format's :class:`~ketamine_response.features.cohort.formats.SparkRead`. Rows keep
the local engine's numbers (1 = first data row). A columnar file (Parquet) is read by Spark, its rows
carrying Spark's ``_metadata.row_index``. A text file (CSV) is read as lines (Spark's text source keeps
blank lines, which the local reader keeps as rows): each line's number is its partition's offset (from
per-partition line counts) plus its place in the partition, whose lines are consecutive in the file; each
Arrow batch of lines is then parsed by the format's ``parse_lines``, with the local reader's options, so
a cell reads exactly as it does locally.

Each task applies the local engine's own functions to its batch: the project's validator
(:func:`~features.cohort.validation.validate_table`), the duplicate-key problems found across the
whole file beforehand, the rejected-row text of :mod:`ketamine_response.pipelines.flows.score`, and the model's per-arm
columns, warnings and SHAP reasons. A file-level problem met in a task is raised as
:class:`~ketamine_response.features.errors.CohortFileError`; the driver finds it in Spark's error and re-raises it (exit 2).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.formats import Header, LineParser
from ketamine_response.features.cohort.mapping import ColumnMapping, apply_mapping
from ketamine_response.features.cohort.schema import KEY
from ketamine_response.features.cohort.validation import key_problems, validate_table
from ketamine_response.pipelines.flows.score_inputs import BLIND_ARM, rejected_rows
from ketamine_response.pipelines.flows.score_reasons import explain_columns
from ketamine_response.pipelines.flows.score_sidecar import with_caveats

_MODELS: dict[str, Any] = {}  # the driver's key of a model -> the model, unpickled once per Python worker (reused)


def quoted(name: str) -> str:
    """A column name as Spark SQL reads it literally (dots, spaces, backticks)."""
    return "`" + name.replace("`", "``") + "`"


def text_lines(spark: Any, path: str, source: str) -> Any:
    """The data lines of a text file (Spark's line data source *source*) as (row, line bytes); line 0, the
    header, is left out."""
    from pyspark.sql import functions as F

    text = spark.read.format(source).load(path)
    pid = F.spark_partition_id()
    counts = dict(text.groupBy(pid.alias("p")).count().collect())
    offsets, start = [], 0
    for p in sorted(counts):
        offsets += [F.lit(p), F.lit(start)]
        start += counts[p]
    # monotonically_increasing_id is (partition << 33) + position in the partition
    position = F.monotonically_increasing_id() - F.shiftleft(pid.cast("long"), 33)
    row = F.create_map(*offsets)[pid] + position
    return text.select(row.alias("row"), F.col("value").cast("binary").alias("line")).where(F.col("row") > 0)


def columnar_rows(spark: Any, path: str, columns: list[str], source: str) -> Any:
    """*columns* of a file Spark reads with its data source *source* (``parquet``) as ``c0, c1, …`` with their
    file row number ``row``."""
    from pyspark.sql import functions as F

    table = spark.read.format(source).load(path)
    return table.select((F.col("_metadata.row_index") + 1).alias("row"),
                        *[F.col(quoted(c)).alias(f"c{i}") for i, c in enumerate(columns)])


def raw_rows(batch: pd.DataFrame, parse: LineParser | None, header: Header, source: str) -> pd.DataFrame:
    """One Arrow batch as the local reader's raw chunk, indexed by file row number."""
    rows = batch["row"].to_numpy(dtype="int64")
    if parse is None:  # a columnar file: the columns as Spark read them
        return batch.drop(columns="row").set_axis(header.columns, axis=1).set_axis(pd.Index(rows, name="row"))
    return parse(batch["line"], rows, header, source)


def _batches(batches: Iterator[pd.DataFrame], parse: LineParser | None, header: Header,
             source: str) -> Iterator[pd.DataFrame]:
    for batch in batches:
        if len(batch):
            yield raw_rows(batch, parse, header, source)


def key_task(batches: Iterator[pd.DataFrame], parse: LineParser | None, header: Header, key_columns: list[str],
             source: str) -> Iterator[pd.DataFrame]:
    """(row, patient_id, treatment) as the validator normalises keys; null where a key cell is missing or invalid."""
    for raw in _batches(batches, parse, header, source):
        keys, _ = key_problems(raw[key_columns].set_axis(list(KEY), axis=1))
        yield pd.DataFrame({"row": raw.index.to_numpy(),
                            **{k: keys[k].astype(object).where(keys[k].notna(), None).to_numpy() for k in KEY}})


def _model(key: str, broadcast: Any) -> Any:
    if key not in _MODELS:  # bytes the driver pickled from the model it verified and loaded
        model = pickle.loads(broadcast.value)
        model.use_threads(1)  # one Spark task per core
        _MODELS[key] = model
    return _MODELS[key]


def score_task(batches: Iterator[pd.DataFrame], parse: LineParser | None, header: Header, source: str,
               mapping: ColumnMapping, blind: bool, explain: int, model: tuple[str, Any], duplicates: Any,
               valid_columns: list[str], extra_columns: list[str], used: set[str]) -> Iterator[pd.DataFrame]:
    """Validate each batch as the local engine does. Every row comes out once: ``row``; ``problems`` (None when
    valid); the original cells ``c<i>`` (rejected rows); the validated cells ``v<j>``, the model input, and the
    model's per-arm columns, warnings and reasons ``e<k>`` (valid rows). The probability is the model's pyfunc,
    applied by the driver's spark_udf to the ``v`` columns of the valid rows. Only problems in the *used*
    columns (what the model reads, the keys and required columns) reject a row, as locally."""
    scorer = _model(*model)
    dups = duplicates.value
    for raw in _batches(batches, parse, header, source):
        rows = raw.index.to_numpy()
        renamed = apply_mapping(raw, mapping, source)
        if blind:  # a placeholder arm for validation and features, as locally
            renamed = renamed.assign(treatment=BLIND_ARM)
        checked = validate_table(renamed, source, mapping, first_row=0, check_duplicates=False)
        problems = checked.problems[checked.problems["column"].isin(used)]
        problems = problems.assign(row=rows[problems["row"].to_numpy()])  # positions -> file rows
        problems = pd.concat([problems, dups[dups["row"].isin(rows)].assign(patient_id="")], ignore_index=True)
        bad = problems["row"].unique()
        table = checked.table.set_axis(raw.index)
        good = table.drop(index=bad)
        out = pd.DataFrame({"row": rows}, index=raw.index)
        text = rejected_rows(raw, problems).set_index("row")["problems"] if len(bad) else pd.Series(dtype=object)
        out["problems"] = text.reindex(raw.index).astype(object).where(lambda s: s.notna(), None)
        rejected = np.isin(rows, bad)
        for i, column in enumerate(raw.columns):
            out[f"c{i}"] = raw[column].where(rejected, None)
        valid = good.reindex(raw.index)
        for j, column in enumerate(valid_columns):
            out[f"v{j}"] = valid[column]
        extras = _extras(scorer, good, blind, explain).reindex(raw.index) if len(good) else pd.DataFrame(index=raw.index)
        for k, column in enumerate(extra_columns):
            out[f"e{k}"] = extras.get(column)
        yield out


def _extras(model: Any, good: pd.DataFrame, blind: bool, explain: int) -> pd.DataFrame:
    """The local engine's score columns but the model's pyfunc prediction (the driver adds it)."""
    seen = good.drop(columns="treatment") if blind else good
    # the prediction's interval columns (none for a blind file, which has no prediction of the arm given)
    intervals = pd.DataFrame(index=good.index) if blind else model.interval_table(good)
    out = pd.concat([intervals, model.arm_table(good)], axis=1).assign(warnings=with_caveats(model, model.unseen(seen)))
    return pd.concat([out, explain_columns(model, good, explain, blind)], axis=1) if explain else out
