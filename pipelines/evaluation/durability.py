"""The durability section of a time-to-relapse run: its metrics with their CIs and the courses each is judged on.

Computed from an :class:`~ketamine_response.pipelines.evaluation.evaluate.Evaluation` of the survival suite
(``pipelines/evaluation/survival.py``) and the outcome array; reporting only renders the frames returned here.
Each metric counts the courses it is judged on, because they differ: a time-dependent AUROC at day t compares
courses that relapsed by t with those still relapse-free after t, and leaves out those censored before t.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ketamine_response.features.tasks import HORIZONS
from ketamine_response.pipelines.evaluation.evaluate import Evaluation

# (metric, what it says; the ideal) in the order the report shows them
DURABILITY_METRICS = (
    ("c_index_active", "Harrell's C within each drug arm, weighted by its courses: relapse after responding to the "
                       "drug, the tested statistic; 0.5 = chance"),
    ("c_index", "Harrell's C over every arm: share of comparable pairs whose earlier relapse had the higher predicted "
                "risk; 0.5 = chance, but the arm and route alone reach far above it"),
    ("uno_c", f"Uno's C: Harrell's weighted against censoring, truncated at {HORIZONS[1]} days; 0.5 = chance"),
    (f"auroc_{HORIZONS[0]}d", f"AUROC at {HORIZONS[0]} days: relapsed by then against still relapse-free; 0.5 = chance"),
    (f"auroc_{HORIZONS[1]}d", f"AUROC at {HORIZONS[1]} days: relapsed by then against still relapse-free; 0.5 = chance"),
    ("integrated_brier", "integrated Brier score of the relapse-free curves (censoring-weighted); lower is better, "
                         "0.25 = a 50% forecast"),
    (f"calibration_{HORIZONS[0]}d_gap", f"mean |predicted - Kaplan-Meier observed| relapse by {HORIZONS[0]} days over "
                                        "fifths of predicted risk (grouped, not the smoothed ICI); 0 = perfect"),
)


def _judged_on(y: np.ndarray, metric: str) -> tuple[int, int]:
    """(courses, relapses) a metric is judged on: all courses followed, or a time-dependent AUROC's cases and controls."""
    day = next((d for d in HORIZONS if metric == f"auroc_{d}d"), None)
    if day is None:
        return len(y), int(y["event"].sum())
    cases = y["event"] & (y["time"] <= day)
    return int(cases.sum() + (y["time"] > day).sum()), int(cases.sum())


def durability_table(ev: Evaluation, y: np.ndarray) -> pd.DataFrame:
    """One row per durability metric: estimate, 95% CI, the interval's kind, courses and relapses it is judged on,
    and what it says. Harrell's C is the mean over CV repeats with the corrected resampled t interval centred on it
    (the run's headline); the others have a patient-bootstrap interval (NaN where not run)."""
    rows = []
    for metric, meaning in DURABILITY_METRICS:
        if metric not in ev.metrics:
            continue
        headline = metric == ev.headline or metric == "c_index_active"
        low, high = ev.ci.get(metric, (np.nan, np.nan))
        courses, relapses = _judged_on(y, metric)
        rows.append({"metric": metric, "estimate": ev.metrics[metric], "ci_low": low, "ci_high": high,
                     "interval": "corrected CV (outer folds)" if headline else "patient bootstrap",
                     "courses": courses, "relapses": relapses, "reads": meaning})
    return pd.DataFrame(rows)


def not_followed(treatments: pd.Series, analysed: pd.Index) -> pd.Series:
    """Courses left out as not followed after a response, by arm (*treatments*: every course's arm, indexed as the
    feature frame; *analysed*: the index of the courses in the analysis)."""
    return treatments[~treatments.index.isin(analysed)].value_counts().rename("courses")
