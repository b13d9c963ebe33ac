"""A small hand-built leave-one-site-out result (no training): for the content and layout tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ketamine_response.features.build import FeatureTable
from ketamine_response.pipelines.config import load_config
from ketamine_response.pipelines.evaluation.evaluate import Evaluation, add_active_arm_metrics, add_cv_uncertainty, evaluate
from ketamine_response.pipelines.evaluation.explanation import ShapSummary
from ketamine_response.pipelines.evaluation.importance import IMPORTANCE_COLUMNS
from ketamine_response.pipelines.evaluation.sample_size import SampleSize
from ketamine_response.pipelines.folds import Data, FoldResult, Split, pooled, pooled_threshold
from ketamine_response.pipelines.result import TrainingResult
from ketamine_response.pipelines.training.permutation import PermutationResult

CONFIG = Path(__file__).parents[1] / "fast_train.yaml"
SITES = ("s1", "s2", "s3", "s4")
DIGEST = "ab" * 32
IDENTITY = {"Run": "run-7f3e", "Date": "2026-11-30 14:05 UTC", "Model": "ketamine-response-response_24h version 3",
            "Data": "synthetic (scenario literature, seed 0)"}
NO_FEATURE = "no feature is reported as consistently important: the selected procedure did not beat permuted labels"
# as long as the real sample-size warning, so the phone's first screen is tested with realistic text
WARNING = ("WARNING: too few patients or events for this model: 159 events in 405 courses of 342 patients; the most "
           "flexible candidate model estimates 97 parameters beyond the intercept (1.64 events per parameter; the "
           "config asks for 10), chosen by a search over families and hyperparameters. Riley et al. 2020 minimum for "
           "an anticipated Cox-Snell R2 of 0.288 (the cohort's nested cross-validated estimate): 2511 patients "
           "(shrinkage 2511, optimism 2173, overall risk 367). Expect overfitting and unstable estimates; read the "
           "confidence intervals, not the point estimates. The registered version gets no alias.")


def _folds(y: np.ndarray, sites: np.ndarray, rng: np.random.Generator) -> list[FoldResult]:
    """Leave-one-site-out folds with noisy but informative predictions."""
    folds = []
    for i, site in enumerate(SITES):
        test, train = np.flatnonzero(sites == site), np.flatnonzero(sites != site)
        p = np.clip(0.35 + 0.3 * (y[test] - 0.4) + rng.normal(0, 0.15, len(test)), 0.02, 0.98)
        fold = FoldResult(Split(0, i, train, test), "elastic_net", {}, {}, float(y[train].mean()))
        fold.predictions = {"elastic_net": p, "prevalence": np.full(len(test), float(y[train].mean()))}
        folds.append(fold)
    return folds


def _data(n: int, rng: np.random.Generator) -> tuple[Data, pd.DataFrame]:
    arms = rng.choice(["ketamine_iv", "esketamine_in", "placebo"], n)
    frame = pd.DataFrame({"age": rng.normal(45, 12, n), "sex_female": rng.integers(0, 2, n).astype(float),
                          "madrs_baseline": rng.normal(34, 6, n), "arm_ketamine_iv": (arms == "ketamine_iv") * 1.0})
    y = (rng.random(n) < np.where(arms == "placebo", 0.2, 0.5)).astype(float)
    patients = np.array([f"PATIENT-SECRET-{i:04d}" for i in range(n)])
    data = Data(frame[["age", "arm_ketamine_iv"]], y, patients, np.array(SITES)[np.arange(n) % 4], arms,
                {"age": "clinical", "arm_ketamine_iv": "pharmacological"})
    return data, frame


def _evaluation(data: Data, folds: list[FoldResult], family: str | None) -> Evaluation:
    groups = {"sex": np.where(data.X["age"] > 45, "F", "M").astype(object), "arm": data.treatments, "site": data.sites}
    ev = evaluate(data.y, pooled(data, folds, family), data.patients, groups, pooled_threshold(data, folds), 30, 0)
    return add_active_arm_metrics(add_cv_uncertainty(ev, data, folds, family), data, folds, family)


def _importance() -> pd.DataFrame:
    rows = [["age", "age", "clinical", 0.31, 0.31, 0.31, 1, 1.0, 1.0, "-", True, 0.2, 0.1],
            ["arm_ketamine_iv", "treatment", "pharmacological", 0.2, 0.2, 0.2, 2, 0.5, 0.75, "+", False, 0.2, 0.0]]
    return pd.DataFrame(rows, columns=IMPORTANCE_COLUMNS)


@pytest.fixture(scope="session")
def site_result() -> TrainingResult:
    """A leave-one-site-out result over 4 sites, configured for 3 folds x 1 repeat (the config is ignored by site CV)."""
    rng = np.random.default_rng(3)
    config = load_config(CONFIG)
    config = dataclasses.replace(config, cv=dataclasses.replace(config.cv, design="site"),
                                 families=("prevalence", "elastic_net"))
    data, frame = _data(240, rng)
    folds = _folds(data.y, data.sites, rng)
    evaluations = {f: _evaluation(data, folds, f) for f in config.families} | {"selected": _evaluation(data, folds, None)}
    keys = (*config.families, "selected")
    permutation = PermutationResult({k: 0.7 for k in keys}, {k: 0.2 for k in keys}, {k: 19 for k in keys})
    size = SampleSize(240, int(data.y.sum()), 40, 0.1, "auto", {"shrinkage": 2000}, patients=240)
    shap = ShapSummary(_importance(), pd.DataFrame(columns=["domain", "mean_abs_shap"]),
                       pd.DataFrame(columns=["source_column", "mean_abs_shap"]), None, 0.0, vetoed=True)  # type: ignore[arg-type]
    features = FeatureTable(frame, tuple(frame.columns), pd.DataFrame(), (), "response_24h")
    return TrainingResult("response_24h", config, data, features, folds, "elastic_net", evaluations, permutation,
                          size, None, shap, [WARNING, NO_FEATURE, "an ordinary note"],  # type: ignore[arg-type]
                          warnings=[WARNING, NO_FEATURE])
