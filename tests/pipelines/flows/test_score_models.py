"""Several models in one scoring run (repeated --model): one row per course with every model's columns;
clashing columns, a repeated model, --explain and the Spark engine with several models are exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from ketamine_response.features.errors import UsageError
from ketamine_response.features.tasks import TASKS, TaskKind
from tests.pipelines.conftest import TARGET
from tests.pipelines.flows.conftest import MODEL

PER_ARM = [f"{c}{end}" for c in ("probability_ketamine_iv", "probability_placebo", "predicted_benefit_ketamine_iv")
           for end in ("", "_low", "_high")]
ONE_MODEL_COLUMNS = ["patient_id", "treatment", "probability", "probability_low", "probability_high",
                     "probability_percentile", "model_name", "model_version", *PER_ARM, "warnings"]


class ContinuousStandIn:
    """The trained response model posing as a percentage-change model: another target and other columns,
    so two models can be scored together without training a second one."""

    target = "pct_change_24h"
    task = TASKS[TaskKind.CONTINUOUS]

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:  # everything else is the real model's
        return getattr(self.inner, name)

    score_columns = ("predicted_pct_change",)

    def predictions(self, cohort: pd.DataFrame) -> dict[str, Any]:
        return {"predicted_pct_change": self.inner.predict_table(cohort)}  # the same model inside

    def arm_columns(self) -> list[str]:
        return []

    def arm_table(self, cohort: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(index=cohort.index)


@pytest.fixture
def cohort_file(strong_run, tmp_path) -> Path:
    """30 courses of the training sites, outcomes dropped, one invalid row and two from a site never seen."""
    result, cohort, _ = strong_run
    table = cohort[cohort["site"].isin(result.model.sites)].head(30).copy()
    table = table.drop(columns=[c for c in table.columns if c.startswith("madrs_") and c != "madrs_baseline"])
    table.loc[table.index[4], "madrs_baseline"] = 75  # out of range: rejected once, whatever the models
    table.loc[table.index[:2], "site"] = "site_99"
    path = tmp_path / "cohort.csv"
    table.to_csv(path, index=False)
    return path


def _cli(capsys, *args: str) -> tuple[int, str]:
    from ketamine_response.pipelines.cli import main

    code = main(["score", *args])
    return code, capsys.readouterr().err


def test_two_models_give_one_row_per_course_with_both_models_columns(cohort_file, response, tmp_path):
    from ketamine_response.pipelines.flows.score import Scorer, score_file, score_models

    scorers = [Scorer(response, "resp", "3"), Scorer(ContinuousStandIn(response), "change", "7")]
    both = score_models(cohort_file, tmp_path / "both.csv", scorers)
    alone = score_file(cohort_file, tmp_path / "alone.csv", response, "resp", "3")
    scores = pd.read_csv(tmp_path / "both.csv", keep_default_na=False)
    single = pd.read_csv(tmp_path / "alone.csv", keep_default_na=False)
    assert list(scores.columns) == ["patient_id", "treatment", "probability", "probability_low", "probability_high",
                                    "probability_percentile", f"model_name_{TARGET}", f"model_version_{TARGET}",
                                    *PER_ARM, "predicted_pct_change",
                                    "model_name_pct_change_24h", "model_version_pct_change_24h", "warnings"]
    assert (both.read, both.scored, both.rejected) == (30, 29, 1) and len(scores) == 29
    assert both.models == (("resp", "3"), ("change", "7"))
    assert (scores[f"model_version_{TARGET}"] == 3).all() and (scores["model_name_pct_change_24h"] == "change").all()
    pd.testing.assert_frame_equal(scores[["patient_id", "treatment"]], single[["patient_id", "treatment"]])
    np.testing.assert_allclose(scores["probability"], scores["predicted_pct_change"])  # the same model inside
    caveats = "; ".join(response.caveats)  # each model's caveats after the row's own warnings, led by its target
    assert scores["warnings"].iloc[0] == (f"{TARGET}: site not seen in training; {caveats}; "
                                          f"pct_change_24h: site not seen in training; {caveats}")
    assert (scores["warnings"].iloc[2:] == f"{TARGET}: {caveats}; pct_change_24h: {caveats}").all()
    # validation and the rejected rows happen once: the same file as with one model
    assert both.rejected_path.read_bytes() == alone.rejected_path.read_bytes()


def test_no_valid_row_still_writes_every_models_header(cohort_file, response, tmp_path):
    from ketamine_response.pipelines.flows.score import Scorer, score_models

    header = cohort_file.read_text().splitlines()[0]
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "\n" + ",".join("x" for _ in header.split(",")) + "\n")
    scorers = [Scorer(response, "resp", "3"), Scorer(ContinuousStandIn(response), "change", "7")]
    summary = score_models(bad, tmp_path / "s.csv", scorers)
    assert summary.scored == 0 and "model_version_pct_change_24h" in pd.read_csv(tmp_path / "s.csv").columns


def test_blind_file_needs_every_model_to_score_blind(cohort_file, response, tmp_path):
    from ketamine_response.pipelines.flows.score import Scorer, score_models

    blind = tmp_path / "blind.csv"
    pd.read_csv(cohort_file).drop(columns="treatment").to_csv(blind, index=False)
    scorers = [Scorer(response, "resp", "3"), Scorer(ContinuousStandIn(response), "change", "7")]
    with pytest.raises(UsageError, match="no treatment column, and model change version 7 predicts for the arm given"):
        score_models(blind, tmp_path / "s.csv", scorers)
    assert not (tmp_path / "s.csv").exists()


def test_one_model_writes_todays_columns(cohort_file, strong_run, tmp_path):
    from ketamine_response.pipelines.flows.score import run_score

    summary = run_score(cohort_file, tmp_path / "one.csv", [MODEL])
    assert list(pd.read_csv(tmp_path / "one.csv").columns) == ONE_MODEL_COLUMNS
    assert summary.model == f"ketamine-response.tests.{TARGET}" and len(summary.models) == 1


def test_clashing_columns_are_refused_naming_both_models(cohort_file, strong_run, capsys, tmp_path):
    from mlflow import MlflowClient

    champion = MlflowClient().get_model_version_by_alias(f"ketamine-response.tests.{TARGET}", "champion")
    logged = str(champion.source)  # models:/m-ID: the same files by another URI, so every column clashes
    code, err = _cli(capsys, str(cohort_file), "--out", str(tmp_path / "s.csv"), "--model", MODEL, "--model", logged)
    assert code == 2, err
    assert f"ketamine-response.tests.{TARGET} version {champion.version}" in err and logged.removeprefix("models:/") in err
    assert "'probability'" in err and "separately" in err
    assert list(tmp_path.glob("s*")) == []


def test_the_same_model_twice_is_refused(cohort_file, strong_run, capsys, tmp_path):
    from mlflow import MlflowClient

    version = MlflowClient().get_model_version_by_alias(f"ketamine-response.tests.{TARGET}", "champion").version
    numbered = f"models:/ketamine-response.tests.{TARGET}/{version}"
    code, err = _cli(capsys, str(cohort_file), "--out", str(tmp_path / "s.csv"), "--model", MODEL, "--model", numbered)
    assert code == 2 and "same model" in err and numbered in err
    assert list(tmp_path.glob("s*")) == []


@pytest.mark.parametrize(("option", "message"), [(["--explain", "2"], "--explain explains one model"),
                                                  (["--engine", "spark"], "--engine spark scores with one --model")])
def test_explain_and_spark_take_one_model(option, message, capsys, tmp_path):
    code, err = _cli(capsys, str(tmp_path / "c.csv"), "--out", str(tmp_path / "s.csv"), "--model", "models:/a/1",
                     "--model", "models:/b/1", *option)
    assert code == 2 and message in err
