"""What travels with every score: the model's caveats on each row and in the ``<out>.model.md`` sidecar, the
class label only at a stated threshold, reasons in percentage points (blind files too), and rows rejected
only for the columns the model reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ketamine_response.features.cohort.schema import ARM_COLUMNS
from tests.pipelines.conftest import TARGET
from tests.pipelines.flows.conftest import MODEL


@pytest.fixture
def cohort_file(strong_run, tmp_path) -> Path:
    """24 ketamine and placebo courses of the training sites, outcomes dropped but one (madrs_24h) kept."""
    result, cohort, _ = strong_run
    table = cohort[cohort["site"].isin(result.model.sites)].head(24).copy()
    table = table.drop(columns=[c for c in table.columns if c.startswith("madrs_") and c not in ("madrs_baseline", "madrs_24h")])
    table["madrs_24h"] = table["madrs_24h"].astype(object)
    table.loc[table.index[1], "madrs_24h"] = "abc"  # an outcome the model never reads: not a reason to reject
    table.loc[table.index[2], "madrs_baseline"] = 75  # a model input out of range: rejected
    table.loc[table.index[3], "crp_mg_l"] = np.nan  # missing: imputed by the model, shown so
    path = tmp_path / "cohort.csv"
    table.to_csv(path, index=False)
    return path


def test_every_row_names_the_caveats_and_the_sidecar_says_them_once(cohort_file, response, strong_run, tmp_path):
    """Acceptance: a model trained below the minimum sample size says so on every row."""
    from ketamine_response.pipelines.flows.score import score_file

    result, _, _ = strong_run
    assert result.sample_size.below_minimum  # the shared run is below it, as most real cohorts are
    out = tmp_path / "scores.csv"
    summary = score_file(cohort_file, out, response, "resp", "3")
    scores = pd.read_csv(out, keep_default_na=False)
    assert (summary.scored, summary.rejected) == (23, 1)
    rejected = pd.read_csv(summary.rejected_path)
    assert rejected["row"].tolist() == [3] and "madrs_baseline" in rejected["problems"].iloc[0]
    assert scores["warnings"].str.contains("trained below the minimum sample size").all()
    assert scores["warnings"].str.contains("trained on synthetic data").all()
    assert "predicted_responder" not in scores.columns  # no threshold stated: no label
    p = pd.to_numeric(scores["probability"])
    if "probability_low" in scores.columns:  # the per-patient intervals (blank for a model logged without them)
        low, high = pd.to_numeric(scores["probability_low"]), pd.to_numeric(scores["probability_high"])
        assert (low.isna() | ((low <= p + 1e-12) & (p <= high + 1e-12))).all()
    sidecar = (tmp_path / "scores.csv.model.md").read_text()
    assert "## Model resp version 3" in sidecar and f"Target `{TARGET}`" in sidecar
    assert "How likely is response if given the drug?" in sidecar
    assert "- trained below the minimum sample size" in sidecar and "No threshold is applied" in sidecar
    assert all(f"- `{c}`: " in sidecar for c in scores.columns)  # every column explained
    # the interval named for what it is: its site and missing-value terms, and the bias it does not cover
    assert "estimation + site + missing-data interval" in sidecar and "missing values" in sidecar
    assert "between-site spread" in sidecar and "No interval covers the model's bias" in sidecar
    benefit = next(line for line in sidecar.splitlines() if line.startswith("- `predicted_benefit_ketamine_iv`: "))
    assert "the benefit model's estimate" in benefit and "not equal to `probability_<drug>` - `probability_placebo`" in benefit


def test_caveats_say_heterogeneity_not_shown_chance_ranking_and_a_miscalibrated_drug_arm(strong_run):
    """A verdict other than 'shown' is not evidence of none; c-for-benefit <= 0.5 and a drug-arm calibration
    slope whose CI excludes 1 are caveats; failed replicates are counted."""
    import dataclasses

    from ketamine_response.pipelines.evaluation.heterogeneity import Verdict
    from ketamine_response.pipelines.training.caveats import model_caveats

    result, _, _ = strong_run
    final = result.model.benefit["ketamine_iv"]
    constant = dataclasses.replace(final, slope=final.least, replicates=final.replicates[:1])
    config = result.config
    args = (result.sample_size, result.selected, tuple(result.data.X.columns), result.data.domains)
    metrics = {"c_for_benefit_ketamine_iv": 0.47, "calibration_slope_active": 0.55,
               "calibration_slope_active_ci_low": 0.41, "calibration_slope_active_ci_high": 0.72}
    intervals = dataclasses.replace(result.model.intervals, failed=2, requested=10)
    said = model_caveats(*args, {"ketamine_iv": constant}, "SYNTHETIC (strong)", 0.01, config, metrics,
                         {"ketamine_iv": Verdict.MISSED}, intervals)
    text = "; ".join(said)
    assert "benefit constant for ketamine_iv: heterogeneity not shown (not evidence of none)" in text
    assert "no heterogeneity found" not in text
    assert "c-for-benefit for ketamine_iv is 0.47" in text
    assert "drug-arm calibration slope 0.55 (95% CI 0.41-0.72) excludes 1" in text and "too extreme" in text
    assert "2 of 10 bootstrap replicates of the response model failed" in text
    want = config.intervals.benefit_replicates
    assert f"{want - 1} of {want} bootstrap replicates of the benefit model for ketamine_iv failed" in text
    # a varying benefit whose heterogeneity is not shown; a slope whose CI holds 1 and a c above chance: silent
    fine = {"c_for_benefit_ketamine_iv": 0.58, "calibration_slope_active": 0.9,
            "calibration_slope_active_ci_low": 0.7, "calibration_slope_active_ci_high": 1.1}
    varying = dataclasses.replace(final, slope=max(final.slope, final.least + 0.1))
    quiet = "; ".join(model_caveats(*args, {"ketamine_iv": varying}, "SYNTHETIC (strong)", 0.01, config, fine,
                                    {"ketamine_iv": Verdict.NOT_SHOWN}, result.model.intervals))
    assert "heterogeneity of benefit for ketamine_iv not shown (not evidence of none)" in quiet
    assert "c-for-benefit" not in quiet and "calibration slope" not in quiet and "failed" not in quiet
    shown = "; ".join(model_caveats(*args, {"ketamine_iv": varying}, "SYNTHETIC (strong)", 0.01, config, fine,
                                    {"ketamine_iv": Verdict.SHOWN}, result.model.intervals))
    assert "heterogeneity" not in shown


def test_a_stated_threshold_calls_the_label_and_is_written_down(cohort_file, response, strong_run, capsys, tmp_path):
    from ketamine_response.pipelines.cli import main

    out = tmp_path / "t.csv"
    assert main(["score", str(cohort_file), "--out", str(out), "--model", MODEL, "--threshold", "0.3"]) == 0
    assert "t.csv.model.md" in capsys.readouterr().out
    scores = pd.read_csv(out)
    called = scores["predicted_responder"].to_numpy()
    np.testing.assert_array_equal(called, (scores["probability"] >= 0.3).astype(int).to_numpy())
    assert "at least 0.3 (given with --threshold)" in (tmp_path / "t.csv.model.md").read_text()
    assert main(["score", str(cohort_file), "--out", str(tmp_path / "u.csv"), "--model", MODEL, "--threshold", "1.5"]) == 2
    assert "--threshold 1.5" in capsys.readouterr().err and not list(tmp_path.glob("u.csv*"))


def test_reasons_are_percentage_points_and_missing_values_say_so(cohort_file, response, tmp_path):
    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.pipelines.flows.score import score_file
    from ketamine_response.pipelines.flows.score_reasons import contributions

    k = len(response.features)  # every feature, so the imputed one is among them
    score_file(cohort_file, tmp_path / "r.csv", response, "resp", "3", explain=k)
    scores = pd.read_csv(tmp_path / "r.csv", keep_default_na=False)
    assert "reason_1_points" in scores.columns and "reason_1_shap" not in scores.columns
    planted = pd.read_csv(cohort_file).iloc[3]
    row = scores[(scores["patient_id"] == planted["patient_id"]) & (scores["treatment"] == planted["treatment"])].iloc[0]
    crp = [i for i in range(1, k + 1) if row[f"reason_{i}_feature"] == "log_crp"]
    assert crp and row[f"reason_{crp[0]}_value"] == "missing (imputed)"
    # the points of one course add up to its probability's change from the reference (exact SHAP, shared out)
    valid = validate_table(pd.read_csv(cohort_file).iloc[[0, 3, 4]], "t").table
    points, _ = contributions(response, valid)
    p = response.predict_table(valid)
    assert np.ptp(p * 100 - points.sum(axis=1).to_numpy()) < 1e-6  # the same reference for every course


def test_a_blind_file_is_explained_per_arm_and_for_the_difference(cohort_file, response, tmp_path):
    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.pipelines.flows.score import score_file
    from ketamine_response.pipelines.flows.score_reasons import contributions

    blind = tmp_path / "blind.csv"
    pd.read_csv(cohort_file).drop(columns="treatment").to_csv(blind, index=False)
    score_file(blind, tmp_path / "b.csv", response, "resp", "3", explain=2)
    scores = pd.read_csv(tmp_path / "b.csv", keep_default_na=False)
    for group in ("reason_ketamine_iv_", "reason_placebo_", "reason_difference_ketamine_iv_"):
        assert {f"{group}1_feature", f"{group}1_value", f"{group}2_points"} <= set(scores.columns)
    assert scores["warnings"].str.contains("trained below the minimum sample size").all()
    # the difference's points are the drug's minus placebo's, adding up to the two arms' difference
    valid = validate_table(pd.read_csv(blind).drop(index=2).head(3).assign(treatment="placebo"), "b").table
    drug, _ = contributions(response, valid.assign(treatment="ketamine_iv"))
    placebo, _ = contributions(response, valid)
    gap = (drug - placebo).sum(axis=1).to_numpy()
    arms = response.arm_table(valid)
    np.testing.assert_allclose(gap, 100 * (arms["probability_ketamine_iv"] - arms["probability_placebo"]), atol=1e-6)
    top = (drug - placebo).drop(columns=list(ARM_COLUMNS), errors="ignore").abs().idxmax(axis=1).to_numpy()
    np.testing.assert_array_equal(scores["reason_difference_ketamine_iv_1_feature"].head(3).to_numpy(), top)
    assert not scores.filter(like="_feature").isin(ARM_COLUMNS).any().any()  # the treatment is never a reason


def test_explain_prints_points_and_names_imputed_values(cohort_file, response, tmp_path):
    from ketamine_response.pipelines.flows.explain import explain_patient

    planted = pd.read_csv(cohort_file).iloc[3]  # its crp_mg_l is missing
    lines = explain_patient(MODEL, cohort_file, planted["patient_id"], tmp_path / "w.png", top=1000)  # every feature
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{planted['patient_id']}, {planted['treatment']}:"))
    course = lines[start + 1:]  # the planted course's contributions first
    crp = [line for line in course if line.strip().startswith("log_crp")]
    assert crp and "missing (imputed)" in crp[0] and "nan" not in crp[0]
    assert all("percentage points (log-odds " in line for line in lines if line.startswith("  "))
