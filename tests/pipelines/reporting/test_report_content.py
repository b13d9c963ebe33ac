"""The report's content without training or a browser: the hand-built site-CV result, rendered."""

from __future__ import annotations

import dataclasses
import html
import re

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
    y, arms = site_result.data.y, site_result.data.treatments
    drug, placebo = y[arms == "ketamine_iv"], y[arms == "placebo"]
    sentence = (f"Of 100 patients like those in this cohort, about {100 * drug.mean():.0f} respond within 24 hours on "
                f"ketamine (n = {len(drug)}), ")
    assert sentence in text and f" and {100 * placebo.mean():.0f} on placebo (n = {len(placebo)}): " in text
    assert text.index(sentence) < text.index("How well it predicts")  # before any AUROC
    assert f"{100 * (drug.mean() - placebo.mean()):+.0f} percentage points" in text
    assert "On the drug, the predicted chance (out of fold) is about " in text  # the question in probability terms
    for heading in ("Participant flow by arm", "Final model (elastic_net, refit on all courses)", "Software versions"):
        assert heading in text
    assert f"scikit-learn {sklearn.__version__}" in text and f"python {platform.python_version()}" in text
    assert f"ketamine_iv {len(drug)} 0 {len(drug)}" in text  # the flow: read, excluded, analysed
    assert "arm_ketamine_iv treatment (the arm, not a patient feature)" in text
