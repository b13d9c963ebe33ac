"""What travels with every score: the model's caveats in each row's ``warnings``, the class label only at a
stated threshold, and the ``<out>.model.md`` sidecar that says once what the scores are.

Both engines (:mod:`~ketamine_response.pipelines.flows.score`, :mod:`~ketamine_response.pipelines.flows.score_spark`)
use these functions, so their outputs say the same things.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.reader import partial_path
from ketamine_response.features.errors import UsageError
from ketamine_response.models.intervals import MIN_ARM_COURSES

OLD_MODEL = ("this model was logged before caveats were recorded with models: none are known, which does not mean "
             "there are none (see its training run)")


def sidecar_path(out: Path) -> Path:
    """``<out>.model.md`` beside the scores (``scores.csv.model.md``)."""
    return out.with_name(f"{out.name}.model.md")


def check_threshold(threshold: float | None) -> None:
    """``--threshold P`` must be a probability strictly between 0 and 1 (exit 2)."""
    if threshold is not None and not 0 < threshold < 1:
        raise UsageError(f"--threshold {threshold:g}: give a probability strictly between 0 and 1 (e.g. 0.3).")


def label_column(model: Any) -> str | None:
    """The class-label column of a probability model (``predicted_responder``, ``predicted_<harm>``)."""
    if not model.task.probabilities:
        return None
    return next((c for c in model.score_columns if c.startswith("predicted_")), None)


def resolve_threshold(model: Any, given: float | None) -> tuple[float | None, str]:
    """The threshold a model's label is called at, and where it comes from: ``--threshold``, else the explicit
    operating point of its training config; none otherwise (no label column is written)."""
    if label_column(model) is None:
        if given is not None:
            raise UsageError(f"--threshold calls a class label from a probability; the model of {model.target} "
                             "predicts no probability. Drop --threshold.")
        return None, ""
    if given is not None:
        return given, "given with --threshold"
    point = getattr(model, "operating_point", None)  # models logged before it have none
    return (point, "the model's operating point (evaluation.threshold of its training config)") if point else (None, "")


def labelled(model: Any, predicted: dict[str, Any], threshold: float | None) -> dict[str, Any]:
    """The model's predictions with the label called at *threshold*, or without a label column when None."""
    label = label_column(model)
    if label is None:
        return predicted
    out = {c: v for c, v in predicted.items() if c != label}
    if threshold is not None:
        p = pd.Series(predicted[model.score_columns[0]], dtype=float)
        out[label] = p.ge(threshold).astype("Int64").where(p.notna()).array
        out = {c: out[c] for c in predicted}  # the label where the model puts it
    return out


def caveats(model: Any) -> tuple[str, ...]:
    """The model's caveats (none recorded for a model logged before they existed)."""
    return tuple(getattr(model, "caveats", ()))


def with_caveats(model: Any, row_warnings: pd.Series) -> pd.Series:
    """Each row's own warnings (an unseen site, say), then every model caveat, joined by ``; ``."""
    text = "; ".join(caveats(model))
    if not text:
        return row_warnings
    own = row_warnings.fillna("").astype(str)
    return (own + (own != "").map({True: "; ", False: ""}) + text).astype(object)


def sidecar_text(scorers: Sequence[Any], columns: Sequence[str], cohort: Path) -> str:
    """The sidecar's markdown: for each model its name, version, target and question, caveats and threshold;
    then what each column of the scores means."""
    from ketamine_response.features.tasks import parse_target
    from ketamine_response.pipelines.reporting.wording import first_question

    # no date: a rerun on the same file and model writes the same bytes (as the scores themselves)
    blind = "treatment" not in columns  # no treatment column: one row per patient, every arm scored
    rows = ("one row per patient (the file has no treatment column: every arm is scored)" if blind
            else "one row per scored course")
    lines = [f"# Scores of {cohort.name}", "", f"Written by `ketamine-response score`: {rows}; "
             "rejected rows are in the `.rejected.csv` file beside the scores.", ""]
    for s in scorers:
        m = s.model
        target = parse_target(m.target)
        lines += [f"## Model {s.name} version {s.version or '-'}", "",
                  f"Target `{m.target}`: {m.task.estimates(target)}. It answers: {first_question(m.task, target)}", "",
                  "Caveats (repeated in every row's `warnings`):", ""]
        # a model logged before caveats existed has no caveats of its own (it reads the class default)
        recorded = "caveats" in getattr(m, "__dict__", {})
        lines += [f"- {c}" for c in caveats(m) or (("none",) if recorded else (OLD_MODEL,))]
        label = label_column(m)
        lines += ["", threshold_sentence(m, s.threshold, s.threshold_source) if not blind or label is None or label in columns
                  else f"No `{label}` column: a file without a treatment column is scored on every arm, and a class "
                       "label is a decision about one arm's probability.", ""]
    lines += ["## Intervals", "", *[interval_sentence(s) for s in scorers], "", "## Columns", ""]
    lines += [f"- `{c}`: {column_meaning(c)}" for c in columns]
    return "\n".join(lines) + "\n"


