"""SHAP figures. Each function returns a matplotlib Figure; nothing is shown."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.pipelines.evaluation.explanation import ShapSummary
from ketamine_response.pipelines.folds import Data
from ketamine_response.pipelines.reporting.plots import titled_figure


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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
    return fig


def domain_bar(domains: pd.DataFrame) -> object:
    """Mean |SHAP| summed within each domain."""
    t = domains.iloc[::-1]
    fig, ax = titled_figure("Importance by domain (final model)")
    ax.barh(t["domain"], t["mean_abs_shap"], color="#55A868")
    ax.set_xlabel("mean |sum of domain SHAP| (log-odds)")
    return fig


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
    return fig


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
    return fig


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
    return fig


def shap_figures(summary: ShapSummary, data: Data, top_dependence: int = 3) -> dict[str, object]:
    """Bar with CIs, per-domain bar, beeswarm and dependence plots of the top features."""
    if summary.final.values.shape[1] == 0 or summary.importance.empty:
        return {}
    values, base = summary.final.values, summary.final.base
    features = data.X.reindex(columns=values.columns)
    out = {"shap/importance_bar.png": importance_bar(summary.importance),
           "shap/domains.png": domain_bar(summary.domains),
           "shap/beeswarm.png": beeswarm(values, base, features)}
    # the final model may be another family than some folds' selections: plot what it uses
    top = [f for f in summary.importance["feature"] if f in values.columns and f in data.X.columns
           and data.X[f].notna().sum() > 2 and values[f].abs().sum() > 0][:top_dependence]
    for feature in top:
        out[f"shap/dependence_{feature}.png"] = dependence(values, base, features, feature)
    return out
