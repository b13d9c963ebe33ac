"""The self-contained HTML report of a training run (plots embedded; opens from disk, no server).

Order: identity (run, date, model version, data origin); the headline (performance with its CI, every
warning, which features matter, the operating point, calibration); the clinical questions and benefit;
the TRIPOD+AI items beside table 1; performance, figures, the task's own sections (durability of a time to
relapse, tolerability of a harm) and subgroups; SHAP; notes and limitations.

Layout: figures sit in a grid that is several columns wide on a desktop and one column on a phone;
tables wrap their cells, and below a width that grows with its column count (700, 900 or 1,150 px) a
table turns each row into a labelled card, so nothing is wider than the screen or hidden in a
horizontal scroll box.

A small inline script records, on the page itself, whether every image decoded and whether any
script error occurred (``data-images-ok``, ``data-errors`` on ``<body>``), so a headless browser
test can read both from the rendered DOM.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

_STYLE = """*{box-sizing:border-box}html{-webkit-text-size-adjust:100%}
body{font-family:system-ui,sans-serif;line-height:1.4;max-width:1400px;margin:0 auto;padding:1em 1.5em;color:#222}
h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:1.8em}h3{font-size:1.05em}
p,li,dd,dt,figcaption{overflow-wrap:anywhere}td,th{overflow-wrap:break-word}
.identity{display:flex;flex-wrap:wrap;gap:.2em 1.6em;margin:0 0 .8em;font-size:.9em;color:#444}
.identity div{min-width:0}.identity dt,.identity dd{display:inline;margin:0}.identity dt{font-weight:600}
.identity dt::after{content:": "}
.headline{background:#f4f8fc;border:1px solid #cddbeb;border-radius:6px;padding:.5em 1em;margin-bottom:1em}
.headline h2{margin:.2em 0;border:0}.nf{margin:.3em 0}.complete td{overflow-wrap:anywhere}
.warn{background:#fff3cd;padding:.3em .7em;border-left:4px solid #e0a800;margin:.4em 0;font-size:.92em}
dl.items{display:grid;grid-template-columns:minmax(9em,15em) minmax(0,1fr);gap:.35em 1em;margin:.4em 0}
dt{font-weight:600}dd{margin:0}
.pair{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,560px),1fr));gap:0 2.5em;align-items:start}
.pair>*{min-width:0}
.figs{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,420px),1fr));gap:1em;align-items:start}
figure{margin:0;min-width:0}img{display:block;max-width:100%;height:auto;border:1px solid #eee}
.tbl{max-width:100%;overflow-x:auto}table{border-collapse:collapse;font-size:.85em;margin:.5em 0;max-width:100%}
td,th{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}th{background:#f3f3f3}td.num{text-align:right}
@media (max-width:700px){body{padding:.4em .7em}h1{font-size:1.25em}.headline h2{display:none}.identity{font-size:.8em}
.headline{padding:.3em .6em}dl.items{grid-template-columns:minmax(0,1fr)}dl.items dd{margin-bottom:.4em}
.nf,.headline p,.headline dd,.headline dt{font-size:.86em;line-height:1.28}.warn{font-size:.82em;line-height:1.28;padding:.2em .5em}
.identity{gap:0 1em;margin-bottom:.4em}}"""
# Each row of a table becomes a labelled card below a width that depends on how many columns it has,
# so a table is either readable in full or a list of cards, never a table cut off by a scroll box.
_CARDS = """@media (max-width:{width}px){{table.{c},.{c} tbody,.{c} tr,.{c} td{{display:block;width:100%}}
.{c} thead{{display:none}}.{c} tr{{border:1px solid #ccc;border-radius:4px;margin:.5em 0;padding:.2em .5em}}
.{c} td,.{c} td.num{{border:0;display:grid;grid-template-columns:minmax(0,45%) minmax(0,1fr);gap:.6em;text-align:left;
padding:2px 0;overflow-wrap:anywhere}}.{c} td::before{{content:attr(data-label);font-weight:600;color:#555}}}}"""
CARD_CLASSES = ((3, "cards-s", 700), (6, "cards-m", 900), (8, "cards-l", 1150))  # (more columns than, class, width)
_STYLE += "".join(_CARDS.format(c=c, width=w) for _, c, w in CARD_CLASSES)
_CHECK = """<script>
window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String(e.message||e));});
window.addEventListener('load',function(){var imgs=document.images,ok=0;for(var i=0;i<imgs.length;i++){
if(imgs[i].complete&&imgs[i].naturalWidth>0){ok++;}}document.body.dataset.imagesOk=ok+'/'+imgs.length;
document.body.dataset.errors=String(window.__errors.length);});
</script>"""
NUMBER = ' class="num"'
PERFORMANCE_FIGURES = ("plots/roc.png", "plots/calibration.png", "plots/decision_curve.png",
                       "plots/predicted_vs_observed.png")


# What each scale of the roles table means for a clinician (terminal, report and README say the same).
SCALE_WORDS = {
    "absolute": "absolute scale (role_absolute): the drug's gain in the probability of response (drug minus placebo; "
                "0.10 = 10 percentage points) changes with the feature; this is the scale that says who gains more "
                "from treatment",
    "log_odds": "log-odds scale (role_log_odds): the drug's odds ratio changes with the feature (predictive), or the "
                "feature predicts response on placebo (prognostic); a prognostic feature with a constant odds ratio "
                "still changes the absolute gain, and a constant absolute gain can look like an odds-ratio "
                "interaction, so do not read this scale as who gains more",
}


@dataclass
class Section:
    """A section of the report that only some tasks have (durability, tolerability): heading, a paragraph of
    plain text, display tables (caption, frame) and the keys of its figures."""

    heading: str
    text: str
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    figures: tuple[str, ...] = ()


@dataclass
class ReportContent:
    """What goes into the report; every field is an aggregate (no patient-level rows).

    Tables other than *domains* arrive formatted for display (strings); *identity* and *headline*
    are rendered in their given order at the top.
    """

    title: str
    summary: dict[str, str]
    metrics: pd.DataFrame
    notes: list[str]
    warnings: list[str]
    importance: pd.DataFrame
    domains: pd.DataFrame
    figures: dict[str, object] = field(default_factory=dict)
    limitations: list[str] = field(default_factory=list)
    questions: list[tuple[str, str]] = field(default_factory=list)  # (clinical question, the run's answer)
    roles: pd.DataFrame | None = None
    benefit_tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    roles_note: str = ""  # why the roles table is exploratory (underpowered), or empty
    identity: dict[str, str] = field(default_factory=dict)
    headline: list[tuple[str, str]] = field(default_factory=list)  # (question, the run's answer)
    participants: pd.DataFrame | None = None  # table 1, by arm
    subgroups: pd.DataFrame | None = None
    small_subgroup: tuple[int, int] = (10, 5)  # the config's policy: fewer courses, or events per class, show counts only
    sections: list[Section] = field(default_factory=list)  # the task's own sections, after the performance figures
    outcome: str = "response"  # the outcome as a noun phrase (section headings)
    small_events: str = "in either outcome class"  # what the subgroups' event minimum counts
    # the first screen's answer in natural frequencies and percentage points, before any AUROC ("" for none)
    frequencies: str = ""
    completeness: list[tuple[str, pd.DataFrame]] = field(default_factory=list)  # versions, final model, flow


def png_bytes(fig) -> bytes:
    """A matplotlib figure as the report's PNG (100 dpi, cropped to what is drawn); PNG bytes pass unchanged."""
    if isinstance(fig, bytes):
        return fig
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def png_base64(fig) -> str:
    """A matplotlib figure (or its :func:`png_bytes`) as base64 PNG."""
    return base64.b64encode(png_bytes(fig)).decode("ascii")


def _img(name: str, fig) -> str:
    return f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{png_base64(fig)}"></figure>'


def _cell(value: object) -> str:
    return "–" if isinstance(value, float) and value != value else html.escape(
        f"{value:.3f}" if isinstance(value, float) else str(value))


def _td(head: str, value: object) -> str:
    text = _cell(value)
    number = re.match(r"[-+<]?\d", html.unescape(text)) is not None  # numbers align right, words left
    return f'<td{NUMBER if number else ""} data-label="{head}">{text}</td>'


def _table(frame: pd.DataFrame) -> str:
    """A table whose cells carry their column name (``data-label``), so that a narrow screen can show
    each row as a labelled card instead of a table wider than the screen."""
    if frame.empty:
        return "<p>(none)</p>"
    heads = [html.escape(str(c)) for c in frame.columns]
    rows = "".join("<tr>" + "".join(_td(h, v) for h, v in zip(heads, row)) + "</tr>"
                   for row in frame.itertuples(index=False))
    # three short columns fit a phone as they are; wider tables turn into cards earlier
    cards = next((f' class="{c}"' for more, c, _ in reversed(CARD_CLASSES) if len(heads) > more), "")
    head = "".join(f"<th>{h}</th>" for h in heads)
    return f'<div class="tbl"><table{cards}><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></div>'


def _items(pairs, cls: str = "items") -> str:
    body = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in pairs)
    return f'<dl class="{cls}">{body}</dl>'


def _identity(c: ReportContent) -> str:
    # one <div> per pair so a pair wraps as a unit on a narrow screen
    body = "".join(f"<div><dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd></div>" for k, v in c.identity.items())
    return f'<dl class="identity">{body}</dl>'


def _warning(text: str) -> str:
    lead, sep, rest = text.partition(":")
    if not sep or len(lead) > 12:  # no short "WARNING:"-style lead to set in bold
        return f'<p class="warn">{html.escape(text)}</p>'
    return f'<p class="warn"><strong>{html.escape(lead)}:</strong>{html.escape(rest)}</p>'


def _headline(c: ReportContent) -> str:
    """The answer in natural frequencies (a clinician's language first), performance with its CI, then every
    warning (they qualify it), then the features and operating point.

    Ordered so that on a phone the frequencies, the headline figure and the start of every warning fit the first screen.
    """
    first, rest = c.headline[:1], c.headline[1:]
    warn = "".join(_warning(w) for w in c.warnings)
    lead = f'<p class="nf">{html.escape(c.frequencies)}</p>' if c.frequencies else ""
    return f'<section class="headline"><h2>In short</h2>{lead}{_items(first)}{warn}{_items(rest)}</section>'


def _roles(c: ReportContent, section: Callable[[list[str]], str]) -> str:
    """Benefit figures and the biomarker roles table, when the run estimated benefit."""
    if c.roles is None:
        return ""
    tables = "".join(f"<h3>{html.escape(name)}</h3>{_table(frame)}" for name, frame in c.benefit_tables.items())
    # the treatment-selection curve leads: it is the decision curve that counts placebo response (the drug arm's
    # response-prediction decision curve, under Performance, does not)
    keys = sorted((k for k in c.figures if k.startswith("benefit/")), key=lambda k: not k.startswith("benefit/treatment_selection"))
    return f"""<h2>Benefit over placebo, out of fold</h2><div class="figs">{section(keys)}</div>{tables}
<h2>Biomarker roles{" (exploratory)" if c.roles_note else ""}: predictive or prognostic, on two scales</h2>
{f"<p><strong>Exploratory:</strong> {html.escape(c.roles_note)}.</p>" if c.roles_note else ""}
<p><em>{html.escape(SCALE_WORDS["absolute"])}</em>: the doubly robust benefit regressed on the feature (proxies of one
source column tested together), FDR-controlled; <em>absolute interaction</em> is in probability per SD of the
feature. <em>{html.escape(SCALE_WORDS["log_odds"])}</em>: the feature x drug interaction in log-odds per SD;
<em>prognostic</em>: the feature's log-odds per SD on placebo (adjusted for arm and site). A feature that
predicts response on placebo but not on the drug modifies the absolute benefit (those with a poor prognosis on
placebo gain more): on the absolute scale it is called <em>predictive</em> where the cohort has the power to show
it (often not: see the power line), whatever the log-odds scale calls it. Benefit
also varies with baseline risk when no interaction exists (PATH statement, Kent et al. 2020): see the
benefit-by-baseline-risk figure, where benefit that falls as placebo-arm risk rises is placebo prognosis.
Standard errors clustered on the patient; missing values imputed (every course of the comparisons counts).
Rows in order of the benefit model's mean |SHAP|; source columns and n in benefit/biomarkers.csv.</p>
{_table(c.roles)}"""


def _overview(c: ReportContent) -> str:
    """The TRIPOD+AI items and table 1 (side by side on a wide screen)."""
    table1 = "" if c.participants is None else (
        "<div><h2>Participants by arm (table 1)</h2><p>Analysed courses (those with the outcome). Means and "
        "shares are withheld (–) for fewer than 5 courses.</p>" + _table(c.participants) + "</div>")
    return f"""<div class="pair"><div><h2>Summary (TRIPOD+AI items)</h2>{_items(c.summary.items())}</div>{table1}</div>"""


def _performance(c: ReportContent, section: Callable[[list[str]], str]) -> str:
    figures = section(list(PERFORMANCE_FIGURES))  # none for a time to relapse: its own section has its figures
    subgroups = "" if c.subgroups is None else (
        f"<h2>Subgroups (pooled out-of-fold)</h2><p>Subgroups with fewer than {c.small_subgroup[0]} courses, or fewer "
        f"than {c.small_subgroup[1]} {html.escape(c.small_events)}, show counts only. Small subgroups have wide uncertainty: read them as a check "
        "for gross miscalibration, not as evidence of a difference.</p>" + _table(c.subgroups))
    return f"""<h2>Performance (out of fold)</h2>
<p>Every estimate is the mean over CV repeats of the metric of each repeat's out-of-fold predictions: one
number per name, the same in the terminal, <code>runs</code>, MLflow and this report. 95% CIs: for the AUROCs
(and the gain over the arm), the corrected resampled t interval over outer folds (refit and selection
included), centred on the estimate; the others a patient bootstrap of the out-of-fold predictions (it leaves
out refit and selection variance). Metrics named <em>active</em> are judged on the drug-arm courses only.
<em>repeat range</em>: range over CV repeats. <em>p</em>: tests the statistic it is
named after (the AUROC within the active arm(s), or for a time to relapse Harrell's C within them, per CV repeat then
averaged, where the cohort has drug courses) by
B re-runs of the whole procedure on labels exchanged between whole patients within site and arm; its smallest
possible value is 1/(B+1). <em>p adjusted</em>: the same test with each family's p adjusted for testing every
family (max-T, Westfall &amp; Young).</p>
{_table(c.metrics)}
{figures and f'<h2>Discrimination, calibration and clinical utility</h2><div class="figs">{figures}</div>'}
{"".join(_section(s, section) for s in c.sections)}
{subgroups}"""


def _section(s: Section, section: Callable[[list[str]], str]) -> str:
    tables = "".join(f"<h3>{html.escape(caption)}</h3>{_table(frame)}" for caption, frame in s.tables)
    return (f"<h2>{html.escape(s.heading)}</h2><p>{html.escape(s.text)}</p>"
            f'<div class="figs">{section(list(s.figures))}</div>{tables}')


def _shap(c: ReportContent, section: Callable[[list[str]], str]) -> str:
    final = [k for k in c.figures if k.startswith("shap/beeswarm") or k.startswith("shap/dependence")]
    return f"""<h2>Which features predict {html.escape(c.outcome)} (SHAP)</h2>
<p>Global importance uses out-of-fold SHAP values: each outer fold's selected model explained on its
held-out courses. <em>topk frequency</em> (CSV: topk_frequency) is the share of folds in which the feature is
in the top 5; <em>sign consistency</em> (sign_consistency) the share agreeing on its direction;
<em>consistent</em> needs both ≥ 0.8 and a procedure that beat permuted labels. <em>main | modifier part</em>:
mean |SHAP| of the feature's own effect and of its feature x arm term. A candidate is not a proven predictor.
The full table is in shap/global_importance.csv.</p>
{_table(c.importance)}<div class="figs">{section(["shap/importance_bar.png", "shap/domains.png"])}</div>
<h3>Logged model (an ensemble of members each fit on (k-1)/k of the courses)</h3><div class="figs">{section(final)}</div>"""


def render_report(c: ReportContent) -> str:
    """The report as one HTML string."""
    e = html.escape
    section = lambda keys: "".join(_img(k, c.figures[k]) for k in keys if k in c.figures)  # noqa: E731
    notes = "".join(f"<li>{e(n)}</li>" for n in c.notes)
    limits = "".join(f"<li>{e(n)}</li>" for n in c.limitations)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{e(c.title)}</title>
<style>{_STYLE}</style>{_CHECK}</head><body>
<h1>{e(c.title)}</h1>{_identity(c)}{_headline(c)}
<h2>The clinician's {"two questions" if len(c.questions) == 2 else "question" if len(c.questions) == 1 else "questions"}</h2>
{_items(c.questions)}
{_roles(c, section)}
{_overview(c)}
{_performance(c, section)}
{_shap(c, section)}
{"".join(f'<h2>{e(h)}</h2><div class="complete">{_table(t)}</div>' for h, t in c.completeness)}
<h2>Notes</h2><ul>{notes}</ul>
<h2>Limitations</h2><ul>{limits}</ul>
</body></html>"""
