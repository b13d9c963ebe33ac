"""The generator reproduces its published anchors at large n and carries exact ground truth."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ketamine_response.features.cohort.validation import load_cohort, validate_table
from ketamine_response.features.synthetic.cohort import build_cohort, n_sites_for
from ketamine_response.features.synthetic.scenarios import BENEFIT_SUITE, LITERATURE_RATES, SCENARIOS, get_scenario
from ketamine_response.pipelines.flows.synth import describe_scenarios, write_synthetic

N = 60_000


@pytest.fixture(scope="module", params=list(SCENARIOS))
def large(request):
    cohort, oracle = build_cohort(N, 11, request.param)
    return request.param, cohort, oracle


def _arm(cohort: pd.DataFrame) -> pd.Series:
    esk_site = cohort.groupby("site")["treatment"].transform(lambda t: (t == "esketamine_in").any())
    placebo = np.where(esk_site, "placebo_in", "placebo_iv")
    return pd.Series(np.where(cohort["treatment"] == "placebo", placebo, cohort["treatment"]), index=cohort.index)


def test_rates_match_the_scenario_table(large):
    name, cohort, _ = large
    arm = _arm(cohort)
    base = cohort["madrs_baseline"].astype(float)
    for (arm_name, tp), (resp, rem, thr) in get_scenario(name).rates.items():
        score = cohort[f"madrs_{tp}"].astype(float)[arm == arm_name].dropna()
        b = base[score.index]
        n = len(score)
        # binomial sampling error plus the spread of ~8 random site effects (probit SD 0.15)
        tol = 3 * np.sqrt(resp * (1 - resp) / n) + 0.045
        assert (score <= 0.5 * b).mean() == pytest.approx(resp, abs=tol), (arm_name, tp)
        assert (score <= thr).mean() == pytest.approx(rem, abs=tol), (arm_name, tp)


def test_oracle_matches_observed_outcomes(large):
    _, cohort, oracle = large
    for tp in ("24h", "day7"):
        score = cohort[f"madrs_{tp}"].astype(float)
        seen = score.notna()
        observed = (score[seen] <= 0.5 * cohort["madrs_baseline"].astype(float)[seen]).mean()
        assert oracle.loc[seen, f"p_response_{tp}"].mean() == pytest.approx(observed, abs=0.015)
        has = oracle[f"p_response_{tp}"].notna()
        assert (oracle.loc[has, f"p_remission_{tp}"] <= oracle.loc[has, f"p_response_{tp}"] + 1e-9).all()


def test_baseline_madrs_is_truncated_normal(large):
    _, cohort, _ = large
    base = cohort["madrs_baseline"].astype(float)
    assert base.min() >= 20 and base.max() <= 60
    assert base.mean() == pytest.approx(35.5, abs=1.5)
    assert base.std() == pytest.approx(6, abs=1)


def test_literature_oracle_auroc_is_realistic():
    cohort, oracle = build_cohort(N, 5, "literature")
    score = cohort["madrs_24h"].astype(float)
    seen = score.notna()
    y = (score[seen] <= 0.5 * cohort["madrs_baseline"].astype(float)[seen]).astype(int)
    auc = roc_auc_score(y, oracle.loc[seen, "p_response_24h"])
    assert 0.60 <= auc <= 0.80
    ket = (cohort["treatment"] == "ketamine_iv")[seen]
    auc_ket = roc_auc_score(y[ket], oracle.loc[seen, "p_response_24h"][ket])
    assert 0.55 <= auc_ket <= 0.75  # within the drug arm predictors are weak, as published


def test_null_scenario_oracle_is_constant():
    cohort, oracle = build_cohort(5_000, 2, "null")
    for column in oracle.columns[oracle.columns.str.startswith(("p_response_", "benefit_"))]:
        assert oracle[column].dropna().nunique() <= 1, column  # all NaN where no site gives the arm
    assert (oracle.filter(like="benefit_").fillna(0) == 0).all().all()
    # remission (MADRS <= 10) depends on baseline through its definition alone, on nothing else
    for column in oracle.columns[oracle.columns.str.startswith("p_remission_")]:
        per_baseline = oracle[column].groupby(cohort["madrs_baseline"]).nunique()
        assert (per_baseline <= 1).all(), column


def test_strong_scenario_plants_larger_effects():
    spread = {}
    for name in ("strong", "literature"):
        cohort, oracle = build_cohort(20_000, 3, name)
        spread[name] = oracle.loc[cohort["treatment"] == "ketamine_iv", "p_response_24h"].std()
    assert spread["strong"] > 1.5 * spread["literature"]


def test_safety_columns_follow_the_label():
    cohort, _ = build_cohort(N, 9)
    arm = _arm(cohort)
    esk, pbo = arm == "esketamine_in", arm == "placebo_in"
    assert cohort.loc[esk, "nausea"].astype(float).mean() == pytest.approx(0.28, abs=0.03)
    assert cohort.loc[pbo, "nausea"].astype(float).mean() == pytest.approx(0.09, abs=0.03)
    assert (cohort.loc[esk, "sbp_change_mmhg"].astype(float) >= 40).mean() == pytest.approx(0.08, abs=0.02)
    iv = cohort.loc[arm == "ketamine_iv", "sbp_change_mmhg"].astype(float).mean()
    assert 3 <= iv <= 7


def test_crossover_patients_have_two_courses():
    cohort, _ = build_cohort(2_000, 4)
    per_patient = cohort.groupby("patient_id")["treatment"].agg(list)
    pairs = per_patient[per_patient.map(len) == 2]
    assert len(pairs) > 50
    assert all(sorted(p) == ["ketamine_iv", "placebo"] for p in pairs)
    assert not cohort.duplicated(["patient_id", "treatment"]).any()


@pytest.mark.parametrize("n", [2, 3, 60, 61, 1001])
def test_exact_row_count_and_sites(n):
    cohort, oracle = build_cohort(n, n)
    assert len(cohort) == len(oracle) == n
    assert cohort["site"].nunique() <= n_sites_for(n)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_same_seed_same_bytes_and_validates_clean(tmp_path, suffix):
    a, b, c = (tmp_path / f"{x}{suffix}" for x in "abc")
    write_synthetic(500, 42, "literature", a, tmp_path / "oracle_a.csv")
    write_synthetic(500, 42, "literature", b, tmp_path / "oracle_b.csv")
    write_synthetic(500, 43, "literature", c)
    assert a.read_bytes() == b.read_bytes()
    assert (tmp_path / "oracle_a.csv").read_bytes() == (tmp_path / "oracle_b.csv").read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert load_cohort(a).problems.empty


def test_unknown_scenario_and_describe():
    with pytest.raises(ValueError, match="unknown scenario 'weak'; choose one of literature, strong"):
        build_cohort(10, 1, "weak")
    text = describe_scenarios()
    for name in SCENARIOS:
        assert f"\n{name}: " in "\n" + text
    assert "family_history_aud +0.30" in text
    assert "placebo-only effects, placebo arms only (probit per SD): n_failed_treatments -0.60" in text
    assert "log_odds: logit p_drug = logit p_placebo +1.5 for every patient" in text
    assert text.count("in the benefit suite") == len(BENEFIT_SUITE)
    assert "risk_difference: p_drug = p_placebo +0.25 for every patient" in text
    assert "risk_ratio: p_drug = 1.8 x p_placebo for every patient" in text
    assert "relapse log-HR per SD, drug arms only: benzodiazepine +0.50, prior_ect +0.50" in text
    assert text.count("relapse log-HR per SD, every arm: none") == 1  # durability_null
    assert "dissociation = cadss_40min >= 5" in text
    assert len(LITERATURE_RATES) <= text.count("(<= ")


@pytest.mark.parametrize("scenario", ["literature", "benefit", "constant_effect", "placebo_prognosis",
                                      "constant_risk_difference", "constant_risk_ratio"])
def test_counterfactual_oracle_matches_the_arm_given(scenario):
    cohort, oracle = build_cohort(3_000, 4, scenario)
    for tp, drug in (("24h", "ketamine_iv"), ("day2", "esketamine_in")):  # each drug's own visits
        for arm in (drug, "placebo"):
            given = (oracle["treatment"] == arm) & oracle[f"p_response_{tp}"].notna()
            assert given.sum() > 100
            np.testing.assert_allclose(oracle.loc[given, f"p_response_{tp}_{arm}"],
                                       oracle.loc[given, f"p_response_{tp}"], atol=1e-5)
    drug = oracle["p_response_24h_ketamine_iv"]
    np.testing.assert_allclose(oracle["benefit_24h_ketamine_iv"], drug - oracle["p_response_24h_placebo"], atol=1e-5)


def test_constant_effect_scenario_has_no_modifier_but_prognostic_factors():
    from scipy.special import ndtri

    cohort, oracle = build_cohort(3_000, 5, "constant_effect")
    iv = oracle["p_response_24h_ketamine_iv"].notna()
    shift = ndtri(oracle.loc[iv, "p_response_24h_ketamine_iv"]) - ndtri(oracle.loc[iv, "p_response_24h_placebo"])
    assert shift.std() < 1e-3 < shift.mean()  # one shift on the probit scale for everyone
    placebo = oracle.loc[iv, "p_response_24h_placebo"]
    failed = cohort.loc[iv, "n_failed_treatments"].astype(float)
    assert np.corrcoef(placebo, failed)[0, 1] < -0.5  # prognostic: acts on placebo too


def test_benefit_scenario_modifiers_act_on_the_drug_arm_only():
    cohort, oracle = build_cohort(3_000, 6, "benefit")
    iv = oracle["p_response_24h_ketamine_iv"].notna()
    aud = cohort.loc[iv, "family_history_aud"].astype(float)
    seen = aud.notna()
    benefit, placebo = oracle.loc[iv, "benefit_24h_ketamine_iv"][seen], oracle.loc[iv, "p_response_24h_placebo"][seen]
    assert np.corrcoef(benefit, aud[seen])[0, 1] > 0.3
    assert abs(np.corrcoef(placebo, aud[seen])[0, 1]) < 0.05


def _drug_courses(oracle: pd.DataFrame) -> pd.Series:
    return oracle["p_response_24h_ketamine_iv"].notna()


def test_placebo_prognosis_predicts_placebo_only():
    cohort, oracle = build_cohort(1_000, 7, "placebo_prognosis")
    iv = _drug_courses(oracle)
    drug, placebo = oracle.loc[iv, "p_response_24h_ketamine_iv"], oracle.loc[iv, "p_response_24h_placebo"]
    assert drug.std() < 1e-9  # the same for everyone: within a drug arm no model beats AUROC 0.5
    assert placebo.std() > 0.05
    failed = cohort.loc[iv, "n_failed_treatments"].astype(float)
    assert np.corrcoef(placebo, failed)[0, 1] < -0.3
    # so the benefit varies, but only as the mirror image of the placebo response
    assert np.corrcoef(oracle.loc[iv, "benefit_24h_ketamine_iv"], placebo)[0, 1] < -0.999


def test_constant_risk_difference_is_the_same_for_everyone():
    cohort, oracle = build_cohort(1_000, 8, "constant_risk_difference")
    for column in ("benefit_24h_ketamine_iv", "benefit_day2_esketamine_in"):
        benefit = oracle[column].dropna()
        assert len(benefit) > 50
        np.testing.assert_allclose(benefit, 0.25, atol=1e-9)
    iv = _drug_courses(oracle)
    placebo = oracle.loc[iv, "p_response_24h_placebo"]
    assert placebo.max() <= 0.72 and oracle.loc[iv, "p_response_24h_ketamine_iv"].max() <= 0.97
    failed = cohort.loc[iv, "n_failed_treatments"].astype(float)
    assert np.corrcoef(placebo, failed)[0, 1] < -0.5  # strong prognosis, no modification of the difference


def test_constant_risk_ratio_varies_the_absolute_benefit_through_baseline_risk():
    cohort, oracle = build_cohort(1_000, 9, "constant_risk_ratio")
    iv = _drug_courses(oracle)
    drug, placebo = oracle.loc[iv, "p_response_24h_ketamine_iv"], oracle.loc[iv, "p_response_24h_placebo"]
    np.testing.assert_allclose(drug, 1.8 * placebo, atol=2e-6)  # the oracle is rounded to 6 decimals
    benefit = oracle.loc[iv, "benefit_24h_ketamine_iv"]
    np.testing.assert_allclose(benefit, 0.8 * placebo, atol=2e-6)
    assert benefit.std() > 0.03
    failed = cohort.loc[iv, "n_failed_treatments"].astype(float)
    assert np.corrcoef(benefit, failed)[0, 1] < -0.5  # through baseline risk alone


@pytest.mark.parametrize("scenario", ["placebo_prognosis", "constant_risk_difference", "constant_risk_ratio"])
def test_observed_drug_response_matches_the_oracle(scenario):
    cohort, oracle = build_cohort(4_000, 10, scenario)
    score = cohort["madrs_24h"].astype(float)
    given = (cohort["treatment"] == "ketamine_iv") & score.notna()
    observed = (score[given] <= 0.5 * cohort.loc[given, "madrs_baseline"].astype(float)).mean()
    assert observed == pytest.approx(oracle.loc[given, "p_response_24h"].mean(), abs=0.03)


# --- durability scenarios: repeated-dose courses, relapse follow-up, tolerability -------------------------

DURABILITY = ("durability", "durability_null")
ORACLE_DURABILITY = ("relapse_log_hazard", "relapse_free_28d", "relapse_free_56d", "p_harm_sbp_change_mmhg_ge40",
                     "p_harm_cadss_40min_ge5", "p_harm_nausea")


def _end_of_course_responder(cohort: pd.DataFrame, arm: pd.Series) -> pd.Series:
    end = np.where(arm.isin(["esketamine_in", "placebo_in"]), cohort["madrs_day28"].astype(float), cohort["madrs_day14"].astype(float))
    return pd.Series(end <= 0.5 * cohort["madrs_baseline"].astype(float), index=cohort.index)


@pytest.mark.parametrize("scenario", DURABILITY)
def test_durability_cohorts_are_valid_and_follow_only_responders(scenario):
    cohort, oracle = build_cohort(3_000, 5, scenario)
    again, oracle_again = build_cohort(3_000, 5, scenario)
    assert cohort.to_csv() == again.to_csv() and oracle.to_csv() == oracle_again.to_csv()
    assert validate_table(cohort, "synthetic").problems.empty
    arm = _arm(cohort)
    followed = cohort["relapse_observed"].notna()
    assert (followed == cohort["days_to_relapse"].notna()).all()  # the pair is filled together
    responder = _end_of_course_responder(cohort, arm)
    assert not (followed & ~responder).any()  # non-responders and courses without an end-of-course score: empty
    assert 0.75 < followed[responder].mean() < 0.95  # most responders are followed, not all
    days = cohort["days_to_relapse"].astype(float).dropna()
    assert days.min() >= 0 and days.max() <= 84 and (days == np.round(days)).all()
    n_doses = cohort["n_doses"].astype(float)
    assert n_doses.between(1, 40).all()
    iv = arm.isin(["ketamine_iv", "placebo_iv"])
    assert (n_doses[iv & cohort["madrs_day14"].notna()] == 6).all()
    assert (n_doses[~iv & cohort["madrs_day28"].notna()] == 8).all()
    assert (n_doses[iv & cohort["madrs_day14"].isna()] < 6).all()
    assert set(cohort.loc[arm == "ketamine_iv", "dose_mg_per_kg"].unique()) == {0.5, 1.0}
    assert set(cohort.loc[arm == "esketamine_in", "dose_mg"].astype(float).unique()) == {56.0, 84.0}
    assert cohort.loc[arm != "ketamine_iv", "dose_mg_per_kg"].isna().all()
    assert cohort.loc[arm != "esketamine_in", "dose_mg"].isna().all()
    assert set(ORACLE_DURABILITY) <= set(oracle.columns)
    assert oracle[list(ORACLE_DURABILITY)].notna().all().all()  # defined for every course
    assert (cohort["madrs_day14"].notna() <= iv).all()


def test_durability_adds_to_the_literature_cohort_without_changing_it():
    # its draws come after everything the literature scenario draws, with the same planted response truth
    lit, lit_oracle = build_cohort(800, 3)
    dur, dur_oracle = build_cohort(800, 3, "durability")
    same = [c for c in lit.columns if c not in ("synthetic", "cadss_40min", "sbp_change_mmhg", "nausea")]
    pd.testing.assert_frame_equal(lit[same], dur[same])
    pd.testing.assert_frame_equal(lit_oracle, dur_oracle[lit_oracle.columns])


def test_null_durability_hazard_depends_on_the_arm_only():
    cohort, oracle = build_cohort(3_000, 6, "durability_null")
    spread = oracle["relapse_log_hazard"].groupby(_arm(cohort)).agg(["std", "mean"])
    assert len(spread) == 4 and (spread["std"] < 1e-9).all()
    # the arm effect is kept: each drug's hazard is 0.49 x its placebo's
    m = spread["mean"]
    assert np.exp(m["ketamine_iv"] - m["placebo_iv"]) == pytest.approx(0.49, abs=1e-4)
    assert np.exp(m["esketamine_in"] - m["placebo_in"]) == pytest.approx(0.49, abs=1e-4)
    planted = build_cohort(3_000, 6, "durability")[1]
    assert planted["relapse_log_hazard"].groupby(_arm(cohort)).std().min() > 0.3


@pytest.fixture(scope="module")
def durability_large():
    cohort, oracle = build_cohort(N, 12, "durability")
    return cohort, oracle, _arm(cohort)


def _km(followed: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    from sksurv.nonparametric import kaplan_meier_estimator
    return kaplan_meier_estimator(followed["relapse_observed"].astype(bool).to_numpy(), followed["days_to_relapse"].astype(float).to_numpy())


def test_durability_relapse_is_calibrated(durability_large):
    cohort, oracle, arm = durability_large
    followed = cohort["relapse_observed"].notna()
    times, surv = _km(cohort[followed & (arm == "ketamine_iv")])
    assert 16 <= times[np.argmax(surv <= 0.5)] <= 20  # median 18 days (Murrough 6-infusion, S*)
    times, surv = _km(cohort[followed & (arm == "esketamine_in")])
    assert surv[times <= 28][-1] == pytest.approx(0.80, abs=0.04)  # McInnes 2022
    assert surv[times <= 56][-1] == pytest.approx(0.60, abs=0.04)
    # the oracle is the truth the observed follow-up was drawn from: mean relapse-free at 28 days among the
    # esketamine courses followed matches their Kaplan-Meier estimate
    esk = followed & (arm == "esketamine_in")
    assert oracle.loc[esk, "relapse_free_28d"].mean() == pytest.approx(surv[times <= 28][-1], abs=0.02)


def test_durability_course_trajectory(durability_large):
    cohort, oracle, arm = durability_large
    iv = arm == "ketamine_iv"
    score = cohort.loc[iv, "madrs_day14"].astype(float).dropna()
    assert (score <= 0.5 * cohort.loc[score.index, "madrs_baseline"].astype(float)).mean() == pytest.approx(0.675, abs=0.03)
    done = iv & cohort["madrs_day14"].notna()
    assert (oracle.loc[done, "doses_to_response"] == 1).mean() == pytest.approx(0.13, abs=0.02)  # Zheng 2019
    assert oracle.loc[done, "doses_to_response"].median() == 3  # Phillips 2019


def test_durability_harms_follow_the_label_and_the_oracle(durability_large):
    cohort, oracle, arm = durability_large
    harms = {"p_harm_cadss_40min_ge5": cohort["cadss_40min"].astype(float) >= 5,
             "p_harm_sbp_change_mmhg_ge40": cohort["sbp_change_mmhg"].astype(float) >= 40,
             "p_harm_nausea": cohort["nausea"].astype(float) == 1}
    for column, observed in harms.items():
        for a in ("ketamine_iv", "esketamine_in", "placebo_iv", "placebo_in"):
            mask = arm == a
            assert observed[mask].mean() == pytest.approx(oracle.loc[mask, column].mean(), abs=0.015), (column, a)
    esk, pbo, young = arm == "esketamine_in", arm == "placebo_in", cohort["age"].astype(float) < 65
    assert harms["p_harm_cadss_40min_ge5"][esk].mean() == pytest.approx(0.41, abs=0.03)
    assert harms["p_harm_cadss_40min_ge5"][pbo].mean() == pytest.approx(0.09, abs=0.02)
    assert harms["p_harm_sbp_change_mmhg_ge40"][esk & young].mean() == pytest.approx(0.08, abs=0.015)
    assert harms["p_harm_nausea"][esk].mean() == pytest.approx(0.28, abs=0.03)
    sbp, hyp = cohort["sbp_change_mmhg"].astype(float), cohort["hypertension"].astype(float) == 1
    assert 3.3 <= sbp[arm == "ketamine_iv"].mean() <= 7.4
    assert sbp[(arm == "ketamine_iv") & hyp].mean() > sbp[(arm == "ketamine_iv") & ~hyp].mean() + 1
