"""The per-patient benefit-and-harm view of a scores file: every number under its question, nothing half-written."""

from __future__ import annotations

import html
import re

import pandas as pd
import pytest

from ketamine_response.features.errors import UsageError
from ketamine_response.pipelines.flows.view import run_view

SCORES = pd.DataFrame({
    "patient_id": ["P1", "P2"], "treatment": ["ketamine_iv", "placebo"], "probability": [0.47, 0.12],
    "predicted_responder": [1, 0], "model_name_response_24h": ["m-response", "m-response"],
    "model_version_response_24h": [1, 1], "probability_ketamine_iv": [0.47, 0.14], "probability_placebo": [0.40, 0.12],
    "predicted_benefit_ketamine_iv": [0.07, 0.02], "relapse_free_28d": [0.8, 0.6], "relapse_free_56d": [0.6, 0.3],
    "median_days_to_relapse": [None, 40.0], "model_name_time_to_relapse": ["m-relapse"] * 2,
    "model_version_time_to_relapse": [2, 2], "probability_sbp_change_mmhg_ge40": [0.08, 0.01],
    "predicted_sbp_change_mmhg_ge40": [1, 0], "model_name_sbp_change_mmhg_ge40": ["m-harm"] * 2,
    "model_version_sbp_change_mmhg_ge40": [3, 3], "warnings": ["", "site not seen in training"]})


def _text(path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "\n", path.read_text(encoding="utf-8")))


def test_each_course_answers_response_benefit_durability_and_harm(tmp_path):
    scores = tmp_path / "s.csv"
    SCORES.to_csv(scores, index=False)
    assert run_view(scores, tmp_path / "v.html") == 2
    text = _text(tmp_path / "v.html")
    assert "Response if given ketamine_iv: 47%" in text and "+7 percentage points" in text
    assert "still relapse-free after 28 days: 80%; after 56 days: 60%" in text
    assert "median days to relapse: not reached" in text and "median days to relapse: 40 days" in text
    assert "Harm sbp_change_mmhg ≥ 40: 8%" in text and "Warnings: site not seen in training" in text
    assert "m-response version 1; m-relapse version 2; m-harm version 3" in text and "no per-patient interval" in text
    assert run_view(scores, tmp_path / "one.html", ("P2",)) == 1 and "P1" not in _text(tmp_path / "one.html")


@pytest.mark.parametrize("change, message", [
    (lambda s: s[["patient_id", "treatment", "warnings"]], "no prediction"),
    (lambda s: s.drop(columns=["patient_id"]), "no patient_id"),
])
def test_a_file_that_is_not_scores_is_refused_and_nothing_written(tmp_path, change, message):
    scores = tmp_path / "s.csv"
    change(SCORES).to_csv(scores, index=False)
    with pytest.raises(UsageError, match=message):
        run_view(scores, tmp_path / "v.html")
    assert not list(tmp_path.glob("*.html")) and not list(tmp_path.glob(".*partial"))
