"""The reasons ``score --explain K`` writes beside each score: the K features that moved a prediction most.

A probability's reasons are in percentage points of that probability (exact SHAP on the log-odds, shared out
on the probability scale by :func:`ketamine_response.models.explain.probability_points`); a percentage
change's are in its own percentage points; a time to relapse's stay on the log relapse hazard. A feature
that was missing shows ``missing (imputed)``: the model saw the value its pipeline imputed.

With a treatment column each course's reasons explain the arm given (``reason_<i>_*``). A blind file (no
treatment column) gets every arm's reasons (``reason_<arm>_<i>_*``) and, for each drug with a benefit model,
the reasons of the response model's drug-minus-placebo difference on the risk-difference scale
(``reason_difference_<drug>_<i>_*``): the difference of the two arms' points. The benefit model itself
(``predicted_benefit_<drug>``) has no exact explainer without training rows, which a logged model does not
carry, so its reasons are those of the difference ``probability_<drug> - probability_placebo``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ARM_COLUMNS
from ketamine_response.features.tasks import TaskKind

MISSING = "missing (imputed)"
PARTS = ("feature", "value")


def reason_unit(model: Any) -> str:
    """The suffix of the reasons' number column: ``points`` (percentage points) or ``log_hazard``."""
    return "log_hazard" if model.task.kind is TaskKind.SURVIVAL else "points"


def difference_drugs(model: Any) -> list[str]:
    """The drugs whose benefit over placebo a blind file's reasons explain."""
    return list(getattr(model, "benefit", {})) if model.task.benefit and model.arm_columns() else []


def reason_groups(model: Any, blind: bool) -> list[str]:
    """The prefixes of the reason columns: ``reason_`` for the arm given; per arm and per drug difference blind."""
    if not blind:
        return ["reason_"]
    return [f"reason_{arm}_" for arm in getattr(model, "arms", ())] + [f"reason_difference_{d}_" for d in difference_drugs(model)]


def reason_columns(model: Any, k: int, blind: bool = False) -> list[str]:
    """Every reason column, in order: the same for every chunk, whether or not a row needs them all."""
    parts = (*PARTS, reason_unit(model))
    return [f"{group}{i + 1}_{part}" for group in reason_groups(model, blind) for i in range(k) for part in parts]


def contributions(model: Any, table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per course and feature, its contribution (in the unit of :func:`reason_unit`) and the feature's value;
    NaN contributions for a course without a prediction."""
    from ketamine_response.models.explain import probability_points

    explanation = model.explain_table(table)
    values = explanation.values
    if model.task.probabilities:
        values = probability_points(model.estimator, explanation, model.predict_table(table))
    # a course of an arm never seen in training has a blank prediction (its warnings say why): nothing was
    # predicted, so nothing is explained; NaN here leaves its reasons blank (top_reasons), on both engines
    unseen = model.not_seen(table, "treatment").to_numpy()
    if unseen.any():
        values = values.copy()
        values.loc[unseen, :] = np.nan
    return values, model.feature_table(table).reindex(columns=values.columns)


def top_reasons(values: pd.DataFrame, features: pd.DataFrame, k: int, group: str, unit: str) -> dict[str, Any]:
    """The *k* largest contributions of each course by size: feature name, value shown, contribution; blank
    beyond the model's features, so the columns do not depend on the model's size. The treatment indicator is
    never a reason: the course's arm is the question asked, not a patient feature (its points stay in the total)."""
    values = values.drop(columns=[c for c in ARM_COLUMNS if c in values.columns])
    features = features.reindex(columns=values.columns)
    v = values.to_numpy(dtype=float)
    x = features.to_numpy(dtype=float)
    order = np.argsort(-np.abs(np.nan_to_num(v)), axis=1, kind="stable")
    rows, names = np.arange(len(values)), np.asarray(values.columns, dtype=object)
    out: dict[str, Any] = {}
    for i in range(k):
        column = f"{group}{i + 1}_"
        if i >= v.shape[1]:
            out |= {column + "feature": "", column + "value": "", column + unit: np.nan}
            continue
        at = order[:, i]
        blank = np.isnan(v[rows, at])  # no prediction (an arm never seen in training): no reason either
        out[column + "feature"] = np.where(blank, "", names[at])
        out[column + "value"] = np.where(blank, "", shown(x[rows, at]))
        out[column + unit] = v[rows, at]
    return out


def shown(values: np.ndarray) -> np.ndarray:
    """Feature values as text: 4 significant digits, ``missing (imputed)`` where the course had none."""
    return np.array([MISSING if np.isnan(v) else f"{v:.4g}" for v in values], dtype=object)


def explain_columns(model: Any, table: pd.DataFrame, k: int, blind: bool = False) -> pd.DataFrame:
    """The reason columns of :func:`reason_columns` for the validated courses in *table*."""
    unit, out = reason_unit(model), dict[str, Any]()
    if not blind:
        out = top_reasons(*contributions(model, table), k, "reason_", unit)
        return pd.DataFrame(out, index=table.index)[reason_columns(model, k)]
    by_arm = {arm: contributions(model, table.assign(treatment=arm)) for arm in getattr(model, "arms", ())}
    for arm, (values, features) in by_arm.items():
        out |= top_reasons(values, features, k, f"reason_{arm}_", unit)
    for drug in difference_drugs(model):  # the drug's features (its arm indicator set) beside the difference
        difference = by_arm[drug][0] - by_arm["placebo"][0].reindex(columns=by_arm[drug][0].columns, fill_value=0.0)
        out |= top_reasons(difference, by_arm[drug][1], k, f"reason_difference_{drug}_", unit)
    return pd.DataFrame(out, index=table.index)[reason_columns(model, k, blind=True)]
