"""Exact SHAP values of the fitted families, in the feature dictionary's space.

* LightGBM: TreeSHAP as LightGBM computes it (``predict(pred_contrib=True)``), the reference
  implementation that ``shap.TreeExplainer`` also calls for LightGBM models.
* Logistic models: exact linear SHAP with the training data as background,
  phi_j = beta_j * (t_j - mean_background(t_j)) on the transformed features.
* Prevalence: every value is 0; the base value is the log-odds of the training event rate.

* Boosted survival trees: exact TreeSHAP by shap on the trees in its generic format.

Values explain the model's raw output: log-odds before calibration (Platt scaling is monotone) for
a classifier, the predicted value itself for a regressor (continuous target), the log relapse hazard
for a durability model.
For a calibrated ensemble the members' values are averaged, as are their raw outputs, so
additivity (sum of values + base = raw output) holds exactly. Transformed columns are summed back
to the feature they came from: missingness indicators and feature x active-arm terms go to their
feature; the inflammation composite stays one feature whose sources are the three markers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit

from ketamine_response.models.families import ExplainerKind, get_family


@dataclass(frozen=True)
class Explanation:
    """SHAP values (rows = courses, columns = features), base values and the raw output they add to.

    ``modifier`` is the part of each feature's value that comes through its feature x active-arm
    term (effect modification, predictive); ``values - modifier`` is its main (prognostic) part.
    It is all zeros for families without explicit interaction terms (trees, constants).
    """

    values: pd.DataFrame
    base: np.ndarray
    raw: np.ndarray
    modifier: pd.DataFrame | None = None
    member_bases: tuple[np.ndarray, ...] = ()  # each ensemble member's base (what its calibrator maps)

    @property
    def main(self) -> pd.DataFrame:
        """The main-effect (prognostic) part of each feature's SHAP value."""
        return self.values if self.modifier is None else self.values - self.modifier


def source_feature(name: str) -> str:
    """The dictionary feature a transformed column belongs to."""
    name = name.removesuffix(":active")
    return name.removeprefix("missingindicator_")


def members(model: Any) -> list[Any]:
    """The fitted pipelines of a model: the calibrated ensemble's members, or the pipeline itself."""
    calibrated = getattr(model, "calibrated_classifiers_", None)
    return [c.estimator for c in calibrated] if calibrated else [model]


def background_centres(model: Any, family: str, background: pd.DataFrame) -> list[np.ndarray | None]:
    """Per ensemble member, the mean transformed background row (what linear SHAP centres on).

    Stored with a logged model instead of the training rows, so explanations need no patient data.
    """
    if get_family(family).explainer != "linear":
        return [None for _ in members(model)]
    return [m[:-1].transform(background).to_numpy(dtype=float).mean(axis=0) for m in members(model)]


def _constant(pipeline: Any, centre: np.ndarray | None, X: pd.DataFrame) -> Explanation:
    model = pipeline[-1]
    base = (float(logit(np.clip(model.class_prior_[1], 1e-9, 1 - 1e-9))) if hasattr(model, "class_prior_")
            else float(np.ravel(model.constant_)[0]))  # a regressor's constant
    return Explanation(pd.DataFrame(0.0, index=X.index, columns=[]), np.full(len(X), base), np.full(len(X), base))


def _tree(pipeline: Any, centre: np.ndarray | None, X: pd.DataFrame) -> Explanation:
    T = pipeline[:-1].transform(X)
    contrib = pipeline[-1].booster_.predict(T, pred_contrib=True)
    values = pd.DataFrame(contrib[:, :-1], index=X.index, columns=list(T.columns))
    return Explanation(values, contrib[:, -1], contrib.sum(axis=1))


def _linear(pipeline: Any, centre: np.ndarray | None, X: pd.DataFrame) -> Explanation:
    T, model = pipeline[:-1].transform(X), pipeline[-1]
    coef = np.ravel(model.coef_)  # (1, p) for a classifier, (p,) for a regressor
    values = pd.DataFrame((T.to_numpy(dtype=float) - centre) * coef, index=X.index, columns=list(T.columns))
    base = np.full(len(X), float(np.ravel(model.intercept_)[0] + centre @ coef))
    raw = model.decision_function(T) if hasattr(model, "decision_function") else model.predict(T)
    return Explanation(values, base, raw)


