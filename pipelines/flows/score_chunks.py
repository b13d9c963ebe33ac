"""The chunks ``score`` scores: read, numbered and validated in file order, the next one while the model
predicts the current one.

Scoring a chunk is mostly the model's prediction, which LightGBM runs in its own threads outside the GIL;
reading and validating a chunk is pandas work on one core. A worker thread does the second for chunk k + 1
while the caller predicts and writes chunk k, so the two overlap instead of taking turns. Nothing else
changes: one worker reads, numbers and checks the chunks one after another in file order, and the caller
gets them in that order, so every number, row and message is what the one-after-another loop gave (at the
cost of one more chunk in memory).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, cast

import pandas as pd

from ketamine_response.features.cohort.mapping import apply_mapping
from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.pipelines.flows.score_inputs import BLIND_ARM

T = TypeVar("T")
R = TypeVar("R")
_END = object()  # the worker's answer once the items are exhausted


def one_ahead(items: Iterator[T], work: Callable[[T], R]) -> Generator[R]:
    """``work(item)`` for each of *items* in order, the next one computed in a worker thread while the caller
    uses this one. An error of reading or of *work* reaches the caller at the item it concerns. When the caller
    stops early (an error, Ctrl-C, SIGTERM), the worker's current item is finished before this generator
    closes, so the caller may close *items* safely afterwards."""

    def step() -> object:
        item = next(items, _END)
        return _END if item is _END else work(cast(T, item))

    # leaving the block (exhausted, closed or failing) waits for the worker: never two threads in *items*
    with ThreadPoolExecutor(1, thread_name_prefix="score-next-chunk") as pool:
        pending = pool.submit(step)
        while (result := pending.result()) is not _END:
            pending = pool.submit(step)
            yield cast(R, result)


def checked_chunks(chunks: Iterator[pd.DataFrame], source: str, mapping: Any, blind: bool, duplicates: pd.DataFrame,
                   used: set[str]) -> Generator[tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]:
    """(chunk, its valid rows, the problems that reject the others) for each of *chunks*, its rows numbered
    from 1 across the file (:func:`checked_chunk`), one chunk ahead of the caller (:func:`one_ahead`)."""
    first = 1

    def check(chunk: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        nonlocal first  # only the worker numbers chunks, one after another
        chunk.index = pd.RangeIndex(first, first + len(chunk), name="row")
        first += len(chunk)
        return (chunk, *checked_chunk(chunk, source, mapping, blind, duplicates, used))

    return one_ahead(chunks, check)


def checked_chunk(chunk: pd.DataFrame, source: str, mapping: Any, blind: bool, duplicates: pd.DataFrame,
                  used: set[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A chunk's valid rows (validated) and the problems that reject the others: those in the *used* columns
    (:func:`~ketamine_response.pipelines.flows.score_inputs.model_inputs`) and the duplicated keys found across
    the file."""
    renamed = apply_mapping(chunk, mapping, source)
    if blind:  # a placeholder arm for validation and features; arm_table sets each arm in turn
        renamed = renamed.assign(treatment=BLIND_ARM)
    first = int(chunk.index[0])
    checked = validate_table(renamed, source, mapping, first_row=first, check_duplicates=False)
    here = duplicates[duplicates["row"].between(first, first + len(chunk) - 1)]
    problems = pd.concat([checked.problems[checked.problems["column"].isin(used)], here.assign(patient_id="")],
                         ignore_index=True)
    return checked.table.drop(index=list(problems["row"].unique())), problems
