"""A small training config and the shared strong-scenario training run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ketamine_response.features.cohort.reader import write_table
from ketamine_response.features.synthetic.cohort import build_cohort

FAST_CONFIG = Path(__file__).parent / "fast_train.yaml"
LEAN_CONFIG = Path(__file__).parent / "lean_train.yaml"  # fast_train.yaml without the benefit model
TARGET = "response_24h"


@pytest.fixture(scope="session")
def fast_config():
    from ketamine_response.pipelines.config import load_config

    return load_config(FAST_CONFIG)


@pytest.fixture(scope="session")
def lean_config():
    """For runs whose tests check the registry, the permutation test or the selected model, not the
    benefit model (about half of a small run)."""
    from ketamine_response.pipelines.config import load_config

    return load_config(LEAN_CONFIG)


def unpermuted(config):
    """*config* without the permutation test (about half of a small run), for a test whose claim does not
    rest on it: the registry's aliases, the out-of-fold interval against a fresh cohort."""
    import dataclasses

    return dataclasses.replace(config, evaluation=dataclasses.replace(config.evaluation, permutations=0))


def make_cohort(tmp: Path, n: int, seed: int, scenario: str) -> tuple[Path, pd.DataFrame, pd.DataFrame]:
    cohort, oracle = build_cohort(n, seed, scenario)
    # distinctive identifiers, so the privacy check cannot pass by accident
    ids = {p: f"ZQX-{seed}-{i:05d}-SECRET" for i, p in enumerate(cohort["patient_id"].unique())}
    cohort["patient_id"] = cohort["patient_id"].map(ids)
    path = tmp / f"{scenario}-{n}-{seed}.csv"
    write_table(cohort, path)
    return path, cohort, oracle


@pytest.fixture(scope="session")
def strong_run(store, fast_config, tmp_path_factory):
    """One training run on 1,500 strong-scenario courses, shared by the training, SHAP and report tests.

    Like almost every real cohort it is below the Riley minimum for ~100 parameters, so its version
    gets no alias; it is promoted here by hand, as a user would, so scoring tests find a champion.
    """
    from ketamine_response.pipelines import registry, tracking
    from ketamine_response.pipelines.flows.train import run_train

    tmp = tmp_path_factory.mktemp("strong")
    path, cohort, oracle = make_cohort(tmp, 1500, 21, "strong")
    result = run_train(path, TARGET, fast_config, experiment="tests")
    registry.promote(tracking.registered_name("tests", TARGET), result.version)
    return result, cohort, oracle




def ds005917_run_inputs(tmp: Path, permutations: int) -> tuple[Path, object]:
    """The shipped ds005917 cohort ingested into *tmp*, and the small-cohort config made cheaper: fewer
    permutations and resamples, two CV repeats, not five, and no per-patient interval refits (no test of this
    cohort reads them)."""
    import dataclasses

    from ketamine_response.pipelines.config import load_config
    from ketamine_response.pipelines.flows.ingest import run_ingest

    cohort = tmp / "ds005917.csv"
    run_ingest("bids", Path(__file__).parents[2] / "data" / "public" / "openneuro-ds005917", cohort)
    small = load_config("train_small")
    evaluation = dataclasses.replace(small.evaluation, permutations=permutations, bootstrap=50)
    intervals = dataclasses.replace(small.intervals, replicates=0, benefit_replicates=0)
    cv = dataclasses.replace(small.cv, outer_repeats=2)
    return cohort, dataclasses.replace(small, cv=cv, evaluation=evaluation, intervals=intervals)
