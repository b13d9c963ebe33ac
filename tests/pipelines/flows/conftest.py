"""The shared external evaluation: one ``evaluate`` of the strong run's registered model on a fresh cohort."""

from __future__ import annotations

import pytest

from tests.pipelines.conftest import TARGET, make_cohort

MODEL = f"models:/ketamine-response.tests.{TARGET}@champion"  # strong_run's version, promoted
EVALUATION_RESAMPLES = 100  # enough for an interval here; the command's default is 500


def model_uri(run_id: str) -> str:
    """The registered version a training run logged (its ``registered_model`` tag, ``NAME/VERSION``)."""
    from ketamine_response.pipelines import listing

    return "models:/" + listing.find_runs([run_id])[0]["tags"]["registered_model"]


@pytest.fixture(scope="session")
def evaluated(strong_run, tmp_path_factory):
    """(ExternalResult, cohort path, model URI): strong_run's model evaluated on 600 fresh strong-scenario
    courses (another seed), shared by test_external.py and test_compare.py."""
    from ketamine_response.pipelines.flows.external import run_evaluate

    path, _, _ = make_cohort(tmp_path_factory.mktemp("external"), 600, 77, "strong")
    uri = model_uri(strong_run[0].run_id)
    return run_evaluate(path, uri, resamples=EVALUATION_RESAMPLES), path, uri


@pytest.fixture(scope="module")
def response(strong_run):
    """strong_run's registered model as a scoring model (loaded through the registry, as `score` loads it)."""
    from ketamine_response.pipelines import registry

    return registry.load_model(MODEL).unwrap_python_model()
