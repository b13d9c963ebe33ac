"""SHAP figures. Each function returns a matplotlib Figure; nothing is shown.

Every figure is fitted to its labels (:func:`fit_to_labels`) before it is returned: MLflow saves a figure
as it is, without ``bbox_inches="tight"``, and shap sizes its plots for short names, so long feature names
(``log_episode_duration_months``) were cut at the left edge of the logged PNGs.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ARM_COLUMNS
from ketamine_response.pipelines.evaluation.explanation import ShapSummary
from ketamine_response.pipelines.folds import Data
from ketamine_response.pipelines.reporting.plots import titled_figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _overflow(fig: Any) -> tuple[float, float, float, float]:
    """How far (inches) the drawn figure's artists reach past its left, bottom, right and top edges."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    # laid out (constrained layout included) and its text measured, but no pixels painted: the same extents as a
    # full draw at a fraction of its cost (a beeswarm of thousands of points took about 0.5 s a draw)
    fig.draw_without_rendering()
    tight = fig.get_tightbbox(canvas.get_renderer())
    width, height = fig.get_size_inches()
    return max(0.0, -tight.x0), max(0.0, -tight.y0), max(0.0, tight.x1 - width), max(0.0, tight.y1 - height)


def fit_to_labels(fig: Any, pad: float = 0.08, tries: int = 4) -> Any:
    """Grow *fig* so every label, title and colorbar lies inside it, keeping the axes' size in inches.

    Hand-written because the savers are not ours: ``mlflow.log_figure`` takes the figure as it is. A figure
    with a layout engine (constrained) lays itself out again in the wider canvas, which can move a centred
    title again: hence a few tries. The others have their axes moved by the overflow.
    """
    for _ in range(tries):
        overflow = _overflow(fig)
        if not any(overflow):
            break
        left, bottom, right, top = (v + pad if v else 0.0 for v in overflow)
        width, height = fig.get_size_inches()
        new_w, new_h = width + left + right, height + bottom + top
        if fig.get_layout_engine() is None:
            # every position first: twinned axes (shap's waterfall) share one position, so moving one moves all
            boxes = [(ax, ax.get_position()) for ax in fig.axes]
            for ax, box in boxes:
                ax.set_position([(box.x0 * width + left) / new_w, (box.y0 * height + bottom) / new_h,
                                 box.width * width / new_w, box.height * height / new_h])
        fig.set_size_inches(new_w, new_h)
    return fig


def _shap_explanation(values: pd.DataFrame, base: np.ndarray, data: pd.DataFrame):
    import shap

    shown = data.reindex(columns=values.columns).to_numpy(dtype=float)
    return shap.Explanation(values.to_numpy(), base_values=base, data=shown, feature_names=list(values.columns))


def importance_bar(table: pd.DataFrame, top: int = 15) -> object:
    """Mean |SHAP| per feature with its range over outer-CV repeats (not a confidence interval)."""
    t = table.head(top).iloc[::-1]
    fig, ax = titled_figure("Global importance (out-of-fold mean |SHAP|; bars: range over CV repeats)")
    fig.set_size_inches(6.5, 0.32 * len(t) + 1.5)
    err = np.vstack([t["mean_abs_shap"] - t["repeat_low"], t["repeat_high"] - t["mean_abs_shap"]]).clip(min=0)
    ax.barh(t["feature"], t["mean_abs_shap"], xerr=err, color="#4C72B0", ecolor="black", capsize=2)
    ax.set_xlabel("mean |SHAP| (log-odds)")
    ax.tick_params(axis="y", labelsize=8)
    return fit_to_labels(fig)


def domain_bar(domains: pd.DataFrame) -> object:
    """Mean |SHAP| summed within each domain."""
    t = domains.iloc[::-1]
    fig, ax = titled_figure("Importance by domain (final model)")
    ax.barh(t["domain"], t["mean_abs_shap"], color="#55A868")
    ax.set_xlabel("mean |sum of domain SHAP| (log-odds)")
    return fit_to_labels(fig)


def beeswarm(values: pd.DataFrame, base: np.ndarray, data: pd.DataFrame, top: int = 15) -> object:
    """shap's beeswarm of the final model's values on all courses."""
    import shap

    plt = _pyplot()
    fig = plt.figure()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shap.plots.beeswarm(_shap_explanation(values, base, data), max_display=top, show=False)
    fig = plt.gcf()
    fig.set_size_inches(7, 0.35 * min(top, values.shape[1]) + 1.8)
    plt.close(fig)
    return fit_to_labels(fig)


def dependence(values: pd.DataFrame, base: np.ndarray, data: pd.DataFrame, feature: str) -> object:
    """shap's dependence (scatter) plot of *feature*, coloured by the feature it interacts with most."""
    import shap

    plt = _pyplot()
    explanation = _shap_explanation(values, base, data)
    fig = plt.figure(figsize=(5.5, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shap.plots.scatter(explanation[:, feature], color=explanation, show=False, ax=fig.gca())
    plt.close(fig)
    return fit_to_labels(fig)


def waterfall(values: pd.Series, base: float, data: pd.Series, title: str) -> Any:
    """shap's waterfall for one course."""
    import shap

    plt = _pyplot()
    fig = plt.figure()
    explanation = shap.Explanation(values.to_numpy(), base_values=base,
                                   data=data.reindex(values.index).to_numpy(dtype=float),
                                   feature_names=list(values.index))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        shap.plots.waterfall(explanation, max_display=12, show=False)
    fig = plt.gcf()
    fig.suptitle(title, fontsize=9)
    plt.close(fig)
    return fit_to_labels(fig)


def shap_figures(summary: ShapSummary, data: Data, top_dependence: int = 3) -> dict[str, object]:
    """Bar with CIs, per-domain bar, beeswarm and dependence plots of the top features."""
    if summary.final.values.shape[1] == 0 or summary.importance.empty:
        return {}
    values, base = summary.final.values, summary.final.base
    # the treatment indicator is the arm, not a patient feature: never plotted among the features that matter
    values = values.drop(columns=[c for c in ARM_COLUMNS if c in values.columns])
    features = data.X.reindex(columns=values.columns)
    out = {"shap/importance_bar.png": importance_bar(summary.importance)}
    if len(summary.domains) and summary.domains["mean_abs_shap"].abs().sum() > 0:  # no empty plot
        out["shap/domains.png"] = domain_bar(summary.domains)
    if values.shape[1]:
        out["shap/beeswarm.png"] = beeswarm(values, base, features)
    # the final model may be another family than some folds' selections: plot what it uses
    top = [f for f in summary.importance["feature"] if f in values.columns and f in data.X.columns
           and data.X[f].notna().sum() > 2 and values[f].abs().sum() > 0][:top_dependence]
    for feature in top:
        out[f"shap/dependence_{feature}.png"] = dependence(values, base, features, feature)
    return out
