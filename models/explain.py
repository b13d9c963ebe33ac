"""Exact SHAP values of the fitted families, in the feature dictionary's space.

* LightGBM: TreeSHAP as LightGBM computes it (``predict(pred_contrib=True)``), the reference
  implementation that ``shap.TreeExplainer`` also calls for LightGBM models.
* Logistic models: exact linear SHAP with the training data as background,
  phi_j = beta_j * (t_j - mean_background(t_j)) on the transformed features.
* Prevalence: every value is 0; the base value is the log-odds of the training event rate.

Values explain the model's raw output (log-odds, before calibration; Platt scaling is monotone).
For a calibrated ensemble the members' values are averaged, as are their raw outputs, so
additivity (sum of values + base = raw output) holds exactly. Transformed columns are summed back
to the feature they came from: missingness indicators and feature x active-arm terms go to their
feature; the inflammation composite stays one feature whose sources are the three markers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import logit

COMPOSITE = "inflammation_composite"


@dataclass(frozen=True)
class Explanation:
    """SHAP values (rows = courses, columns = features), base values and the raw output they add to."""

    values: pd.DataFrame
    base: np.ndarray
    raw: np.ndarray


def source_feature(name: str) -> str:
    """The dictionary feature a transformed column belongs to."""
    name = name.removesuffix(":active")
    return name.removeprefix("missingindicator_")


def _members(model) -> list:
    calibrated = getattr(model, "calibrated_classifiers_", None)
    return [c.estimator for c in calibrated] if calibrated else [model]


def background_centres(model, background: pd.DataFrame) -> list[np.ndarray | None]:
    """Per ensemble member, the mean transformed background row (what linear SHAP centres on).

    Stored with a logged model instead of the training rows, so explanations need no patient data.
    """
    out = []
    for member in _members(model):
        linear = type(member[-1]).__name__ == "LogisticRegression"
        out.append(member[:-1].transform(background).to_numpy(dtype=float).mean(axis=0) if linear else None)
    return out


def _explain_pipeline(pipeline, centre: np.ndarray | None, X: pd.DataFrame) -> Explanation:
    head, model = pipeline[:-1], pipeline[-1]
    kind = type(model).__name__
    if kind == "DummyClassifier":
        base = float(logit(np.clip(model.class_prior_[1], 1e-9, 1 - 1e-9)))
        return Explanation(pd.DataFrame(0.0, index=X.index, columns=[]), np.full(len(X), base), np.full(len(X), base))
    T = head.transform(X)
    if kind == "LGBMClassifier":
        contrib = model.booster_.predict(T, pred_contrib=True)
        values = pd.DataFrame(contrib[:, :-1], index=X.index, columns=list(T.columns))
        base = contrib[:, -1]
        return Explanation(values, base, contrib.sum(axis=1))
    coef = model.coef_[0]
    values = pd.DataFrame((T.to_numpy(dtype=float) - centre) * coef, index=X.index, columns=list(T.columns))
    base = np.full(len(X), float(model.intercept_[0] + centre @ coef))
    return Explanation(values, base, model.decision_function(T))


def explain(model, background: pd.DataFrame | list, X: pd.DataFrame) -> Explanation:
    """SHAP values of a fitted family (calibrated or not) for the courses in *X*.

    Parameters
    ----------
    model : fitted Pipeline or CalibratedClassifierCV from :mod:`pipelines.nested`
    background : DataFrame or list
        The tier-1 features the model was trained on, or their :func:`background_centres`.
    X : DataFrame
        Tier-1 features of the courses to explain.
    """
    centres = background_centres(model, background) if isinstance(background, pd.DataFrame) else background
    parts = [_explain_pipeline(m, c, X) for m, c in zip(_members(model), centres)]
    summed = [p.values.T.groupby(source_feature, sort=False).sum().T for p in parts]
    columns = list(dict.fromkeys(c for s in summed for c in s.columns))
    values = sum(s.reindex(columns=columns, fill_value=0.0) for s in summed) / len(parts)
    base = np.mean([p.base for p in parts], axis=0)
    raw = np.mean([p.raw for p in parts], axis=0)
    return Explanation(values.reindex(index=X.index), base, raw)
