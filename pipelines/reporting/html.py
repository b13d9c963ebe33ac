"""The self-contained HTML report of a training run (plots embedded; opens from disk, no server).

A small inline script records, on the page itself, whether every image decoded and whether any
script error occurred (``data-images-ok``, ``data-errors`` on ``<body>``), so a headless browser
test can read both from the rendered DOM.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field

import pandas as pd

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ccc;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 6px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.warn{background:#fff3cd;padding:.5em 1em;border-left:4px solid #e0a800}
figure{display:inline-block;margin:.5em}img{max-width:100%;border:1px solid #eee}dl{display:grid;grid-template-columns:14em auto;gap:.3em 1em}
dt{font-weight:600}dd{margin:0}.scroll{overflow-x:auto}"""
_CHECK = """<script>
window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String(e.message||e));});
window.addEventListener('load',function(){var imgs=document.images,ok=0;for(var i=0;i<imgs.length;i++){
if(imgs[i].complete&&imgs[i].naturalWidth>0){ok++;}}document.body.dataset.imagesOk=ok+'/'+imgs.length;
document.body.dataset.errors=String(window.__errors.length);});
</script>"""


@dataclass
class ReportContent:
    """What goes into the report; every field is an aggregate (no patient-level rows)."""

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


def png_base64(fig) -> str:
    """A matplotlib figure as base64 PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(name: str, fig) -> str:
    return f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,{png_base64(fig)}"></figure>'


def _table(frame: pd.DataFrame) -> str:
    body = frame.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0, na_rep="–")
    return f'<div class="scroll">{body}</div>'  # wide tables scroll instead of overflowing the page


def _roles(c: ReportContent, section) -> str:
    """Benefit figures and the biomarker roles table, when the run estimated benefit."""
    if c.roles is None:
        return ""
    tables = "".join(f"<h3>{html.escape(name)}</h3>{_table(frame)}" for name, frame in c.benefit_tables.items())
    return f"""<h2>Benefit over placebo, out of fold</h2>{section([k for k in c.figures if k.startswith("benefit/")])}{tables}
<h2>Biomarker roles: predictive or prognostic</h2>
<p><em>predictive</em>: the feature x drug interaction (log-odds per SD) is distinguishable from zero after
false-discovery-rate control; <em>prognostic</em>: the feature predicts the outcome on placebo (adjusted for arm
and site). Benefit on the probability scale also varies with baseline risk when no interaction exists
(risk-based heterogeneity; PATH statement, Kent et al. 2020): a prognostic feature moves predicted
benefit without modifying the drug's effect. One regression per feature, standard errors clustered on the patient.</p>
{_table(c.roles)}"""


def render_report(c: ReportContent) -> str:
    """The report as one HTML string."""
    e = html.escape
    figs = c.figures
    section = lambda keys: "".join(_img(k, figs[k]) for k in keys if k in figs)  # noqa: E731
    tripod = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in c.summary.items())
    warn = "".join(f'<p class="warn">{e(w)}</p>' for w in c.warnings)
    notes = "".join(f"<li>{e(n)}</li>" for n in c.notes)
    limits = "".join(f"<li>{e(n)}</li>" for n in c.limitations)
    questions = "".join(f"<dt>{e(q)}</dt><dd>{e(a)}</dd>" for q, a in c.questions)
    return f"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>{e(c.title)}</title>
<style>{_STYLE}</style>{_CHECK}</head><body>
<h1>{e(c.title)}</h1>{warn}
<h2>The clinician's two questions</h2><dl>{questions}</dl>
{_roles(c, section)}
<h2>Summary (TRIPOD+AI items)</h2><dl>{tripod}</dl>
<h2>Performance (pooled out-of-fold)</h2>
<p>95% CIs: a patient bootstrap of the out-of-fold predictions (it leaves out refit and selection
variance). <em>auroc_repeat_min/max</em>: range over CV repeats. <em>permutation_p</em>: from
<em>permutation_b</em> re-runs of the whole procedure on permuted labels; its smallest possible value is
1/(B+1).</p>{_table(c.metrics)}
<h2>Discrimination, calibration and clinical utility</h2>
{section(["plots/roc.png", "plots/calibration.png", "plots/decision_curve.png", "plots/predicted_vs_observed.png"])}
<h2>Which features predict response (SHAP)</h2>
<p>Global importance uses out-of-fold SHAP values: each outer fold's selected model explained on its
held-out courses. <em>topk_frequency</em> is the share of folds in which the feature is in the top 5;
<em>sign_consistency</em> the share agreeing on its direction; <em>consistent</em> needs both ≥ 0.8.
A candidate is not a proven predictor.</p>
{section(["shap/importance_bar.png", "shap/domains.png"])}{_table(c.importance.head(20))}
<h3>Final model on all courses</h3>{section([k for k in figs if k.startswith("shap/beeswarm") or k.startswith("shap/dependence")])}
<h2>Notes</h2><ul>{notes}</ul>
<h2>Limitations</h2><ul>{limits}</ul>
</body></html>"""
