"""What the store holds, read back: the runs of an experiment, runs by id, a registered version, a run's text.

Read-only: ``runs``, ``compare`` and ``evaluate`` list and find here; :mod:`.tracking` writes runs and
:mod:`.registry` versions. Nothing patient-level is in the store, so nothing patient-level comes back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ketamine_response.features.errors import TrackingError
from ketamine_response.pipelines.tracking import REQUIRED_METRICS, redact, store_uri

if TYPE_CHECKING:  # pandas is not imported at run time, so the CLI can import this module quickly
    import pandas as pd


# What `runs` and `compare` read besides the required metrics: each interval beside the estimator it belongs to
LISTED_METRICS = (*REQUIRED_METRICS, "auroc_active_ci_low", "auroc_active_ci_high",
                  "auroc_gain_over_arm", "auroc_gain_over_arm_ci_low",
                  "auroc_gain_over_arm_ci_high", "c_for_benefit", "c_for_benefit_ci_low", "c_for_benefit_ci_high",
                  "c_index_active", "c_index_active_ci_low", "c_index_active_ci_high", "calibration_slope_active",
                  "calibration_slope_active_ci_low", "calibration_slope_active_ci_high", "calibration_intercept_active",
                  "calibration_intercept_active_ci_low", "calibration_intercept_active_ci_high",
                  "n_courses_active", "responders_active")
LISTED_TAGS = {"tags.run_kind": "kind", "tags.target": "target", "tags.cv_design": "cv",
               "tags.selected_model": "selected", "tags.data_origin": "data_origin", "tags.data_source": "data_source",
               "tags.data_digest": "data_digest",
               "tags.registered_model": "registered_model", "tags.training_run_id": "training_run"}


def list_runs(experiment: str) -> pd.DataFrame:
    """Parent runs of *experiment* (training and evaluation), newest first: status, kind, data origin, the
    registered version with its current alias or why it has none, and the comparison metrics. Every R² metric
    (``r2_*``) is kept, whatever the continuous target's name."""
    import mlflow

    runs = mlflow.search_runs(experiment_names=[experiment], order_by=["start_time DESC"])
    if runs.empty:
        return runs
    if "tags.mlflow.parentRunId" in runs.columns:
        runs = runs[runs["tags.mlflow.parentRunId"].isna()]
    keep = {"run_id": "run_id", "start_time": "start", "status": "status", **LISTED_TAGS,
            **{f"metrics.{m}": m for m in LISTED_METRICS},
            **{c: c.removeprefix("metrics.") for c in runs.columns if c.startswith("metrics.r2_")}}
    out = runs[[k for k in keep if k in runs.columns]].rename(columns=keep).reset_index(drop=True)
    out["kind"] = out["kind"].fillna("training") if "kind" in out else "training"
    return _with_versions(out)


def _with_versions(runs: pd.DataFrame) -> pd.DataFrame:
    """``version``, ``alias`` (as the registry holds it now, not as tagged at training) and ``alias_reason``
    in place of the ``name/version`` tag; the name is left out (it repeats the target)."""
    import pandas as pd

    if "registered_model" not in runs:
        return runs
    found = {key: model_version(*key.rsplit("/", 1)) for key in runs["registered_model"].dropna().unique()}
    rows = [found.get(key, {}) if isinstance(key, str) else {} for key in runs["registered_model"]]
    versions = pd.DataFrame({"version": [key.rsplit("/", 1)[1] if isinstance(key, str) else None
                                         for key in runs["registered_model"]],
                             "alias": [", ".join(r.get("aliases", [])) for r in rows],
                             "alias_reason": [r.get("alias_reason", "") for r in rows]}, index=runs.index)
    return pd.concat([runs.drop(columns="registered_model"), versions], axis=1)


def model_version(name: str, version: str) -> dict[str, Any]:
    """What the registry holds on one version: its training ``run_id``, ``aliases``, ``tags``, and why it has no
    alias (``alias_reason``: its tag, or the reason its description gives); {} where it cannot be read."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        v = MlflowClient().get_model_version(name, version)
    except MlflowException:
        return {}
    description = v.description or ""
    reason = v.tags.get("alias_reason") or (description.split("No alias: ", 1)[1].rstrip(".")
                                            if "No alias: " in description else "")
    reason = reason.removeprefix("none: ")  # the tag reads "none: <why>"
    return {"run_id": v.tags.get("run_id") or v.run_id or "", "aliases": list(v.aliases), "tags": dict(v.tags),
            "alias_reason": "" if v.aliases else reason}


def find_runs(ids: list[str]) -> list[dict[str, Any]]:
    """The runs named by full ids or unique prefixes, in the order given, from every experiment: id,
    experiment, status, start, tags, params and metrics of each.

    Raises
    ------
    TrackingError
        If a prefix matches no run, or several (their ids listed).
    """
    import mlflow

    every = mlflow.search_runs(search_all_experiments=True, output_format="list")
    out = []
    for wanted in ids:
        matches = [r for r in every if r.info.run_id.startswith(wanted.lower())]
        if len(matches) != 1:
            found = ", ".join(r.info.run_id[:12] for r in matches[:5])
            raise TrackingError(f"run '{wanted}' " + (f"matches {len(matches)} runs ({found}); give more of its id."
                                                      if matches else f"matches no run in {redact(store_uri())}. "
                                                      "List the runs with 'ketamine-response runs'."))
        run = matches[0]
        experiment = mlflow.get_experiment(run.info.experiment_id)
        out.append({"run_id": run.info.run_id, "experiment": experiment.name if experiment else "",
                    "status": run.info.status, "start": run.info.start_time, "tags": dict(run.data.tags),
                    "params": dict(run.data.params), "metrics": dict(run.data.metrics)})
    return out


def run_text(run_id: str, path: str) -> str | None:
    """The text artifact *path* of run *run_id*, or None when the run did not log it."""
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    try:
        return str(mlflow.artifacts.load_text(f"runs:/{run_id}/{path}"))
    except (MlflowException, OSError):
        return None
