"""The ``explain`` flow: one patient's courses under a logged model, as a waterfall and a short table.

Runs locally; nothing is logged (per-course explanations are patient-level).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ketamine_response.features.cohort.validation import load_cohort
from ketamine_response.features.errors import CohortFileError
from ketamine_response.pipelines.flows.score_reasons import shown as shown_values


def explain_patient(model_uri: str, cohort_path: str | Path, patient: str, out: str | Path | None = None,
                    mapping_path: str | Path | None = None, top: int = 5) -> list[str]:
    """Write a waterfall PNG per course of *patient* and return lines describing the top contributions."""
    from ketamine_response.features.cohort.reader import refuse_overwriting, write_aside
    from ketamine_response.pipelines import registry, store
    from ketamine_response.pipelines.reporting.shap_plots import waterfall

    refuse_overwriting({"--out": out}, [cohort_path, mapping_path])
    cohort = load_cohort(cohort_path, mapping_path)  # before the model loads: a bad file is refused at once
    store.open_store()
    uri, _, _ = registry.resolve_model(model_uri)  # as score does: an alias or `latest` names one version
    model = registry.load_model(uri).unwrap_python_model()
    table = cohort.valid_table()
    rows = table[table["patient_id"] == patient]
    if rows.empty:
        where = "has problems (run validate)" if (cohort.table["patient_id"] == patient).any() else "is not in the file"
        raise CohortFileError(f"{cohort_path}: patient_id '{patient}' {where}.")
    explanation = model.explain_table(rows)
    probabilities = model.predict_table(rows)
    features = model.feature_table(rows)
    out = Path(out) if out else Path(f"explain-{patient}.png")
    lines = []
    points = _points(model, explanation, probabilities)
    for i, (row, course) in enumerate(rows.iterrows()):
        if np.isnan(probabilities[i]):  # as score leaves it blank: no prediction, so nothing to explain
            lines.append(f"{patient}, {course['treatment']}: no prediction (treatment not seen in training); "
                         "nothing to explain")
            continue
        values = explanation.values.loc[row]
        path = out if len(rows) == 1 else out.with_name(f"{out.stem}-{course['treatment']}{out.suffix}")
        title = f"{patient}, {course['treatment']}: {_predicted(model, probabilities[i])}"
        write_aside(path, partial(_save, waterfall(values, float(explanation.base[i]), features.loc[row], title),
                                  path.suffix.lstrip(".").lower() or "png"))
        lines.append(f"{title}  (waterfall: {path}, in {model.task.explain_unit})")
        for name, v in values.reindex(values.abs().sort_values(ascending=False).index).head(top).items():
            shown = shown_values(np.array([features.loc[row].get(name, np.nan)], dtype=float))[0]
            lines.append(f"  {name:32s} {shown:>17s}  " + _contribution(model, v, points.loc[row, name] if points is not None else None))
    return lines


def _points(model: Any, explanation: Any, probabilities: Any) -> Any:
    """A probability model's contributions in percentage points (None for other targets: their unit stands)."""
    from ketamine_response.models.explain import probability_points

    return probability_points(model.estimator, explanation, probabilities) if model.task.probabilities else None


def _contribution(model: Any, log_odds: float, points: float | None) -> str:
    """One contribution in words: percentage points with the log-odds beside them, or the target's own unit."""
    if points is None:
        return f"{log_odds:+.3f} {model.task.explain_unit}"
    return f"{points:+.1f} percentage points (log-odds {log_odds:+.3f})"


def _save(figure: Any, kind: str, path: Path) -> None:
    # the format is named: the temporary name's extension (.partial) says nothing to matplotlib
    figure.savefig(path, format=kind, dpi=100, bbox_inches="tight")


def _predicted(model: Any, value: float) -> str:
    """The prediction a waterfall explains, in words: a probability, a relapse risk, or a percentage change."""
    from ketamine_response.features.tasks import HORIZONS, TaskKind

    if model.task.kind is TaskKind.SURVIVAL:
        return f"P(relapse within {HORIZONS[0]} days of a response) = {value:.2f} (SHAP on the log relapse hazard)"
    if model.task.probabilities:
        return f"P({model.target}) = {value:.2f}"
    return f"predicted {model.target} = {value:+.1f}%"
