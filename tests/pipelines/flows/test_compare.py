"""``compare``: the shared strong training run beside its external evaluation; the train table's width."""

from __future__ import annotations

import pytest

from tests.pipelines.reporting.browser import CHROMIUM, chromium


def test_compare_puts_training_and_evaluation_side_by_side(evaluated, strong_run, tmp_path, capsys):
    from ketamine_response.pipelines.cli import main
    from ketamine_response.pipelines.flows.compare import run_compare
    from ketamine_response.pipelines.reporting.comparison import render_comparison

    evaluation, _, _ = evaluated
    trained = strong_run[0]
    comparison = run_compare([trained.run_id[:10], evaluation.run_id])
    s = comparison.sections
    assert comparison.runs == [trained.run_id[:8], evaluation.run_id[:8]]
    assert list(s["run"].loc["kind"]) == ["training", "evaluation"]
    assert s["run"].loc["training run"].iloc[1] == trained.run_id[:8]
    drug = s["headline (95% CI)"].loc["AUROC within the drug arm(s)"]
    low, high = trained.evaluations["selected"].ci["auroc_active"]
    assert drug.iloc[0] == pytest.approx((trained.evaluations["selected"].metrics["auroc_active"], low, high), abs=1e-4)
    assert drug.iloc[1][0] == pytest.approx(evaluation.metrics["auroc_active"], abs=1e-4)
    gain = s["headline (95% CI)"].loc["AUROC gain over the arm alone"].iloc[0]
    assert gain[1] <= gain[0] <= gain[2]  # the point its interval is built around
    assert s["biomarker roles"].iloc[0, 0] and s["biomarker roles"].iloc[0, 1] == "-"  # an evaluation logs no roles
    assert "config differences" not in s  # one training run: nothing to differ
    text = render_comparison(comparison.runs, s)
    assert "calibration (95% CI):" in text and "slope, drug arm(s)" in text and "synthetic:strong" in text
    assert max(map(len, text.splitlines())) <= 100
    page = tmp_path / "cmp.html"
    assert main(["compare", trained.run_id[:8], evaluation.run_id[:8], "--out", str(page)]) == 0
    html = page.read_text(encoding="utf-8")
    assert "<h2>biomarker roles</h2>" in html and "<b>predictive</b>:" in html and "<script" not in html
    assert "comparison page written to" in capsys.readouterr().out
    if CHROMIUM is not None:  # the page opens on its own in a browser, every section rendered
        dom = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
        assert dom.count("<table>") == len(s) and "AUROC within the drug arm(s)" in dom


def test_bad_run_ids_exit_2(evaluated, capsys):
    from ketamine_response.pipelines.cli import main

    evaluation, _, _ = evaluated
    assert main(["compare", evaluation.run_id, "0123456789abcdef"]) == 2
    assert "'0123456789abcdef' matches no run" in capsys.readouterr().err
    assert main(["compare", evaluation.run_id]) == 2 and "at least two" in capsys.readouterr().err
    assert main(["compare", "", evaluation.run_id]) == 2 and "give more of its id" in capsys.readouterr().err
    assert main(["compare", evaluation.run_id, evaluation.run_id[:8]]) == 2 and "named twice" in capsys.readouterr().err


def test_train_table_fits_100_columns_and_wide_shows_every_column(strong_run):
    from ketamine_response.pipelines.reporting.terminal import render_table

    result = strong_run[0]
    table, task, statistic = result.table(), result.data.task, result.permutation.statistic
    narrow = render_table(table, task, statistic, result.target).splitlines()
    assert max(map(len, narrow[:-1])) <= 100  # the table; the footer below it is prose
    assert "AUROC drug arm" in narrow[1] and "p adj" in narrow[1] and "slope" in narrow[1]
    assert "(--wide shows every column)" in narrow[-1]
    wide = render_table(table, task, statistic, result.target, wide=True)
    assert "AUROC active arm(s) (95% CI)" in wide and "AUROC all arms (95% CI)" in wide and "Brier" in wide