def _survival_tree(pipeline: Any, centre: np.ndarray | None, X: pd.DataFrame) -> Explanation:
    import shap

    T, model = pipeline[:-1].transform(X), pipeline[-1]
    explainer = shap.TreeExplainer(model.trees())
    values = pd.DataFrame(explainer.shap_values(T.to_numpy(dtype=float)), index=X.index, columns=list(T.columns))
    return Explanation(values, np.full(len(X), float(np.ravel(explainer.expected_value)[0])), model.decision_function(T))


EXPLAINERS: dict[ExplainerKind, Callable[[Any, np.ndarray | None, pd.DataFrame], Explanation]] = {
    "constant": _constant, "tree": _tree, "linear": _linear, "survival_tree": _survival_tree}


def explain(model: Any, family: str, background: pd.DataFrame | Sequence[np.ndarray | None],
            X: pd.DataFrame) -> Explanation:
    """SHAP values of a fitted family (calibrated or not) for the courses in *X*.

    Parameters
    ----------
    model : fitted Pipeline or CalibratedClassifierCV of *family*
    family : str
        Its registered family (:data:`models.families.FAMILIES`), which says how to explain it.
    background : DataFrame or list
        The tier-1 features the model was trained on, or their :func:`background_centres`.
    X : DataFrame
        Tier-1 features of the courses to explain.
    """
    centres = (background_centres(model, family, background) if isinstance(background, pd.DataFrame)
               else list(background))
    explainer = EXPLAINERS[get_family(family).explainer]
    parts = [explainer(m, c, X) for m, c in zip(members(model), centres)]
    summed = [p.values.T.groupby(source_feature, sort=False).sum().T for p in parts]
    columns = list(dict.fromkeys(c for s in summed for c in s.columns))
    values = _member_mean(summed, columns)
    modifiers = [p.values.loc[:, [c for c in p.values.columns if c.endswith(":active")]]
                 .T.groupby(source_feature, sort=False).sum().T for p in parts]
    modifier = _member_mean(modifiers, columns)
    base = np.mean([p.base for p in parts], axis=0)
    raw = np.mean([p.raw for p in parts], axis=0)
    return Explanation(values.reindex(index=X.index), base, raw, modifier.reindex(index=X.index),
                       tuple(np.asarray(p.base, dtype=float) for p in parts))


def _member_mean(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    """The ensemble members' mean, each member's missing columns counted as 0."""
    aligned = [f.reindex(columns=columns, fill_value=0.0) for f in frames]
    return sum(aligned[1:], aligned[0]) / len(frames)


STEP = 1e-3  # log-odds step of the local slope used where a course's raw output equals the base


def probability_points(model: Any, explanation: Explanation, probability: np.ndarray) -> pd.DataFrame:
    """A classifier's SHAP values (log-odds) as percentage points of its calibrated *probability*.

    Log-odds do not add on the probability scale, so each course's change from the reference probability
    (the calibrated probability at the base value) is shared out in proportion to the log-odds values: the
    points keep their signs and order and add up exactly to ``100 * (probability - reference)``. Where the
    raw output equals the base, the calibrated curve's local slope scales them instead.
    Hand-written: shap cannot explain the calibrated probability of a categorical LightGBM model directly
    (its interventional mode fails on categorical splits), and Platt scaling is not the logistic link.
    """
    bases = explanation.member_bases or (explanation.base,)
    reference = _probability_at(model, bases)
    slope = (_probability_at(model, tuple(b + STEP for b in bases)) - reference) / STEP
    span = explanation.raw - explanation.base
    flat = np.abs(span) < 1e-9
    scale = np.where(flat, slope, (np.asarray(probability, dtype=float) - reference) / np.where(flat, 1.0, span))
    return explanation.values.mul(100.0 * scale, axis=0)


def _probability_at(model: Any, log_odds: Sequence[np.ndarray]) -> np.ndarray:
    """The calibrated probability each member gives for raw outputs *log_odds* (one array per member), averaged
    as the calibrated ensemble averages them; an uncalibrated classifier's is the logistic of its log-odds."""
    from scipy.special import expit

    calibrated = getattr(model, "calibrated_classifiers_", None)
    if not calibrated:
        return np.asarray(expit(np.mean(log_odds, axis=0)), dtype=float)
    # each calibrator reads what scikit-learn gave it: the member's decision_function (log-odds) where it has
    # one, else its predict_proba (LightGBM's is the logistic of the log-odds that TreeSHAP explains)
    reads = [b if hasattr(c.estimator, "decision_function") else expit(b) for c, b in zip(calibrated, log_odds)]
    return np.mean([c.calibrators[0].predict(np.asarray(r, dtype=float)) for c, r in zip(calibrated, reads)], axis=0)