def interval_sentence(scorer: Any) -> str:
    """What a model's per-course intervals (the ``*_low`` and ``*_high`` columns) are and what they do not cover,
    or that it has none (see :mod:`ketamine_response.models.intervals`)."""
    intervals = getattr(scorer.model, "intervals", None)
    level = getattr(intervals, "level", None)
    if level is None:
        return f"{scorer.label}: no per-course intervals (logged without them); its `_low` and `_high` columns are blank."
    site = float(getattr(intervals, "site_sd", 0.0))
    return (f"{scorer.label}: each `_low`-`_high` pair of a prediction is a {level:.0%} estimation + site + missing-data "
            "interval for the model's prediction: the spread of refits of the model (its family and hyperparameters "
            "held fixed) on bootstrap resamples of the training patients, each refit filling a course's missing "
            "values with a training quantile of its own, plus, for a probability, the between-site spread the model "
            f"leaves unexplained (SD {site:.2f} on the log-odds). A `predicted_benefit_<drug>` interval is the spread of "
            "the benefit model's own refits only. No interval covers the model's bias, so none is a confidence "
            "interval for the patient's true probability: on a synthetic cohort with strong effects the 90% interval "
            "held the true probability for 42% of drug-arm courses (README, 'Per-patient intervals').")


def threshold_sentence(model: Any, threshold: float | None, source: str) -> str:
    """Which threshold calls the class label, or that there is none."""
    label = label_column(model)
    if label is None:
        return "No class label: this target's prediction is not a probability."
    if threshold is None:
        return (f"No threshold is applied, so there is no `{label}` column: the training config set no explicit "
                "operating point (its default is the training event rate, a threshold nobody chose). Give "
                "`score --threshold P` to call one.")
    return f"Threshold: `{label}` is 1 where the probability is at least {threshold:g} ({source})."


_MEANINGS = (  # (prefix or exact name, meaning): the first that matches
    ("patient_id", "the patient, as in the cohort file"),
    ("treatment", "the arm of the course, as in the cohort file"),
    ("model_name", "the registered model that scored the row"),
    ("model_version", "its registered version"),
    ("warnings", "what limits this row's score: its own (an arm or site not seen in training), then every model "
                 "caveat above"),
    ("predicted_benefit_", "predicted benefit of the drug over placebo: difference in the probability of response "
                           "(probability scale; 0.05 = 5 percentage points), the benefit model's estimate; a model "
                           "of its own, so not equal to `probability_<drug>` - `probability_placebo` of the response "
                           "model (which the `reason_difference_*` columns explain)"),
    ("probability_", "probability on the named arm (the response model with that arm set), or of the named outcome"),
    ("probability", "calibrated probability of the target on the arm given"),
    ("predicted_pct_change", "predicted percentage change in MADRS"),
    ("predicted_", "class label: 1 where the probability reaches the threshold above"),
    ("relapse_free_", "probability of staying relapse-free that many days after a response"),
    ("median_days_to_relapse", "median days from a response to relapse (blank: the curve stays above one half)"),
)
_ENDS = (("_low", "lower end of the interval of `{}` (level above)"),
         ("_high", "upper end of the interval of `{}` (level above)"),
         ("_percentile", "percentile of `{}` among the selected procedure's out-of-fold predictions of the training "
                         "courses of the same arm (1 to 99; blank for an arm with fewer than "
                         f"{MIN_ARM_COURSES} training courses)"))


_REASON_PARTS = (("_feature", "the feature {} by the size of its contribution {}"),
                 ("_value", "the value of the feature {} {} (`missing (imputed)`: the course had none)"),
                 ("_points", "the contribution of the feature {} {}, in percentage points (exact SHAP on the "
                             "log-odds shared out on the probability scale; a percentage change's own points)"),
                 ("_log_hazard", "the contribution of the feature {} {}, on the log relapse hazard"))


def reason_meaning(column: str) -> str:
    """A reason column in words: which rank, which part, and what it explains."""
    stem, part = next((column.removesuffix(end), text) for end, text in _REASON_PARTS if column.endswith(end))
    head, _, rank = stem.rpartition("_")
    what = head.removeprefix("reason").removeprefix("_")
    if what.startswith("difference_"):
        drug = what.removeprefix("difference_")
        where = (f"to the drug-minus-placebo difference probability_{drug} - probability_placebo of the response "
                 "model (risk-difference scale: the drug arm's points minus placebo's), not to "
                 f"predicted_benefit_{drug}, the benefit model's estimate")
    else:
        where = f"to the probability on arm {what}" if what else "to the prediction for the arm given"
    return part.format(f"#{rank}", where)


def column_meaning(column: str) -> str:
    """What a scores column means, in words (a column of a newer model: see the README's section on ``score``)."""
    if column.startswith("reason_"):
        return reason_meaning(column)
    for end, meaning in _ENDS:
        if column.endswith(end):
            return meaning.format(column.removesuffix(end))
    return next((meaning for prefix, meaning in _MEANINGS if column.startswith(prefix)),
                "see the README's section on `score`")


class Sidecar:
    """The sidecar written aside when scoring starts and renamed into place with the scores: a failed run
    leaves no sidecar."""

    def __init__(self, out: Path, text: str):
        self.path = sidecar_path(out)
        self.partial = partial_path(self.path)
        try:
            self.partial.write_text(text, encoding="utf-8")
        except BaseException:  # a full disk can leave a partial file behind: the caller never gets to discard it
            self.discard()
            raise

    def close(self) -> None:
        os.replace(self.partial, self.path)

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.partial.unlink(missing_ok=True)


def blank_predictions(frame: pd.DataFrame, models: Sequence[Any], blind: bool) -> int:
    """Rows of a scores *frame* where some model predicted nothing: its first score column blank, or
    (*blind*) every arm column blank. The warnings column says why; the summary counts them."""
    blank = np.zeros(len(frame), dtype=bool)
    for model in models:
        columns = list(model.arm_columns()) if blind else [model.score_columns[0]]
        blank |= frame[columns].isna().all(axis=1).to_numpy()
    return int(blank.sum())
