"""The generator reproduces its published anchors at large n and carries exact ground truth."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ketamine_response.features.cohort.validation import load_cohort
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
