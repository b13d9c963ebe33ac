"""One number per name: every AUROC the tool prints for one run (terminal table, ``runs``, MLflow metrics, the run
description, the report and its plot legends) is the one value of its estimator name, inside its own interval."""

from __future__ import annotations

import re

import pytest

NAMES = ("auroc_active", "auroc", "auroc_gain_over_arm")
# "0.601 (95% CI 0.275 to 0.928)", "0.601 (0.275–0.928)", "0.698 (0.62-0.75)", "0.860 (0.81, 0.91)": a point and
# its interval
TRIPLE = re.compile(r"(-?\d+\.\d{3})\s*\((?:95% CI\s*)?(-?\d+\.(\d{2,3}))\s*(?:to|–|-|,)\s*(-?\d+\.\d{2,3})\)")


def _named(text: str, ci: dict[str, tuple[float, float]]) -> dict[str, set[float]]:
    """The points printed with one of *ci*'s intervals, by the name whose interval it is (as printed, rounded)."""
    found: dict[str, set[float]] = {}
    for point, low, decimals, high in TRIPLE.findall(text):
        tolerance = 0.51 * 10 ** -len(decimals)
        for name in NAMES:
            lo, hi = ci[name]
            if abs(lo - float(low)) <= tolerance and abs(hi - float(high)) <= tolerance:
                found.setdefault(name, set()).add(float(point))
    return found


def _legend_values(figures: dict) -> dict[str, set[float]]:
    """The AUROCs the ROC figure's legend prints, by the name its label gives (drug arm(s) or all arms)."""
    found: dict[str, set[float]] = {}
    for text in (t.get_text() for t in figures["plots/roc.png"].axes[0].get_legend().get_texts()):
        if value := re.search(r"AUROC (\d\.\d{3})", text):
            found.setdefault("auroc_active" if text.startswith("drug arm") else "auroc", set()).add(float(value.group(1)))
    return found


@pytest.fixture(scope="module")
def surfaces(strong_run, tmp_path_factory) -> dict[str, dict[str, set[float]]]:
    import mlflow

    from ketamine_response.pipelines import listing
    from ketamine_response.pipelines.evaluation.repeats import active
    from ketamine_response.pipelines.flows.report import run_report
    from ketamine_response.pipelines.folds import pooled
    from ketamine_response.pipelines.reporting.plots import performance_figures
    from ketamine_response.pipelines.reporting.terminal import render_runs, render_table

    result = strong_run[0]
    ci = result.evaluations["selected"].ci
    runs = listing.list_runs("tests")
    logged = mlflow.MlflowClient().get_run(result.run_id).data
    page = run_report(result.run_id, tmp_path_factory.mktemp("one-number")).read_text(encoding="utf-8")
    sel = result.evaluations["selected"]
    figures = performance_figures(result.data.y, pooled(result.data, result.folds), sel, "selected", active(result.data))
    table, task, statistic = result.table(), result.data.task, result.permutation.statistic
    texts = {"terminal": render_table(table, task, statistic, result.target) + "\n"  # within 100 columns, and --wide
                         + render_table(table, task, statistic, result.target, wide=True),
             "runs": render_runs(runs[runs["run_id"] == result.run_id]),
             "description": logged.tags["mlflow.note.content"],
             "report": re.sub(r"<[^>]+>", " ", re.sub(r'src="data:[^"]*"', "", page))}
    out = {surface: _named(text, ci) for surface, text in texts.items()}
    out["mlflow"] = {name: {round(logged.metrics[name], 3)} for name in NAMES if name in logged.metrics}
    out["runs table"] = {name: {round(float(runs.loc[runs["run_id"] == result.run_id, name].iloc[0]), 3)}
                         for name in NAMES if name in runs}
    out["ROC legend"] = _legend_values(figures)
    return out


def test_every_auroc_printed_for_a_run_is_the_one_value_of_its_name(strong_run, surfaces):
    sel = strong_run[0].evaluations["selected"]
    for name in NAMES:
        seen = {surface: values[name] for surface, values in surfaces.items() if name in values}
        printed = {round(v, 3) for values in seen.values() for v in values}
        assert printed == {round(sel.metrics[name], 3)}, (name, seen)
    # each surface shows the names it is meant to show
    assert set(NAMES) <= set(surfaces["terminal"]) and set(NAMES) <= set(surfaces["report"])
    assert set(NAMES) <= set(surfaces["mlflow"]) and {"auroc_active", "auroc"} <= set(surfaces["ROC legend"])
    assert {"auroc_active", "auroc"} <= set(surfaces["description"]) and surfaces["runs"]


def test_no_point_estimate_outside_its_own_interval(strong_run):
    import mlflow

    from ketamine_response.pipelines.evaluation.estimators import METRICS, check_intervals, outside

    result = strong_run[0]
    for name, ev in result.evaluations.items():
        assert outside(ev.metrics, ev.ci) == [], name
    logged = mlflow.MlflowClient().get_run(result.run_id).data.metrics
    pairs = {m.removesuffix("_ci_low"): (logged[m], logged[m.removesuffix("low") + "high"]) for m in logged
             if m.endswith("_ci_low") and m.removesuffix("low") + "high" in logged}
    check_intervals(logged, pairs)  # what MLflow holds too
    assert not any(m.endswith("_fold_mean") for m in logged)  # no second estimator under a derived name
    with pytest.raises(AssertionError, match=r"auroc 0\.9000 outside"):
        check_intervals({"auroc": 0.9}, {"auroc": (0.5, 0.6)})
    assert {"auroc_active", "auroc", "calibration_slope_active"} <= set(METRICS)
