"""The report, artifacts and terminal summary of the tasks beyond response: a time to relapse (durability section,
no ROC or decision curve) and a harm (tolerability table, worded as a harm). One small real training per target,
shared by the module's tests."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.pipelines.conftest import make_cohort
from tests.pipelines.reporting.browser import CHROMIUM, chromium

HARM = "cadss_40min_ge5"


@pytest.fixture(scope="module")
def durability_cohort(tmp_path_factory) -> Path:
    return make_cohort(tmp_path_factory.mktemp("durability"), 800, 4, "durability")[0]


@pytest.fixture(scope="module")
def cheap_config(fast_config):
    """The test config without permutations and with a short bootstrap: these tests read wording and layout."""
    evaluation = dataclasses.replace(fast_config.evaluation, permutations=0, bootstrap=20)
    return dataclasses.replace(fast_config, evaluation=evaluation)


def _train(cohort: Path, target: str, config, out: Path):
    from ketamine_response.pipelines.flows.report import run_report
    from ketamine_response.pipelines.flows.train import run_train

    result = run_train(cohort, target, config, experiment="task-reports")
    return result, run_report(result.run_id, out).read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def relapse_run(store, durability_cohort, cheap_config, tmp_path_factory):
    return _train(durability_cohort, "time_to_relapse", cheap_config, tmp_path_factory.mktemp("relapse-report"))


@pytest.fixture(scope="module")
def harm_run(store, durability_cohort, cheap_config, tmp_path_factory):
    return _train(durability_cohort, HARM, cheap_config, tmp_path_factory.mktemp("harm-report"))


def _artifacts(run_id: str) -> set[str]:
    from mlflow import MlflowClient

    client, found, folders = MlflowClient(), set(), [""]
    while folders:
        for item in client.list_artifacts(run_id, folders.pop()):
            (folders.append(item.path) if item.is_dir else found.add(item.path))
    return found


def test_relapse_report_has_the_durability_section_instead_of_roc_and_decision_curve(relapse_run):
    from ketamine_response.pipelines.reporting.wording import RELAPSE_QUESTION

    result, page = relapse_run
    assert "Durability: time to relapse after a response" in page
    assert 'alt="plots/km_by_fifth.png"' in page and 'alt="plots/calibration_28d.png"' in page
    assert "Calibration at 28 days by fifth of predicted risk" in page and "observed relapse 28d" in page
    for metric in ("Harrell&#x27;s C", "Uno&#x27;s C", "AUROC 28d", "AUROC 56d", "integrated Brier", "calibration gap 28d"):
        assert metric in page, metric
    assert "plots/roc.png" not in page and "plots/decision_curve.png" not in page and "plots/calibration.png" not in page
    assert RELAPSE_QUESTION in page
    excluded = len(result.features.frame) - len(result.data.y)
    assert excluded > 0 and f"{excluded} courses were left out as not followed after a response" in page
    assert f"{len(result.data.y)} courses followed after a response, {int(result.data.y['event'].sum())} relapses" in page
    assert "Which features predict relapse" in page


def test_relapse_run_logs_its_durability_artifacts(relapse_run):
    result, _ = relapse_run
    logged = _artifacts(result.run_id)
    assert {"plots/km_by_fifth.png", "plots/calibration_28d.png", "calibration_28d.csv", "durability/metrics.csv",
            "durability/km_by_fifth.csv", "durability/not_followed.csv"} <= logged
    assert "decision_curve.csv" not in logged and "plots/roc.png" not in logged


def test_durability_table_counts_the_courses_each_metric_is_judged_on(relapse_run):
    from ketamine_response.pipelines.evaluation.durability import durability_table

    result, _ = relapse_run
    y, ev = result.data.y, result.evaluations["selected"]
    table = durability_table(ev, y).set_index("metric")
    assert table.loc["c_index", "courses"] == len(y) and table.loc["c_index", "relapses"] == y["event"].sum()
    assert table.loc["c_index", "estimate"] == pytest.approx(ev.metrics["c_index"])
    assert tuple(table.loc["c_index", ["ci_low", "ci_high"]]) == ev.ci["c_index"]
    assert table.loc["auroc_28d", "relapses"] == (y["event"] & (y["time"] <= 28)).sum()
    assert table.loc["auroc_28d", "courses"] <= len(y)


def test_harm_report_says_harm_and_shows_the_tolerability_table(harm_run):
    result, page = harm_run
    assert "Tolerability: cadss_40min &gt;= 5 by arm" in page and "Harms by arm" in page
    assert "How likely is the harm cadss_40min &gt;= 5 if given the drug?" in page
    assert "How often does it happen on each arm?" in page and "Which features predict the harm" in page
    assert "the probability that cadss_40min reaches 5" in page and "Harms (outcome = 1)" in page
    wrong = r"(?<!ketamine-)respon"  # the package's name aside, nothing speaks of response or responders
    assert not re.search(wrong, page, re.I), re.findall(r".{60}" + wrong + r".{60}", page, re.I)[:3]
    assert "Benefit over placebo" not in page and "who benefits" not in page
    assert "tolerability.csv" in _artifacts(result.run_id)


def test_tolerability_withholds_rates_of_arms_with_few_harms():
    from ketamine_response.pipelines.evaluation.tolerability import tolerability_by_arm

    y = np.r_[np.ones(12), np.zeros(88), np.ones(3), np.zeros(97)]
    arms = np.array(["ketamine_iv"] * 100 + ["placebo"] * 100)
    table = tolerability_by_arm(y, arms, 10).set_index("arm")
    assert table.loc["ketamine_iv", "rate"] == pytest.approx(0.12) and table.loc["ketamine_iv", "rate_ci_low"] < 0.12
    assert table.loc["placebo", ["courses", "harms"]].tolist() == [100, 3] and pd.isna(table.loc["placebo", "rate"])
    assert not table.loc["placebo", "shown"] and table.loc["all arms", "harms"] == 15


def test_terminal_summary_names_each_question(relapse_run, harm_run):
    from ketamine_response.pipelines.reporting.descriptions import run_description
    from ketamine_response.pipelines.reporting.terminal import render_table
    from ketamine_response.pipelines.reporting.wording import RELAPSE_QUESTION

    relapse, harm = relapse_run[0], harm_run[0]
    text = render_table(relapse.table(), relapse.data.task, relapse.permutation.statistic)
    assert text.startswith(f"question: {RELAPSE_QUESTION}\n") and "Harrell's C (95% CI)" in text and "Uno's C" in text
    assert "question: How likely is this harm if given the drug?" in render_table(harm.table(), harm.data.task,
                                                                                  harm.permutation.statistic)
    named = render_table(harm.table(), harm.data.task, harm.permutation.statistic, harm.target)
    assert named.startswith("question: How likely is the harm cadss_40min >= 5 if given the drug?\n")
    assert RELAPSE_QUESTION in run_description(relapse) and "cadss_40min >= 5" in run_description(harm)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make test installs it)")
def test_relapse_report_loads_every_image_in_a_browser(relapse_run, tmp_path):
    page = tmp_path / "index.html"
    page.write_text(relapse_run[1], encoding="utf-8")
    dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    images, errors = re.search(r'data-images-ok="(\d+)/(\d+)"', dom), re.search(r'data-errors="(\d+)"', dom)
    assert images and errors, dom[:500]
    assert images.group(1) == images.group(2) and int(images.group(2)) >= 4 and errors.group(1) == "0"
