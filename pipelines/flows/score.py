"""The ``score`` flow: stream a cohort file through a logged model; every row scored or rejected.

Two passes: the first reads only the key columns to find duplicated keys across the whole file;
the second validates, scores and writes chunk by chunk, so memory stays flat as files grow (the next chunk is
read and validated in a worker thread while the model predicts this one: :mod:`.score_chunks`).
All three outputs (scores, rejected rows, the model sidecar) are written aside and renamed when complete,
so an interrupted run leaves nothing that looks finished.

A file without a ``treatment`` column is scored "blind" when the model was trained with a placebo
arm: every arm's probability and each drug's predicted benefit, for a clinician who has not chosen
yet (each row on its own: without a treatment there is no course key to check for duplicates).

Every row's ``warnings`` repeats the model's caveats (recorded at training), and a sidecar ``<out>.model.md``
says once what the scores are (:mod:`~ketamine_response.pipelines.flows.score_sidecar`); a class label is written
only at a stated threshold. Only the columns a model reads (and the keys and required columns) can reject a row.

Several models score the file in one pass (validation, the duplicate check and the rejected rows once):
one row per course with the keys once and each model's columns. Their columns must not clash, as two
models of the same task would (both write ``probability``): refused before the cohort is read, rather
than renamed, so a column always means the same thing whichever models were asked for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.formats import output_format_of
from ketamine_response.features.cohort.mapping import load_mapping
from ketamine_response.features.cohort.reader import OutputSink, check_cohort_file, iter_cohort_chunks, refuse_overwriting
from ketamine_response.features.errors import CohortFileError, UsageError
from ketamine_response.models.wrapper import ScoringModel
from ketamine_response.pipelines.flows.score_chunks import checked_chunks
from ketamine_response.pipelines.flows.score_inputs import (
    is_blind,
    key_duplicates,
    model_inputs,
    rejected_rows,
    require_keys,
)
from ketamine_response.pipelines.flows.score_reasons import explain_columns, reason_columns
from ketamine_response.pipelines.flows.score_sidecar import (
    Sidecar,
    blank_predictions,
    caveats,
    check_threshold,
    label_column,
    labelled,
    resolve_threshold,
    sidecar_path,
    sidecar_text,
    with_caveats,
)

log = logging.getLogger(__name__)
KEYS = ("patient_id", "treatment")
SHARED_COLUMNS = (*KEYS, "model_name", "model_version", "warnings")  # written once however many models score


@dataclass(frozen=True)
class ScoreSummary:
    read: int
    scored: int
    rejected: int
    out: Path
    rejected_path: Path
    model: str
    version: str
    models: tuple[tuple[str, str], ...] = ()  # (name, version) of every model, the first being model/version
    caveats: tuple[str, ...] = ()  # every model's caveats (led by its target when there are several), also in warnings
    blank: int = 0  # scored rows with a blank prediction (an arm a model never saw): counted in scored, not hidden


@dataclass(frozen=True)
class Scorer:
    """A loaded model and the registry name and version written beside its predictions."""

    model: ScoringModel
    name: str
    version: str
    threshold: float | None = None  # the label's threshold (None: no label column)
    threshold_source: str = ""

    @property
    def label(self) -> str:
        return model_label(self.name, self.version)


def model_label(name: str, version: str) -> str:
    """How a message names a model: ``NAME version V``, or the name alone when it has no version."""
    return f"{name} version {version}" if version else name


def run_score(cohort_path: str | Path, out: str | Path, model_uri: str | Sequence[str] | None, explain: int = 0,
              chunk_rows: int = 100_000, mapping_path: str | Path | None = None,
              threshold: float | None = None) -> ScoreSummary:
    """Score *cohort_path* with the logged model *model_uri*, or with each of several URIs into one file
    (None: the only registered model's champion); *threshold* calls the class label."""
    from ketamine_response.pipelines import registry, store

    uris: list[str | None] = [model_uri] if model_uri is None or isinstance(model_uri, str) else [*model_uri]
    refuse_explain_several(len(uris), explain, threshold)
    check_paths(Path(cohort_path), Path(out), mapping_path)  # before the models load
    store.open_store()
    resolved = [registry.resolve_model(uri) for uri in uris or [None]]
    refuse_repeats(resolved)  # before loading: a repeat is a typo, not worth a model download
    scorers = [Scorer(registry.load_model(uri).unwrap_python_model(), name, version) for uri, name, version in resolved]
    return score_models(cohort_path, out, scorers, explain, chunk_rows, mapping_path, threshold)


def refuse_explain_several(count: int, explain: int, threshold: float | None = None) -> None:
    """--explain or --threshold with several models is refused (exit 2): one file of several models' reasons
    would leave the reader guessing which model each reason belongs to, and a threshold is a decision about
    one model's probability; a bad threshold is refused too."""
    check_threshold(threshold)
    if count > 1 and explain:
        raise UsageError("--explain explains one model's predictions: score with a single --model to get its "
                         "reasons (run score once per model with --explain), or drop --explain.")
    if count > 1 and threshold is not None:
        raise UsageError("--threshold calls one model's class label: score with a single --model to apply it "
                         "(run score once per model), or drop --threshold.")


def refuse_repeats(resolved: Sequence[tuple[str, str, str]]) -> None:
    """Two --model URIs naming the same registered version (an alias and its number, say) are exit 2."""
    seen: dict[tuple[str, str], str] = {}
    for uri, name, version in resolved:
        if (name, version) in seen:
            raise UsageError(f"--model {seen[name, version]} and --model {uri} are the same model "
                             f"({model_label(name, version)}); name each model once.")
        seen[name, version] = uri


def refuse_clashes(scorers: Sequence[Scorer]) -> None:
    """Models whose scores would share a column name are exit 2, naming both models and the column."""
    owner: dict[str, Scorer] = {}
    for scorer in scorers:
        for column in own_columns(scorer):
            if column in owner:
                raise UsageError(f"models {owner[column].label} and {scorer.label} both write the column "
                                 f"'{column}'; score them separately (one --model per run) and join the files "
                                 "on patient_id and treatment.")
            owner[column] = scorer


def own_columns(scorer: Scorer) -> list[str]:
    """The columns a model adds beside others: its predictions and per-arm columns, its name and version."""
    target = scorer.model.target
    predicted = [c for c in empty_scores(scorer.model, 0, threshold=scorer.threshold).columns if c not in SHARED_COLUMNS]
    return [*predicted, f"model_name_{target}", f"model_version_{target}"]


def check_paths(cohort_path: Path, out: Path, mapping_path: str | Path | None) -> None:
    """A known output format, no output that would replace the cohort or mapping file, and a cohort file that
    opens (exit 2)."""
    output_format_of(out)
    check_cohort_file(cohort_path)
    refuse_overwriting({"--out": out, "the rejected-rows file": rejected_path_for(out), "the model sidecar": sidecar_path(out)},
                       [cohort_path, mapping_path])


def rejected_path_for(out: Path) -> Path:
    """``<out stem>.rejected.csv`` beside the output."""
    return out.with_name(f"{out.stem}.rejected.csv")


def _score_chunk(scorer: Scorer, table: pd.DataFrame, explain: int, blind: bool = False) -> pd.DataFrame:
    with scorer.model.features_once(table):  # the prediction, its interval and every arm read one feature table
        return _score_features(scorer, table, explain, blind)


def _score_features(scorer: Scorer, table: pd.DataFrame, explain: int, blind: bool) -> pd.DataFrame:
    model, ids = scorer.model, {"model_name": scorer.name, "model_version": scorer.version}
    if blind:  # no treatment given: the per-arm columns only, for a clinician choosing the arm
        out = pd.concat([pd.DataFrame({"patient_id": table["patient_id"], **ids}, index=table.index),
                         model.arm_table(table)], axis=1)
        out = out.assign(warnings=with_caveats(model, model.unseen(table.drop(columns="treatment"))))
    else:  # blank predictions for an arm the model never saw (named in `warnings`)
        predicted = labelled(model, model.predictions(table), scorer.threshold)
        out = pd.DataFrame({"patient_id": table["patient_id"], "treatment": table["treatment"], **predicted, **ids},
                           index=table.index)
        out = pd.concat([out, model.arm_table(table)], axis=1).assign(warnings=with_caveats(model, model.unseen(table)))
    return pd.concat([out, explain_columns(model, table, explain, blind)], axis=1) if explain else out


def all_blind(path: Path, mapping, scorers: Sequence[Scorer]) -> bool:
    """:func:`is_blind` for every model: a blind file needs each of them to score every arm."""
    several = len(scorers) > 1  # then a refusal names the model it is about
    return all(is_blind(path, mapping, s.model, f"model {s.label}" if several else "this model")
               for s in scorers)


def score_file(cohort_path: str | Path, out: str | Path, model: ScoringModel, model_name: str, model_version: str,
               explain: int = 0, chunk_rows: int = 100_000, mapping_path: str | Path | None = None,
               threshold: float | None = None) -> ScoreSummary:
    """Score every valid row of a cohort file; write the rest, unchanged, to ``<out>.rejected.csv``."""
    return score_models(cohort_path, out, [Scorer(model, model_name, model_version)], explain, chunk_rows, mapping_path,
                        threshold)


def with_thresholds(scorers: Sequence[Scorer], threshold: float | None) -> list[Scorer]:
    """Each scorer with the threshold its label is called at (:func:`resolve_threshold`)."""
    return [replace(s, threshold=t, threshold_source=why) for s in scorers
            for t, why in [resolve_threshold(s.model, threshold)]]


def score_models(cohort_path: str | Path, out: str | Path, scorers: Sequence[Scorer], explain: int = 0,
                 chunk_rows: int = 100_000, mapping_path: str | Path | None = None,
                 threshold: float | None = None) -> ScoreSummary:
    """:func:`score_file` with one model or several: one row per course with every model's columns."""
    cohort_path, out = Path(cohort_path), Path(out)
    refuse_explain_several(len(scorers), explain, threshold)
    check_paths(cohort_path, out, mapping_path)
    scorers = with_thresholds(scorers, threshold)
    refuse_clashes(scorers)
    mapping = load_mapping(mapping_path)
    for scorer in scorers:
        scorer.model.use_threads(os.cpu_count() or 1)
    blind = all_blind(cohort_path, mapping, scorers)
    require_keys(cohort_path, mapping, blind)
    duplicates = key_duplicates(cohort_path, mapping, chunk_rows, blind)
    used = model_inputs([s.model for s in scorers])
    header = combined(scorers, [empty_scores(s.model, explain, blind, s.threshold) for s in scorers])
    scored_sink, rejected_sink = OutputSink(out), OutputSink(rejected_path_for(out))
    read = scored = rejected = blank = 0
    chunks = iter_cohort_chunks(cohort_path, chunk_rows)  # a generator: nothing is read until the loop
    checked = checked_chunks(chunks, str(cohort_path), mapping, blind, duplicates, used)
    sidecar = None
    try:
        sidecar = Sidecar(out, sidecar_text(scorers, list(header.columns), cohort_path))
        for chunk, good, problems in checked:
            bad = problems["row"].unique()
            if len(bad):
                rejected_sink.write(rejected_rows(chunk, problems))
            if len(good):
                frame = combined(scorers, [_score_chunk(s, good, explain, blind) for s in scorers])
                scored_sink.write(frame)
                blank += blank_predictions(frame, [s.model for s in scorers], blind)
            read, scored, rejected = read + len(chunk), scored + len(good), rejected + len(bad)
        # both files always exist, with their header even when nothing landed in them
        if not scored_sink.started:
            scored_sink.write(header)
        if not rejected_sink.started:
            rejected_sink.write(pd.DataFrame(columns=["row", *chunk.columns, "problems"]))
        scored_sink.close()
        rejected_sink.close()
        sidecar.close()
    except BaseException as exc:
        checked.close()  # waits for the chunk being read: then nothing else reads the file
        chunks.close()  # the reader's file handle, before the error travels up
        scored_sink.discard()
        rejected_sink.discard()
        if sidecar is not None:
            sidecar.discard()
        if isinstance(exc, OSError):  # a full disk, a missing or read-only folder: the user can fix it
            raise CohortFileError(f"{out}: cannot be written ({exc.strerror or exc}). Check that the folder exists, "
                                  "is writable and has free space; nothing was left behind.") from None
        raise
    log.info("scored %s: read %d, scored %d, rejected %d", cohort_path, read, scored, rejected)
    first = scorers[0]
    return ScoreSummary(read, scored, rejected, out, rejected_path_for(out), first.name, first.version,
                        tuple((s.name, s.version) for s in scorers), all_caveats(scorers), blank)


def all_caveats(scorers: Sequence[Scorer]) -> tuple[str, ...]:
    """Every model's caveats, each led by the model's target when several models score."""
    lead = len(scorers) > 1
    return tuple(f"{s.model.target}: {c}" if lead else c for s in scorers for c in caveats(s.model))


def combined(scorers: Sequence[Scorer], frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One row per course from each model's scores (*frames*, in *scorers*' order): the keys once, each
    model's columns with its name and version suffixed by its target, then one ``warnings`` joining every
    model's, each led by its target. One model's scores are returned as they are."""
    if len(frames) == 1:
        return frames[0]
    keys = [c for c in KEYS if c in frames[0].columns]  # a blind file has no treatment
    parts, warnings = [frames[0][keys]], pd.Series("", index=frames[0].index, dtype=object)
    for scorer, frame in zip(scorers, frames):
        target = scorer.model.target
        parts.append(frame.drop(columns=[*keys, "warnings"]).rename(
            columns={"model_name": f"model_name_{target}", "model_version": f"model_version_{target}"}))
        warnings = joined_warnings(warnings, frame["warnings"], target)
    return pd.concat(parts, axis=1).assign(warnings=warnings)


def joined_warnings(so_far: pd.Series, more: pd.Series, target: str) -> pd.Series:
    """*so_far* and *more*'s non-empty warnings, led by *target* (``response_24h: site not seen in training``)."""
    more = more.fillna("").astype(str)
    has = (more != "").to_numpy()
    separator = np.where((so_far != "").to_numpy() & has, "; ", "")
    return so_far + separator + np.where(has, target + ": " + more, "")


def empty_scores(model: ScoringModel, explain: int, blind: bool = False, threshold: float | None = None) -> pd.DataFrame:
    """The scores output with no rows: its columns in order (written when no row was valid; the Spark
    engine selects these columns). The label column only with a *threshold*."""
    reasons = reason_columns(model, explain, blind)
    if blind:
        return pd.DataFrame(columns=["patient_id", "model_name", "model_version", *model.arm_columns(), "warnings",
                                     *reasons])
    label = label_column(model) if threshold is None else None
    predicted = [c for c in model.score_columns if c != label]
    columns = ["patient_id", "treatment", *predicted, "model_name", "model_version", *model.arm_columns(), "warnings"]
    return pd.DataFrame(columns=[*columns, *reasons])
