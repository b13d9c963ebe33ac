"""The benefit model end to end: logged figures and roles, the report's two questions, per-arm scoring,
and the real crossover cohort (ds005917)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from ketamine_response.pipelines.evaluation.roles import ROLE_COLUMNS
from ketamine_response.pipelines.flows.report import run_report


def test_benefit_figures_and_roles_are_logged(strong_run):
    import mlflow

    result, _, _ = strong_run
    metrics = mlflow.get_run(result.run_id).data.metrics
    assert {"c_for_benefit", "c_for_benefit_ci_low", "c_for_benefit_ci_high", "n_crossover_patients",
            "c_for_benefit_ketamine_iv", "crossover_observed_benefit", "crossover_mcnemar_exact_p", "benefit_blp_slope",
            "benefit_blp_p", "benefit_qini", "benefit_qini_ci_low", "benefit_qini_ci_high", "benefit_calibration_slope",
            "benefit_calibration_slope_ci_low", "benefit_calibration_slope_ci_high"} <= set(metrics)
    assert metrics["benefit_blp_p"] < 0.05 and metrics["benefit_qini_ci_low"] > 0  # planted heterogeneity is found
    assert metrics["c_for_benefit_ci_low"] <= metrics["c_for_benefit"] <= metrics["c_for_benefit_ci_high"]
    assert metrics["c_for_benefit"] > 0.55  # the strong scenario's planted modifiers
    assert metrics["n_crossover_patients"] > 20
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id, "benefit")}
    assert {"benefit/biomarkers.csv", "benefit/calibration.csv", "benefit/learners.csv", "benefit/crossover.csv",
            "benefit/calibration_ketamine_iv.png", "benefit/path.csv", "benefit/path_ketamine_iv.png"} <= artifacts


def test_report_leads_with_the_two_questions_then_roles(strong_run, tmp_path):
    result, _, _ = strong_run
    page = run_report(result.run_id, tmp_path).read_text()
    first, second = page.index("if given the drug"), page.index("more likely than on placebo")
    assert first < second < page.index("Biomarker roles") < page.index("TRIPOD+AI")
    assert "absolute scale (role_absolute)" in page and "log-odds scale (role_log_odds)" in page  # scales named
    assert "PATH statement" in page
    roles = pd.read_csv(tmp_path / "benefit" / "biomarkers.csv")
    assert list(roles.columns) == list(ROLE_COLUMNS)
    assert set(roles["role_log_odds"]) <= {"predictive", "prognostic", "both", "none"}
    assert set(roles["role_absolute"]) <= {"predictive", "none"}
    assert (roles["n_courses"] == roles["n_courses"].max()).all()  # imputed: every course counts for every feature
    for column in ("role_log_odds", "role_absolute"):
        called = set(roles.loc[roles[column].isin(["predictive", "both"]), "feature"])
        assert {"family_history_aud", "bmi_kg_m2"} & called  # the strongest planted modifiers
        assert not called & {"age", "sex_female", "log_il6", "log_crp", "glx_acc_mmol", "eeg_gamma_power_db"}


def test_scoring_adds_every_arm_and_the_benefit(strong_run, tmp_path):
    from ketamine_response.pipelines.flows.score import score_file

    result, cohort, oracle = strong_run
    seen = cohort["site"].isin(result.model.sites)  # 24 h: the IV sites only (esketamine has no 24 h visit)
    table = cohort[seen].head(300).copy()
    table.loc[table.index[:3], "site"] = "site_99"  # a site the model never saw
    table.loc[table.index[-1], "treatment"] = "esketamine_in"  # an arm it never saw (no 24 h visit)
    path = tmp_path / "cohort.csv"
    table.to_csv(path, index=False)
    out = tmp_path / "scores.csv"
    score_file(path, out, result.model, "m", "1")
    scores = pd.read_csv(out, keep_default_na=False)
    arms = ["probability_ketamine_iv", "probability_placebo", "predicted_benefit_ketamine_iv"]
    assert set(arms) <= set(scores.columns)
    drug = (scores["treatment"] == "ketamine_iv").to_numpy()
    np.testing.assert_allclose(scores.loc[drug, "probability"].astype(float), scores.loc[drug, "probability_ketamine_iv"])
    caveats = "; ".join(result.model.caveats)  # the model's own, on every row after the row's
    assert scores["warnings"].iloc[:3].str.contains("site not seen in training").all()
    assert (scores["warnings"].iloc[3:-1] == caveats).all()
    last = scores.iloc[-1]  # no number for an arm the model cannot know
    assert last["warnings"] == f"treatment not seen in training; {caveats}" and last["probability"] == ""
    assert "predicted_responder" not in scores and float(last["probability_placebo"]) > 0
    truth = oracle.loc[table.index, "benefit_24h_ketamine_iv"].to_numpy()  # defined for every IV-site course
    assert spearmanr(scores["predicted_benefit_ketamine_iv"].astype(float), truth)[0] > 0.5


def test_ds005917_reports_within_patient_benefit(store, tmp_path):
    """The real crossover: within-ketamine figures, observed within-patient benefit, roles and the warning."""
    import mlflow

    from ketamine_response.pipelines.flows.train import run_train
    from tests.pipelines.conftest import ds005917_run_inputs

    cohort, config = ds005917_run_inputs(tmp_path, permutations=2)
    result = run_train(cohort, "response_day2", config, experiment="tests-benefit")
    # other tests expect the session store to hold one registered model
    mlflow.MlflowClient().delete_registered_model("ketamine-response.tests-benefit.response_day2")
    assert result.benefit is not None and result.sample_size.below_minimum
    summary = result.benefit.primary
    assert summary.arm == "ketamine_iv" and summary.crossover.patients >= 20
    metrics = mlflow.get_run(result.run_id).data.metrics
    assert metrics["n_crossover_patients"] == summary.crossover.patients
    assert "crossover_observed_benefit" in metrics
    # 6 responders on ketamine: no within-drug AUROC; its counts stand and the p tests the pooled AUROC, named so
    assert "auroc_active" not in metrics and metrics["responders_active"] < 10 and "auroc_p" in metrics
    assert result.permutation.statistic == "auroc"
    # nothing from nothing: 7 responders cannot carry benefit figures or roles; the counts and exact tests stand
    assert not summary.shown and "c_for_benefit" not in metrics and "benefit_calibration_slope" not in metrics
    assert (result.benefit.roles["role_absolute"] == "withheld").all()
    assert result.benefit.roles["interaction_estimate"].isna().all()
    x = summary.crossover
    assert metrics["crossover_mcnemar_exact_p"] == x.p_exact and x.ci_low <= x.mean_difference <= x.ci_high
    assert result.notes[0].startswith("WARNING")


def test_scoring_without_treatment_gives_every_arm_only(strong_run, tmp_path):
    """A clinician scores before choosing: no treatment column, so no 'probability' of a given arm."""
    from ketamine_response.pipelines.flows.score import score_file

    result, cohort, _ = strong_run
    table = cohort[cohort["site"].isin(result.model.sites)].head(50)
    with_arm, blind = tmp_path / "with.csv", tmp_path / "blind.csv"
    table.to_csv(with_arm, index=False)
    table.drop(columns=["treatment", "period"]).drop_duplicates("patient_id").to_csv(blind, index=False)
    score_file(with_arm, tmp_path / "a.csv", result.model, "m", "1")
    summary = score_file(blind, tmp_path / "b.csv", result.model, "m", "1")
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv", keep_default_na=False)
    assert summary.rejected == 0 and summary.scored == len(b)
    assert list(b.columns) == ["patient_id", "model_name", "model_version",
                               *[f"{c}{end}" for c in ("probability_ketamine_iv", "probability_placebo",
                                                       "predicted_benefit_ketamine_iv") for end in ("", "_low", "_high")],
                               "warnings"]
    first = a.drop_duplicates("patient_id").set_index("patient_id")
    for column in ("probability_ketamine_iv", "probability_placebo", "predicted_benefit_ketamine_iv"):
        np.testing.assert_allclose(b.set_index("patient_id")[column].loc[first.index], first[column], rtol=1e-9)
    score_file(blind, tmp_path / "c.csv", result.model, "m", "1", explain=2)  # reasons per arm (test_score_caveats.py)
    assert "reason_placebo_2_points" in pd.read_csv(tmp_path / "c.csv").columns


def test_no_treatment_column_for_a_model_without_arms_is_a_usage_error(strong_run, tmp_path):
    import pytest

    from ketamine_response.features.errors import UsageError
    from ketamine_response.pipelines.flows.score import score_file

    result, cohort, _ = strong_run
    path = tmp_path / "blind.parquet"
    cohort.head(20).drop(columns=["treatment"]).to_parquet(path)
    model = result.model
    saved, model.benefit = model.benefit, {}  # as a model trained without a placebo arm
    try:
        with pytest.raises(UsageError, match="no treatment column"):
            score_file(path, tmp_path / "s.csv", model, "m", "1")
    finally:
        model.benefit = saved
    assert not (tmp_path / "s.csv").exists()


def test_a_file_without_patient_id_is_refused_clearly(strong_run, tmp_path):
    import pytest

    from ketamine_response.features.errors import CohortFileError
    from ketamine_response.pipelines.flows.score import score_file

    result, cohort, _ = strong_run
    for suffix in (".csv", ".parquet"):
        path = tmp_path / f"nokey{suffix}"
        table = cohort.head(5).drop(columns=["patient_id"])
        table.to_csv(path, index=False) if suffix == ".csv" else table.to_parquet(path)
        with pytest.raises(CohortFileError, match="no 'patient_id' column; it is required"):
            score_file(path, tmp_path / "s.csv", result.model, "m", "1")


def test_failed_report_leaves_no_folder(store, tmp_path):
    import pytest

    from ketamine_response.features.errors import TrackingError

    out = tmp_path / "report-out"
    with pytest.raises(TrackingError, match="matches no run"):  # found (a unique prefix) before anything is written
        run_report("0" * 32, out)
    assert not out.exists()


def test_unwritable_output_is_a_clear_error_and_leaves_nothing(strong_run, tmp_path):
    import pytest

    from ketamine_response.features.errors import CohortFileError
    from ketamine_response.pipelines.flows.score import score_file

    result, cohort, _ = strong_run
    path = tmp_path / "c.csv"
    cohort.head(10).to_csv(path, index=False)
    with pytest.raises(CohortFileError, match=r"cannot be written .* nothing was left behind"):
        score_file(path, tmp_path / "missing-folder" / "s.csv", result.model, "m", "1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv"]


def test_terminal_names_the_scale_of_every_role_and_the_p_of_every_row(strong_run):
    from ketamine_response.pipelines.reporting.terminal import render_benefit, render_table

    result, _, _ = strong_run
    text = render_benefit(result.benefit, "")
    assert "absolute scale (role_absolute)" in text and "log-odds scale (role_log_odds)" in text
    assert "c-for-benefit" in text and "BLP slope" in text and "exact McNemar p" in text
    assert "EXPLORATORY: 120 patients" in render_benefit(result.benefit, "120 patients")
    table = render_table(result.table(), result.data.task, result.permutation.statistic)
    assert "p adj" in table and "p tests auroc_active (per repeat, then averaged)" in table
