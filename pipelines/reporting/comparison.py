"""How runs are compared: the runs list, runs side by side (terminal text and a self-contained HTML page), and
what an external evaluation prints.

The flows decide what is compared (:mod:`~ketamine_response.pipelines.flows.compare`,
:mod:`~ketamine_response.pipelines.flows.external`); this module only formats it. A figure is a
(point, low, high) triple, a plain number, or text; a roles cell maps each role to its features.
"""

from __future__ import annotations

import html
import math
import textwrap
from typing import Any

import pandas as pd

WIDTH = 100  # what the runs list and the train table fit in without --wide
CELL_WIDTH = 22  # a terminal cell longer than this is cut (the HTML page shows it whole): two runs fit 100 columns
ROLE_SHORT = {"predictive": "pred", "prognostic": "prog", "both": "both"}


def figure(value: Any, decimals: int = 3, interval_decimals: int = 3) -> str:
    """A cell as text: ``0.735 (0.612 to 0.801)``, a number, a count, or the text itself; "-" when missing."""
    if isinstance(value, tuple):
        point, low, high = value
        if point != point:
            return "-"
        d = interval_decimals
        interval = f" ({low:.{d}f} to {high:.{d}f})" if low == low and high == high else ""
        return f"{point:.{decimals}f}{interval}"
    if isinstance(value, dict):
        return ", ".join(f"{ROLE_SHORT.get(role, role)} {len(names)}" for role, names in sorted(value.items())) or "none"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 2 else f"{value:.{decimals}f}"
    return str(value)


def render_comparison(runs: list[str], sections: dict[str, pd.DataFrame]) -> str:
    """The runs side by side, one column each, section by section (text cells cut to fit a terminal; a figure
    is never cut: a half-printed interval would misstate it)."""
    labels = [str(i) for t in sections.values() for i in t.index]
    w = max([12, *map(len, labels)]) + 2  # the labels sit indented under their section
    cells = {name: t.map(lambda v: _cut(v, CELL_WIDTH) if isinstance(v, str) else figure(v, interval_decimals=2))
             for name, t in sections.items()}
    widths = [max([len(r), *(len(c) for t in cells.values() for c in t[r])]) for r in runs]
    lines = [f"{'':{w}s}  " + "  ".join(f"{r:<{cw}s}" for r, cw in zip(runs, widths))]
    for name, table in cells.items():
        lines.append(f"{name}:")
        for label, row in table.iterrows():
            lines.append(f"  {label!s:{w - 2}s}  " + "  ".join(f"{c:<{cw}s}" for c, cw in zip(row, widths)))
    return "\n".join(line.rstrip() for line in lines)


