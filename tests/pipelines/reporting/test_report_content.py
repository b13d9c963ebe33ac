"""The report's content without training or a browser: the hand-built site-CV result, rendered."""

from __future__ import annotations

import dataclasses
import html
import re

import numpy as np
import pytest

from ketamine_response.pipelines.reporting.content import report_content
from ketamine_response.pipelines.reporting.html import render_report
from tests.pipelines.reporting.conftest import DIGEST, IDENTITY, NO_FEATURE, WARNING


@pytest.fixture(scope="module")
def page(site_result) -> str:
    return render_report(report_content(site_result, "cohort.csv", DIGEST, {}, IDENTITY))


def _text(page: str) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page)))


def test_site_cv_validation_line_counts_sites_not_configured_folds(site_result):
    summary = report_content(site_result, "cohort.csv", DIGEST, {}).summary
    assert "leave-one-site-out (4 sites, so 4 outer folds, no repeats)" in summary["Validation"]
    assert "3 folds" not in summary["Validation"] and "repeats)" not in summary["Validation"].replace("no repeats", "")


def test_full_digest_or_a_labelled_prefix(site_result):
    assert f"SHA-256 {DIGEST}" in report_content(site_result, "cohort.csv", DIGEST, {}).summary["Data source"]
    short = report_content(site_result, "cohort.csv", DIGEST[:16], {}).summary["Data source"]
    assert f"first 16 hex characters of its SHA-256: {DIGEST[:16]}" in short


def test_identity_keys_rendered_in_order_at_the_top(page):
    text = _text(page)
    positions = [text.index(f"{k}: {v}") if f"{k}: {v}" in text else text.index(v) for k, v in IDENTITY.items()]
    assert positions == sorted(positions)
    assert positions[-1] < text.index("In short")


def test_headline_carries_performance_and_every_warning_before_the_details(page):
    text = _text(page)
    details = text.index("Summary (TRIPOD+AI items)")
    assert text.index("AUROC pooling all arms") < details
    assert text.index(WARNING) < details and text.index(NO_FEATURE) < details
    assert text.index("an ordinary note") > details  # ordinary notes stay at the bottom


def test_table_one_threshold_calibration_and_intended_use(page, site_result):
    text = _text(page)
    for item in ("Participants by arm (table 1)", "Age, years, mean (SD)", "Female, % (n)", "Baseline MADRS, mean (SD)",
                 "Events (outcome = 1), n (%)", "ketamine_iv", "esketamine_in", "placebo", "all arms",
                 "Intended use and population", "not a clinical decision tool", "Subgroups"):
        assert item.lower() in text.lower(), item
    sel = site_result.evaluations["selected"]
    for name in ("sensitivity", "specificity"):  # the drug arm's operating point first, then all arms'
        assert text.index(f"{name} {sel.metrics[name + '_active']:.3f}") < text.index(f"{name} {sel.metrics[name]:.3f}")
    assert "drug-arm training event rate (mean" in text and "training event rate, all arms (mean" in text
    assert f"drug arm(s): slope {sel.metrics['calibration_slope_active']:.3f}" in text
    assert f"slope {sel.metrics['calibration_slope']:.3f} (" in text
    assert f"intercept (in the large) {sel.metrics['calibration_intercept']:.3f} (" in text


def test_shap_table_shows_stability_columns_first(page):
    header = re.search(r"<th>feature</th>(.*?)</tr>", page).group(1)
    names = re.findall(r"<th>(.*?)</th>", header)
    assert names[:5] == ["mean |SHAP|", "range over CV repeats", "topk frequency", "sign consistency", "consistent"]


def test_page_is_aggregate_only(page):
    assert "PATIENT-SECRET" not in page


def test_the_small_subgroup_rule_is_the_configs(site_result, page):
    assert "fewer than 10 courses, or fewer than 10 in either outcome class" in _text(page)
    policy = dataclasses.replace(site_result.config.policy, min_courses_per_group=20, min_events_per_arm=8)
    stricter = dataclasses.replace(site_result, config=dataclasses.replace(site_result.config, policy=policy))
    text = _text(render_report(report_content(stricter, "cohort.csv", DIGEST, {}, IDENTITY)))
    assert "fewer than 20 courses, or fewer than 8 in either outcome class" in text


