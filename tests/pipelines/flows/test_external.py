"""``evaluate``: external validation of the shared strong run's registered model on a fresh synthetic cohort.

One evaluation (the session fixture ``evaluated`` in conftest.py, shared with ``test_compare.py``) on 600 fresh courses.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score


def test_auroc_matches_one_computed_from_the_scores(evaluated, tmp_path):
    from ketamine_response.pipelines.flows.score import run_score

    evaluation, path, uri = evaluated
    run_score(path, tmp_path / "scores.csv", uri)
    scores = pd.read_csv(tmp_path / "scores.csv")
    cohort = pd.read_csv(path)
    # response: MADRS at 24 h at most half of baseline, computed here from the raw columns
    cohort["responded"] = (cohort["madrs_24h"] <= 0.5 * cohort["madrs_baseline"]).where(cohort["madrs_24h"].notna())
    joined = scores.merge(cohort[["patient_id", "treatment", "responded"]], on=["patient_id", "treatment"])
    drug = joined[(joined["treatment"] != "placebo") & joined["responded"].notna()]
    # within each drug, then weighted by its courses: the estimator training's auroc_active uses
    by_drug = [(roc_auc_score(g["responded"].astype(int), g["probability"]), len(g)) for _, g in drug.groupby("treatment")
               if g["responded"].nunique() == 2]
    independent = np.average([a for a, _ in by_drug], weights=[n for _, n in by_drug])
    m = evaluation.metrics
    assert abs(m["auroc_active"] - independent) < 0.01
    assert m["n_courses_active"] == len(drug)
    assert m["auroc_active_ci_low"] <= m["auroc_active"] <= m["auroc_active_ci_high"]
    assert m["calibration_slope_active_ci_low"] <= m["calibration_slope_active"] <= m["calibration_slope_active_ci_high"]
    # the strong run's model has a benefit model and the cohort a placebo arm: c-for-benefit with its interval
    assert m["c_for_benefit_ci_low"] <= m["c_for_benefit"] <= m["c_for_benefit_ci_high"] and m["c_for_benefit"] > 0.6
    curve = evaluation.curve
    assert len(curve) >= 5 and curve["predicted"].is_monotonic_increasing
    assert np.corrcoef(curve["predicted"], curve["observed_smoothed"])[0, 1] > 0.9


def test_the_evaluation_run_is_linked_logged_without_patients_and_listed(evaluated, strong_run):
    from ketamine_response.pipelines import listing
    from ketamine_response.pipelines.reporting.terminal import render_runs

    evaluation, _, uri = evaluated
    run = listing.find_runs([evaluation.run_id])[0]
    assert run["tags"]["run_kind"] == "evaluation" and run["tags"]["training_run_id"] == strong_run[0].run_id
    assert run["tags"]["model_version"] == str(strong_run[0].version) and run["experiment"] == "tests"
    assert run["metrics"]["auroc_active"] == pytest.approx(evaluation.metrics["auroc_active"], abs=1e-4)
    curve = listing.run_text(evaluation.run_id, "calibration_curve.csv")
    assert curve is not None and "ZQX" not in curve and "ZQX" not in str(run)  # no patient id anywhere
    listed = listing.list_runs("tests")
    row = listed[listed["run_id"] == evaluation.run_id].iloc[0]
    assert row["kind"] == "evaluation" and row["version"] == str(strong_run[0].version)
    text = render_runs(listed)
    line = next(ln for ln in text.splitlines() if ln.startswith(evaluation.run_id[:8]))
    assert " eval " in line and f"{evaluation.metrics['auroc_active']:.3f} (" in line and "SYN strong" in line
    trained = next(ln for ln in text.splitlines() if ln.startswith(strong_run[0].run_id[:8]))
    assert " train " in trained and "+0." in trained  # the gain over the arm, on the training run only
    assert max(map(len, text.splitlines())) <= 100


def test_cli_prints_figures_and_refuses_bad_input(evaluated, tmp_path, capsys):
    from ketamine_response.pipelines.cli import main

    _, path, uri = evaluated
    cohort = pd.read_csv(path)
    cohort.drop(columns="madrs_24h").to_csv(tmp_path / "no-outcome.csv", index=False)
    assert main(["evaluate", str(tmp_path / "no-outcome.csv"), "--model", uri, "--bootstrap", "20"]) == 2
    assert "needs column 'madrs_24h'" in capsys.readouterr().err
    assert main(["evaluate", str(path), "--model", "models:/no-such-model/1"]) == 2
    assert "no-such-model" in capsys.readouterr().err
    small = cohort.head(200)
    small.to_csv(tmp_path / "small.csv", index=False)
    assert main(["evaluate", str(tmp_path / "small.csv"), "--model", uri, "--bootstrap", "20", "--experiment", "tests-eval"]) == 0
    out = capsys.readouterr().out
    assert "question: How likely is response if given the drug?" in out
    assert "AUROC within the drug arm(s) 0." in out and "courses" in out and "c-for-benefit, ketamine_iv vs placebo" in out
    assert "MLflow evaluation run:" in out and "(experiment tests-eval)" in out
