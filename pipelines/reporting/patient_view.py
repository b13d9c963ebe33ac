"""The per-patient "benefit and harm" view of a scores file: one card per course, every model's answer in words.

Renders, never decides: the numbers are the scores file's, each printed under the question it answers, on its
scale, with the model that gave it. Per-patient intervals are not in a scores file yet, so the card says so
and points to the training report's population intervals instead of printing a bare number as certain.
"""

from __future__ import annotations

import html
import re

import pandas as pd

ARMS = ("ketamine_iv", "esketamine_in", "placebo")
_HARM = re.compile(r"^probability_(?P<target>[a-z0-9_]+?_ge\d+(?:\.\d+)?)$")
NO_INTERVAL = ("no per-patient interval yet: read each number with its model's population interval in the training "
               "report (the models' own 95% CIs)")


def _pct(value: object) -> str:
    number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    return "–" if pd.isna(number) else f"{100 * float(number):.0f}%"


def _response(row: pd.Series) -> list[str]:
    lines = []
    if "probability" in row.index:
        lines.append(f"Response if given {row.get('treatment', 'the arm given')}: {_pct(row['probability'])} "
                     "(probability of response at the model's timepoint)")
    for arm in ARMS:
        if f"probability_{arm}" in row.index and arm != row.get("treatment"):
            lines.append(f"Response if given {arm}: {_pct(row[f'probability_{arm}'])} (the response model with the arm set)")
    for arm in ARMS[:2]:
        column = f"predicted_benefit_{arm}"
        if column in row.index:
            value = pd.to_numeric(pd.Series([row[column]]), errors="coerce").iloc[0]
            shown = "–" if pd.isna(value) else f"{100 * float(value):+.0f} percentage points"
            lines.append(f"Benefit of {arm} over placebo: {shown} (the benefit model's difference in response probability, "
                         "drug minus placebo; it is fitted for the difference, so it need not equal the gap between "
                         "the two response probabilities)")
    return lines


def _durability(row: pd.Series) -> list[str]:
    if "relapse_free_28d" not in row.index:
        return []
    median = pd.to_numeric(pd.Series([row.get("median_days_to_relapse")]), errors="coerce").iloc[0]
    median_text = "not reached within the follow-up the model was fitted on" if pd.isna(median) else f"{median:.0f} days"
    lines = [f"If this course responds, still relapse-free after 28 days: {_pct(row['relapse_free_28d'])}; after 56 days: "
             f"{_pct(row.get('relapse_free_56d'))}; median days to relapse: {median_text}"]
    lines += [f"Relapse-free after 28 days if given {arm}: {_pct(row[f'relapse_free_28d_{arm}'])}"
              for arm in ARMS if f"relapse_free_28d_{arm}" in row.index]
    return lines


def _harms(row: pd.Series) -> list[str]:
    lines = []
    for column in row.index:
        m = _HARM.match(column)
        if m is None:
            continue
        what = m["target"].replace("_ge", " ≥ ")
        arms = [f"{arm} {_pct(row[f'{column}_{arm}'])}" for arm in ARMS if f"{column}_{arm}" in row.index]
        lines.append(f"Harm {what}: {_pct(row[column])}" + (f" (on each arm: {', '.join(arms)})" if arms else ""))
    return lines


def sections(row: pd.Series) -> dict[str, list[str]]:
    """The card of one course: its answers by question (empty questions left out)."""
    parts = {"How likely is response, and how much more than on placebo?": _response(row),
             "If it responds, how long will it last?": _durability(row),
             "What will it cost them?": _harms(row)}
    return {k: v for k, v in parts.items() if v}


def models_line(columns: list[str], row: pd.Series) -> str:
    """Which models (name and version) gave the numbers."""
    names = [c for c in columns if c.startswith("model_name")]
    return "; ".join(f"{row[c]} version {row[c.replace('model_name', 'model_version')]}" for c in names)


def render(scores: pd.DataFrame, source: str) -> str:
    """A self-contained HTML page with one card per course of *scores*."""
    cards = []
    for _, row in scores.iterrows():
        body = "".join(f"<h3>{html.escape(q)}</h3><ul>{''.join(f'<li>{html.escape(x)}</li>' for x in lines)}</ul>"
                       for q, lines in sections(row).items())
        warning = str(row.get("warnings", "") or "")
        warning = "" if warning in ("", "nan") else f"<p class='warn'>Warnings: {html.escape(warning)}</p>"
        title = f"{row['patient_id']}" + (f", {row['treatment']}" if "treatment" in row.index else " (no arm chosen)")
        cards.append(f"<section><h2>{html.escape(title)}</h2>{body}{warning}"
                     f"<p class='small'>Models: {html.escape(models_line(list(scores.columns), row))}. "
                     f"{html.escape(NO_INTERVAL)}.</p></section>")
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Benefit and harm: {html.escape(source)}"
            "</title><style>body{font-family:sans-serif;max-width:60em;margin:1em auto;padding:0 1em}"
            "section{border:1px solid #ccc;border-radius:6px;padding:0 1em;margin:1em 0}h3{font-size:1em}"
            ".warn{color:#a00}.small{font-size:.85em;color:#555}</style></head><body>"
            f"<h1>Benefit and harm per course</h1><p>From {html.escape(source)}: predictions, not outcomes. "
            f"Local only: this page holds patient-level rows and is never logged.</p>{''.join(cards)}</body></html>")
