"""SHAP figures keep their longest labels inside the saved image (they were cut at the left edge)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from ketamine_response.pipelines.flows.features import full_dictionary
from ketamine_response.pipelines.reporting import shap_plots


def _longest_names(k: int = 4) -> list[str]:
    names = sorted(full_dictionary()["feature"], key=len, reverse=True)[:k]
    return [*names, "arm_esketamine_in"]


def _inside(fig, label: str) -> None:
    """The label is drawn, and it and every other artist lie within the figure (what savefig keeps)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_text")) if label in t.get_text() and t.get_visible()]
    assert texts, f"{label} is not drawn"
    width, height = fig.get_size_inches() * fig.dpi
    for box in [t.get_window_extent(renderer) for t in texts] + [fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)]:
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width + 0.5 and box.y1 <= height + 0.5, (label, box, width, height)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")  # as mlflow.log_figure saves it: no bbox_inches
    assert buffer.getvalue().startswith(b"\x89PNG")


@pytest.fixture(scope="module")
def shap_frames():
    names = _longest_names()
    rng = np.random.default_rng(0)
    values = pd.DataFrame(rng.normal(size=(40, len(names))), columns=names)
    values[names[0]] *= 3  # the longest name leads every ranking
    data = pd.DataFrame(rng.normal(size=(40, len(names))), columns=names)
    return names, values, data


def test_every_shap_figure_keeps_the_longest_feature_name_inside(shap_frames):
    names, values, data = shap_frames
    longest = names[0]
    importance = pd.DataFrame({"feature": names, "mean_abs_shap": np.linspace(1, 0.2, len(names))})
    importance["repeat_low"], importance["repeat_high"] = importance["mean_abs_shap"] - 0.1, importance["mean_abs_shap"] + 0.1
    base = np.zeros(len(values))
    _inside(shap_plots.importance_bar(importance), longest)
    _inside(shap_plots.domain_bar(pd.DataFrame({"domain": [longest, "labs"], "mean_abs_shap": [1.0, 0.5]})), longest)
    _inside(shap_plots.beeswarm(values, base, data), longest)
    _inside(shap_plots.dependence(values, base, data, longest), longest)
    _inside(shap_plots.waterfall(values.iloc[0], 0.0, data.iloc[0], "patient P1"), longest)