def test_first_screen_speaks_in_natural_frequencies_and_the_report_ends_complete(page, site_result):
    import platform

    import sklearn

    text = _text(page)
    y, arms, sites = site_result.data.y, site_result.data.treatments, site_result.data.sites
    own = np.isin(sites, np.unique(sites[arms == "ketamine_iv"]))  # ketamine's own placebo stratum: its sites
    drug, placebo = y[arms == "ketamine_iv"], y[(arms == "placebo") & own]
    sentence = (f"Of 100 courses like those in this cohort, about {100 * drug.mean():.0f} respond within 24 hours on "
                f"ketamine (")
    assert sentence in text and f"; n = {len(drug)}) and {100 * placebo.mean():.0f} on placebo at the same sites" in text
    assert f"; n = {len(placebo)}): " in text and "(95% CIs by patient bootstrap; n: courses)." in text
    assert text.index(sentence) < text.index("How well it predicts")  # before any AUROC
    assert f"{100 * (drug.mean() - placebo.mean()):+.0f} percentage points (95% CI" in text
    assert "On the drug, the predicted chance (out of fold) is about " in text  # the question in probability terms
    for heading in ("Participant flow by arm", "Final model (elastic_net)", "Software versions"):
        assert heading in text
    assert "refit on all courses" not in text  # no single model was refit on all of them
    assert f"scikit-learn {sklearn.__version__}" in text and f"python {platform.python_version()}" in text
    assert f"ketamine_iv {len(drug)} 0 {len(drug)}" in text  # the flow: read, excluded, analysed
    assert "arm_ketamine_iv treatment (the arm, not a patient feature)" in text


def test_who_benefits_is_worded_from_the_slope_ci_and_the_verdict_not_from_five_points():
    import pandas as pd

    from ketamine_response.pipelines.evaluation.benefit import BenefitSummary
    from ketamine_response.pipelines.evaluation.crossover import Crossover
    from ketamine_response.pipelines.evaluation.heterogeneity import Verdict
    from ketamine_response.pipelines.reporting.wording import benefit_calibration_words

    nan = float("nan")
    rising = pd.DataFrame({"observed_benefit": [0.05, 0.10, 0.20, 0.30, 0.40]})  # five points that "rise steadily"
    summary = BenefitSummary("ketamine_iv", "t_learner", {}, 100, 100, 50, 20, True, True, (0.6, 0.55, 0.65), {},
                             rising, {"slope": (0.9, -0.2, 2.0), "gap": (0.0, -0.1, 0.1)},
                             Crossover(0, nan, nan, nan, nan, 0, 0, 0, nan), verdict=Verdict.MISSED)
    words = benefit_calibration_words(summary)
    assert "+5, +10, +20, +30, +40 percentage points" in words and "rises" not in words
    assert "0.90 (95% CI -0.20 to 2.00), which includes 0: these groups do not show" in words
    shown = dataclasses.replace(summary, calibration_summary={"slope": (1.0, 0.4, 1.6), "gap": (0.0, -0.1, 0.1)})
    assert "excludes 0, but the heterogeneity test does not show it" in benefit_calibration_words(shown)
    proven = dataclasses.replace(shown, verdict=Verdict.SHOWN)
    assert "heterogeneity is shown: the model tells apart who gains more" in benefit_calibration_words(proven)
    skewed = dataclasses.replace(proven, calibration_summary={"slope": (1.0, nan, nan), "gap": (0.0, -0.1, 0.1)})
    assert "1.00 (interval withheld: bootstrap skewed or undefined): these groups cannot show" in (
        benefit_calibration_words(skewed))


def test_the_final_model_heading_says_it_is_one_in_fold_member_of_the_calibrated_ensemble():
    from types import SimpleNamespace

    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

    from ketamine_response.pipelines.reporting.sections import final_heading

    x = np.arange(60, dtype=float).reshape(-1, 1)
    fitted = CalibratedClassifierCV(LogisticRegression(), cv=3).fit(x, (x[:, 0] % 2 == 0).astype(int))
    result = SimpleNamespace(model=SimpleNamespace(estimator=fitted), selected="elastic_net")
    assert final_heading(result) == ("Final model (elastic_net): the first of the logged ensemble's 3 members, fit on "
                                     "2/3 of the courses, before calibration")
