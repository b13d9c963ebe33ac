"""End-to-end training on synthetic cohorts with known truth, tracked in a real SQLite MLflow store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ketamine_response.features.build import build_feature_table
from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.errors import TrackingError
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.features.tasks import parse_target
from ketamine_response.pipelines.evaluation.metrics import auroc, bootstrap_ci
from ketamine_response.pipelines.flows.report import run_report
from ketamine_response.pipelines.flows.train import build_training_data, run_train
from ketamine_response.pipelines.tracking import REQUIRED_METRICS
from ketamine_response.pipelines.training.procedure import fit_all
from ketamine_response.pipelines.training.progress import Progress
from tests.pipelines.conftest import TARGET, ds005917_run_inputs, make_cohort, unpermuted


def test_strong_scenario_finds_the_planted_signal(strong_run):
    result, cohort, oracle = strong_run
    y = result.data.y
    rows = result.data.X.index - 1
    best_possible = auroc(y, oracle.loc[rows, f"p_{TARGET}"].to_numpy())
    found = result.evaluations["selected"].metrics["auroc"]
    # The oracle knows every true covariate; the cohort hides 10-60% of some (missing at random), so a
    # finite-sample model lands a little below it. Above it would mean leakage.
    assert best_possible - 0.075 <= found <= best_possible + 0.02
    assert result.permutation.p["selected"] == pytest.approx(1 / 20) and result.permutation.b["selected"] == 19
    assert result.evaluations["prevalence"].metrics["auroc"] == pytest.approx(0.5, abs=0.05)


def test_every_run_carries_the_comparison_metrics(strong_run):
    import mlflow

    result, _, _ = strong_run
    runs = mlflow.search_runs(experiment_names=["tests"])
    family_runs = runs[runs["tags.mlflow.parentRunId"] == result.run_id]
    assert set(family_runs["tags.family"]) == set(result.config.families)
    for _, run in pd.concat([runs[runs["run_id"] == result.run_id], family_runs]).iterrows():
        # the prevalence model's constant predictions have no calibration slope or intercept
        undefined = {"calibration_slope", "calibration_intercept"} if run["tags.family"] == "prevalence" else set()
        for metric in set(REQUIRED_METRICS) - undefined:
            assert not pd.isna(run.get(f"metrics.{metric}")), (metric, run["tags.family"])
    parent = runs[runs["run_id"] == result.run_id].iloc[0]
    assert parent["tags.selected_model"] == result.selected
    assert parent["tags.target"] == TARGET and parent["params.cv.design"] == "kfold"
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(result.run_id)}
    assert {"metrics.csv", "feature_dictionary.csv", "config.yaml", "notes.txt", "plots"} <= artifacts


def test_no_patient_identifier_reaches_the_store(strong_run, store):
    _, cohort, _ = strong_run
    blob = b"".join(p.read_bytes() for p in Path(store).rglob("*") if p.is_file())
    leaked = [pid for pid in cohort["patient_id"].unique() if pid.encode() in blob]
    assert leaked == []
    assert b"SECRET" not in blob


def test_registered_champion_scores_a_raw_cohort(strong_run, tmp_path):
    from ketamine_response.pipelines import registry

    result, cohort, _ = strong_run
    model = registry.load_model(f"models:/ketamine-response.tests.{TARGET}@champion")
    raw = cohort.drop(columns=[c for c in cohort.columns if c.startswith("madrs_") and c != "madrs_baseline"])
    p = np.asarray(model.predict(raw.head(50)))
    unseen = (raw.head(50)["treatment"] == "esketamine_in").to_numpy()  # no 24 h visit: an arm it never saw
    assert p.shape == (50,) and ((p[~unseen] > 0) & (p[~unseen] < 1)).all() and np.isnan(p[unseen]).all()
    direct = result.model.predict_table(validate_table(cohort.head(50), "x").table)
    np.testing.assert_allclose(p, direct)
    slim = raw[raw["treatment"] != "esketamine_in"].head(5)[["patient_id", "site", "treatment", "madrs_baseline"]]
    assert np.isfinite(np.asarray(model.predict(slim))).all()  # absent optional columns are imputed


def test_small_run_gets_no_alias_and_promote_moves_champion(strong_run, lean_config, tmp_path):
    from mlflow import MlflowClient

    from ketamine_response.pipelines import listing, registry

    path, _, _ = make_cohort(tmp_path, 300, 5, "strong")
    second = run_train(path, TARGET, unpermuted(lean_config), experiment="tests")
    name = f"ketamine-response.tests.{TARGET}"
    client = MlflowClient()
    assert second.sample_size.below_minimum and second.notes[0].startswith("WARNING: too few patients")
    assert client.get_model_version(name, str(second.version)).aliases == []
    registry.promote(name, second.version)
    assert int(client.get_model_version_by_alias(name, "champion").version) == second.version
    # an adequately sized version: the first with no champion becomes champion, later ones challenger
    source = client.get_model_version(name, str(second.version)).source
    assert [registry.register(source, "alias-test") for _ in range(2)] == [(1, "champion"), (2, "challenger")]
    assert client.get_model_version("alias-test", "1").aliases == ["champion"]
    assert client.get_model_version("alias-test", "2").aliases == ["challenger"]
    with pytest.raises(TrackingError, match="cannot promote"):
        registry.promote(name, 99)
    listed = listing.list_runs("tests")
    assert {"run_id", "auroc", "auroc_active", "auroc_active_p", "selected"} <= set(listed.columns) and len(listed) >= 2


def test_null_scenario_finds_nothing(store, lean_config, tmp_path):
    path, _, _ = make_cohort(tmp_path, 400, 3, "null")
    result = run_train(path, TARGET, lean_config, experiment="tests-null")
    low, high = result.evaluations["selected"].ci["auroc"]
    assert low <= 0.5 <= high
    assert result.permutation.p["selected"] > 0.05
    table = result.shap.importance
    assert not table["consistent"].any()  # no feature reported as consistently important
    # and not merely because the permutation test vetoed it: no null feature is stable either
    assert not ((table["topk_frequency"] >= 0.8) & (table["sign_consistency"] >= 0.8)).any()


def test_literature_estimate_holds_on_a_fresh_cohort(store, lean_config, tmp_path):
    path, _, _ = make_cohort(tmp_path, 600, 11, "literature")
    result = run_train(path, TARGET, unpermuted(lean_config), experiment="tests-literature")
    fresh, _ = build_cohort(3000, 999, "literature")
    table = validate_table(fresh, "fresh").table
    target = build_feature_table(table, parse_target(TARGET)).frame[TARGET]
    seen = target.notna()
    y = target[seen].to_numpy()
    p = result.model.predict_table(table[seen])
    fresh_ci = bootstrap_ci(y, p, table.loc[seen, "patient_id"].to_numpy(), 0.5, 200, 1)["auroc"]
    oof = result.evaluations["selected"]
    # not optimistic: the fresh cohort does not fall below the out-of-fold interval. (It may sit a
    # little above it: the folds fit on two thirds of the courses, the final model on all of them.)
    assert oof.ci["auroc"][0] <= fresh_ci[1]
    assert abs(oof.metrics["auroc"] - float(np.mean(fresh_ci))) < 0.1


def test_same_inputs_same_metrics(fast_config):
    import dataclasses

    cohort, _ = build_cohort(250, 4, "strong")
    validated = validate_table(cohort, "c")
    config = dataclasses.replace(fast_config, evaluation=dataclasses.replace(fast_config.evaluation, permutations=3))
    data, _, _ = build_training_data(validated, TARGET, config, drop_invalid=False)
    first = fit_all(data, config, Progress())
    second = fit_all(data, config, Progress())
    assert first[1] == second[1] and first[3] == second[3]
    p1 = first[2].predict_proba(data.X)[:, 1]
    np.testing.assert_array_equal(p1, second[2].predict_proba(data.X)[:, 1])
    assert [f.predictions[f.selected].tolist() for f in first[0]] == [f.predictions[f.selected].tolist() for f in second[0]]


PLANTED = {"family_history_aud", "bmi_kg_m2", "obese", "benzodiazepine", "bdnf_met_carrier", "bdnf_met_alleles",
           "prior_suicide_attempt", "madrs_baseline", "madrs_severity_band", "maudsley_staging_score",
           "log_episode_duration_months", "d_serine_umol_l", "prior_ect",
           "n_failed_treatments"}  # prognostic (LITERATURE_PROGNOSTIC); the arm is never ranked among the features
NULLS = {"age", "sex_female", "log_il6", "log_crp", "log_tnf_alpha", "inflammation_composite", "kyn_trp_ratio",
         "eeg_gamma_power_db", "glx_acc_mmol", "anxious_depression", "lithium", "shaps_baseline", "anhedonia_shaps_ge3"}


def test_shap_ranking_recovers_the_planted_truth(strong_run):
    result, _, _ = strong_run
    table = result.shap.importance
    assert not table["feature"].str.startswith("arm_").any()  # the treatment is the arm, not a patient feature
    assert set(table["feature"].head(4)) <= PLANTED
    ranks = table.set_index("feature")["rank"]
    present_nulls = [f for f in NULLS if f in ranks.index]
    assert ranks[present_nulls].min() > len(ranks) / 4  # nulls never near the top
    assert ranks[present_nulls].median() > len(ranks) / 2  # and mostly in the bottom half
    top = table.iloc[0]
    assert top["consistent"] and not table[table["feature"].isin(NULLS)]["consistent"].any()
    assert result.shap.max_additivity_error < 1e-8


def test_shap_tables_and_report_are_logged(strong_run, tmp_path):
    import mlflow


    result, _, _ = strong_run
    index = run_report(result.run_id, tmp_path)
    page = index.read_text()
    for section in ("TRIPOD+AI", "Performance", "Which features predict response", "Limitations", "data:image/png"):
        assert section in page
    importance = pd.read_csv(tmp_path / "shap" / "global_importance.csv")
    assert list(importance.columns)[:9] == ["feature", "source_columns", "domain", "mean_abs_shap", "repeat_low",
                                            "repeat_high", "rank", "topk_frequency", "sign_consistency"]
    assert importance["mean_abs_shap"].is_monotonic_decreasing
    run = mlflow.get_run(result.run_id)
    assert run.data.metrics["shap_max_additivity_error"] < 1e-8


def test_continuous_outcome_on_ds005917(store, tmp_path):
    """pct_change_day2 trains on the real crossover cohort; its metrics are named for what they measure."""
    import dataclasses

    import mlflow
    import mlflow.artifacts

    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.flows.score import score_file
    from ketamine_response.pipelines.reporting.descriptions import selection_reason

    cohort, config = ds005917_run_inputs(tmp_path, permutations=4)
    result = run_train(cohort, "pct_change_day2", config, experiment="tests-continuous")
    assert result.selected in ("mean", "ridge", "lightgbm_regression")
    metrics = mlflow.get_run(result.run_id).data.metrics
    assert {"r2_pct_change", "r2_pct_change_ci_low", "r2_pct_change_ci_high", "rmse_pct_change",
            "calibration_slope_pct_change", "r2_pct_change_p", "r2_pct_change_permutations", "n_parameters",
            "events_per_parameter", "min_courses_riley"} <= set(metrics)
    assert "auroc" not in metrics and "brier" not in metrics
    assert result.sample_size.below_minimum  # 57 courses cannot support ~20 parameters
    # chosen by the task's own loss, not the config's log_loss; the percentage-change caveat in the notes and report
    assert "chose a family by MSE (mean squared error)" in selection_reason(result)
    caveat = [n for n in result.notes if n.startswith("pct_change_day2 is a percentage change from baseline")]
    assert len(caveat) == 1 and "regression to the mean" in caveat[0]
    assert "regression to the mean" in run_report(result.run_id, tmp_path / "report").read_text()
    # the logged config re-runs with train --config: the same config once run_train picks the task's families
    logged = load_config(mlflow.artifacts.download_artifacts(run_id=result.run_id, artifact_path="config.yaml",
                                                             dst_path=str(tmp_path)))
    assert dataclasses.replace(logged, families=logged.families_for(result.data.task)) == result.config
    scores = tmp_path / "scores.csv"
    score_file(cohort, scores, result.model, "m", "1")
    assert {"predicted_pct_change"} <= set(pd.read_csv(scores).columns)
    assert "probability" not in pd.read_csv(scores).columns


def test_within_active_arm_metrics_lead_and_are_logged_on_every_run(strong_run):
    import mlflow

    result, _, _ = strong_run
    parent = mlflow.get_run(result.run_id)
    children = mlflow.search_runs(experiment_ids=[parent.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{result.run_id}'", output_format="list")
    wanted = {"auroc_active", "auroc_active_ci_low", "auroc_active_ci_high", "brier_active", "calibration_slope_active",
              "auroc_arm_only", "auroc_gain_over_arm", "auroc_gain_over_arm_ci_low", "auroc_gain_over_arm_ci_high"}
    for run in [parent, *children]:
        # a predictor constant within the arm (prevalence, arm only) has no calibration slope there
        expected = wanted - ({"calibration_slope_active"} if run.data.tags.get("family") in ("prevalence", "arm_only") else set())
        assert expected <= set(run.data.metrics), run.info.run_name
    # esketamine courses have no 24 h visit: one active arm, so no per-arm split
    assert set(result.data.treatments) == {"ketamine_iv", "placebo"} and "auroc_ketamine_iv" not in parent.data.metrics
    m = result.evaluations["selected"].metrics
    # the planted effects act on the drug arms: the model beats the arm alone within them
    assert m["auroc_active"] > 0.6 and m["auroc_gain_over_arm"] > 0
    arm_only = result.evaluations["arm_only"].metrics
    assert arm_only["auroc_gain_over_arm"] == 0 and result.evaluations["arm_only"].ci["auroc_active"][0] <= 0.5