PAGE_STYLE = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:80rem}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.5rem}.scroll{overflow-x:auto}
table{border-collapse:collapse}th,td{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}p.note{color:#555;font-size:.9rem}"""

NOTE = ("Each figure is a point estimate with its 95% interval: for a training run the mean over CV repeats with "
        "the corrected resampled t interval (the drug-arm AUROC: the permutation-tested value, its interval centred "
        "on it); for an evaluation run the value on the new cohort with a patient-bootstrap interval. \"-\": not "
        "logged by that run.")


def _html_cell(value: Any) -> str:
    if isinstance(value, dict):
        parts = [f"<b>{html.escape(role)}</b>: {html.escape(', '.join(names))}" for role, names in sorted(value.items())]
        return "<td>" + ("<br>".join(parts) or "none") + "</td>"
    cls = ' class="num"' if isinstance(value, tuple | float) else ""
    return f"<td{cls}>{html.escape(figure(value))}</td>"


def render_comparison_html(runs: list[str], sections: dict[str, pd.DataFrame], title: str) -> str:
    """A self-contained page (inline style, no scripts or external files): one table per section."""
    head = "<tr><th></th>" + "".join(f"<th>{html.escape(r)}</th>" for r in runs) + "</tr>"
    body = []
    for name, table in sections.items():
        rows = "".join(f"<tr><th>{html.escape(str(label))}</th>" + "".join(_html_cell(v) for v in row) + "</tr>"
                       for label, row in table.iterrows())
        body.append(f"<h2>{html.escape(name)}</h2><div class=\"scroll\"><table>{head}{rows}</table></div>")
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
            f"<style>{PAGE_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f'<p class="note">{html.escape(NOTE)}</p>{"".join(body)}</body></html>')


def render_evaluation(header: str, question: str, metrics: dict[str, float], curve: pd.DataFrame,
                      notes: list[str]) -> str:
    """What ``evaluate`` prints: each figure with its interval, the counts it rests on and the question it
    answers, drug arm first; the pooled AUROC last, labelled secondary."""
    m = metrics

    def ci(name: str) -> str:
        return figure((m[name], m[f"{name}_ci_low"], m[f"{name}_ci_high"]))

    lines = [header, f"question: {question}",
             f"AUROC within the drug arm(s) {ci('auroc_active')}: n = {m['n_courses_active']:.0f} courses "
             f"({m['responders_active']:.0f} with the event, {m['non_responders_active']:.0f} without)",
             f"calibration within the drug arm(s): slope {ci('calibration_slope_active')} (1 is ideal), intercept "
             f"{ci('calibration_intercept_active')} (0 is ideal), ICI {figure(m.get('calibration_ici_active', math.nan))}"]
    if len(curve):
        points = "; ".join(f"{p:.2f} -> {o:.2f}" for p, o in zip(curve["predicted"], curve["observed_smoothed"]))
        lines.append(f"calibration curve (loess, predicted -> observed): {points}")
    drugs = sorted(k.removeprefix("c_for_benefit_ci_low_") for k in m if k.startswith("c_for_benefit_ci_low_"))
    for drug in drugs:  # suffixed by the drug at the end, as training logs them
        c = figure((m[f"c_for_benefit_{drug}"], m[f"c_for_benefit_ci_low_{drug}"], m[f"c_for_benefit_ci_high_{drug}"]))
        lines.append(f"c-for-benefit, {drug} vs placebo {c} (0.5: no better than chance): "
                     f"n = {m[f'n_courses_benefit_{drug}']:.0f} courses")
    lines.append(f"AUROC all arms pooled (secondary: the arm alone can carry it) {figure(m['auroc'])}: "
                 f"n = {m['n_courses']:.0f} courses of {m['n_patients']:.0f} patients")
    lines.append("intervals: 95% percentile bootstrap over whole patients, the model held fixed")
    return "\n".join([*lines, *(f"note: {n}" for n in notes)])


def runs_list(runs: pd.DataFrame, now: pd.Timestamp) -> str:
    """The runs list within :data:`WIDTH` columns; why a version has no alias is listed under it."""
    rows = [_run_row({str(k): v for k, v in r.items()}, now) for r in runs.to_dict("records")]
    widths = _run_widths(rows)
    lines = [" ".join(f"{h:{w}s}" for h, w in widths.items()).rstrip()]
    lines += [" ".join(f"{_cut(r[h], w, keep_end=h == 'data'):{w}s}" for h, w in widths.items()).rstrip() for r in rows]
    reasons = [f"  {r['run']} {r['model']}: {r['reason']}" for r in rows if r["reason"]]
    return "\n".join([*lines, *_RUNS_LEGEND, *(["no alias:"] + [_cut(x, WIDTH) for x in reasons] if reasons else [])])


RUN_COLUMNS = ("run", "age", "kind", "status", "target", "headline (95% CI)", "gain", "c-ben", "data", "model")
# what gives way when a list would pass WIDTH, and the width each keeps: the origin, the target, the version
SHRINK = (("data", 17), ("target", 13), ("data", 11), ("model", 8), ("target", 8), ("data", 8), ("headline (95% CI)", 12))


def _run_widths(rows: list[dict[str, str]]) -> dict[str, int]:
    """Each column's width: its longest cell, then cut (column by column, :data:`SHRINK`) to fit :data:`WIDTH`."""
    widths = {h: max([len(h), *(len(r[h]) for r in rows)]) for h in RUN_COLUMNS}
    excess = sum(widths.values()) + len(widths) - 1 - WIDTH
    for column, floor in SHRINK:
        cut = max(min(excess, widths[column] - floor), 0)
        widths[column] -= cut
        excess -= cut
    return widths


_RUNS_LEGEND = textwrap.wrap(
    "headline: AUROC within the drug arm(s) for a response or harm, Harrell's C within the drug arm(s) for "
    "time_to_relapse, R2 for a continuous target; each point is the estimate its interval is built around (training: "
    "mean over CV repeats; evaluation: on the new cohort). gain: AUROC gain over the arm alone. c-ben: "
    "c-for-benefit. data: SYN <scenario> or real, first hex digits of the file's SHA-256. --wide: every column.", WIDTH)


def _cut(text: str, width: int, keep_end: bool = False) -> str:
    """*text* within *width*, cut at the end (``~`` marks the cut); with *keep_end* its last word (a digest) kept."""
    if len(text) <= width:
        return text
    head, _, last = text.rpartition(" ")
    if keep_end and head and len(last) + 2 <= width:
        return head[:width - len(last) - 2] + "~ " + last
    return text[:width - 1] + "~"


def _run_row(r: dict[str, Any], now: pd.Timestamp) -> dict[str, str]:
    """One run's cells in the narrow runs list."""
    kind = "eval" if r.get("kind") == "evaluation" else "train"
    status = str(r.get("status") or "-")  # MLflow's own word (FINISHED, FAILED, KILLED, RUNNING), as its UI shows it
    version, alias = r.get("version"), r.get("alias") or ""
    model = "-" if not isinstance(version, str) else f"v{version}" + (f" @{alias}" if alias else " no alias")
    reason = str(r.get("alias_reason") or "") if isinstance(version, str) and not alias else ""
    return {"run": str(r["run_id"])[:8], "age": _age(r.get("start"), now), "kind": kind, "status": status,
            "target": _text(r.get("target")), "headline (95% CI)": _headline(r),
            "gain": _signed(_point(r, "auroc_gain_over_arm")), "c-ben": _plain(r.get("c_for_benefit")),
            "data": _origin(r), "model": model, "reason": reason}


def _text(value: Any) -> str:
    return "-" if value is None or value != value or value == "" else str(value)


def _point(r: dict[str, Any], name: str) -> float:
    """The logged estimate *name* (its interval is built around it), NaN when not logged."""
    return float(r.get(name, float("nan")))


def _headline(r: dict[str, Any]) -> str:
    names = ["auroc_active", "c_index_active", *sorted(k for k in r if k.startswith("r2_")
                                                       and not k.endswith(("_ci_low", "_ci_high")))]
    for name in names:
        point = _point(r, name)
        if point == point:
            low, high = r.get(f"{name}_ci_low", float("nan")), r.get(f"{name}_ci_high", float("nan"))
            interval = f" ({low:.2f}, {high:.2f})" if low == low and high == high else ""
            return f"{point:.3f}{interval}"
    return "-"


def _signed(value: float) -> str:
    return f"{value:+.2f}" if value == value else "-"


def _plain(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) and value == value else "-"


def _age(start: Any, now: pd.Timestamp) -> str:
    if start is None or start != start:
        return "-"
    seconds = max((now - pd.Timestamp(start).tz_localize("UTC") if pd.Timestamp(start).tzinfo is None
                   else now - pd.Timestamp(start)).total_seconds(), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return "now"


def _origin(r: dict[str, Any]) -> str:
    """``SYN <scenario> <digest>`` or ``real <source> <digest>``: from the run's data_source tag
    (``synthetic:strong``, ``real:ds005917``), else its data_origin; then the data_digest's first digits."""
    origin, digest, source = _text(r.get("data_origin")), _text(r.get("data_digest"))[:4], _text(r.get("data_source"))
    if source != "-":
        kind, _, name = source.partition(":")
        return f"{'SYN' if kind == 'synthetic' else 'real'} {name} {digest}".replace("  ", " ").strip()
    if origin == "-":
        return "-"
    if origin.startswith("SYNTHETIC"):  # "SYNTHETIC (strong seed 21)": the scenario names it
        scenario = origin.removeprefix("SYNTHETIC").strip(" ()").split(" ")[0]
        return f"SYN {scenario} {digest}".strip()
    return f"real {digest}".strip()
