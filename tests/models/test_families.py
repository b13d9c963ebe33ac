"""The family registry's contract, checked for every entry: adding a family adds its row here for free.

Each family fits, predicts probabilities, explains itself with additive SHAP values, round-trips
through the logged model (a real MLflow SQLite store), and is deterministic for a seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.derivations.inflammatory import COMPOSITE
from ketamine_response.features.synthetic.cohort import build_cohort, input_example
from ketamine_response.features.tasks import TASKS, TaskKind
from ketamine_response.models.explain import EXPLAINERS, background_centres, explain
from ketamine_response.models.families import FAMILIES, FAMILY_NAMES, SELECTED, get_family, predict
from ketamine_response.models.wrapper import CohortModel
from ketamine_response.pipelines.config import TrainConfig, load_config
from ketamine_response.pipelines.flows.train import build_training_data
from ketamine_response.pipelines.training.nested import fit_calibrated
from ketamine_response.pipelines.training.procedure import make_model
from tests.pipelines.conftest import FAST_CONFIG

FAMILY_IDS = list(FAMILY_NAMES)


@pytest.fixture(scope="module")
def designs():
    """One design per kind of family, on the same courses: the first task fitted with it, at its first example
    target (response_24h, pct_change_day7, time_to_relapse), so a new task's families are checked with no change
    here. The durability scenario has every outcome; 1,200 courses leave about 500 followed after a response."""
    cohort, _ = build_cohort(1200, 11, "durability")
    validated = validate_table(cohort, "contract")
    config = load_config(FAST_CONFIG)
    out = {}
    for task in TASKS.values():
        if task.family_kind in out:
            continue
        target = task.forms[0][2]
        data, built, _ = build_training_data(validated, target, config, False)
        out[task.family_kind] = (validated, data, built, config, target)
    return out


@pytest.fixture
def design(designs, family):
    return designs[get_family(family).task]


def _fit(family: str, design, seed: int = 5):
    validated, data, built, config, _ = design
    params = get_family(family).candidates(1, seed)[0]
    train, test = data.take(np.arange(0, 300)), data.take(np.arange(300, len(data.y)))
    return fit_calibrated(family, params, train, config, seed), train, test


def test_registry_is_the_one_list_of_families():
    config = TrainConfig()  # by default each task's config key lists its own families, together the registry
    lists = {task.families_key: config.families_for(task) for task in TASKS.values()}  # a harm shares the binary list
    assert sorted(f for families in lists.values() for f in families) == sorted(FAMILY_NAMES)
    assert all(get_family(f).task is task.family_kind for task in TASKS.values() for f in config.families_for(task))
    assert all(FAMILIES[name].name == name for name in FAMILY_NAMES)
    assert SELECTED not in FAMILY_NAMES  # the name of the whole procedure's row and child run
    with pytest.raises(ValueError, match="unknown model family 'xgboost'; known: prevalence"):
        get_family("xgboost")


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_entry_is_complete(family):
    entry = get_family(family)
    assert entry.description and entry.explainer in EXPLAINERS
    candidates = entry.candidates(4, 0)
    assert 1 <= len(candidates) <= 4 and candidates == entry.candidates(4, 0)
    pipeline = entry.pipeline(("age", "arm_ketamine_iv"), {"age": "clinical"}, candidates[0], 0)
    assert pipeline.steps[-1][0] == "model"
    if entry.threads_param:
        assert entry.threads_param in pipeline.get_params()


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_fits_and_predicts_probabilities(family, design):
    model, _, test = _fit(family, design)
    if not TASKS[get_family(family).task].probabilities:
        assert predict(model, test.X).shape == (len(test.y),) and np.isfinite(predict(model, test.X)).all()
        return
    p = model.predict_proba(test.X)
    assert p.shape == (len(test.y), 2)
    assert np.all((p >= 0) & (p <= 1)) and np.allclose(p.sum(axis=1), 1)


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_explains_with_additive_shap(family, design):
    model, train, test = _fit(family, design)
    e = explain(model, family, train.X, test.X)
    np.testing.assert_allclose(e.values.sum(axis=1).to_numpy() + e.base, e.raw, atol=1e-9)
    assert list(e.values.index) == list(test.X.index)
    assert set(e.values.columns) <= set(train.X.columns) | {COMPOSITE}  # in the feature dictionary's space
    if get_family(family).task is TaskKind.SURVIVAL:  # the raw output is the log hazard: it ranks like the risk
        order = np.argsort(e.raw)
        assert np.all(np.diff(predict(model, test.X)[order]) >= -1e-12)
    elif not TASKS[get_family(family).task].probabilities:  # the raw output is the prediction itself
        np.testing.assert_allclose(e.raw, predict(model, test.X))
    elif get_family(family).explainer != "constant":
        # the raw output is the members' mean log-odds; calibration maps it (near) monotonically
        order = np.argsort(e.raw)
        assert np.all(np.diff(predict(model, test.X)[order]) >= -0.15)
    # the modifier (feature x active-arm) part is split out, and main + modifier is the whole value
    assert list(e.modifier.columns) == list(e.values.columns)
    np.testing.assert_allclose((e.main + e.modifier).to_numpy(), e.values.to_numpy())
    if get_family(family).explainer != "linear":  # no explicit feature x arm terms: nothing to split out
        assert not e.modifier.to_numpy().any()
    stored = explain(model, family, background_centres(model, family, train.X), test.X)
    np.testing.assert_allclose(stored.values.to_numpy(), e.values.to_numpy())


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_is_deterministic_for_a_seed(family, design):
    first, _, test = _fit(family, design, seed=3)
    again, _, _ = _fit(family, design, seed=3)
    np.testing.assert_array_equal(predict(first, test.X), predict(again, test.X))


@pytest.mark.parametrize("family", FAMILY_IDS)
def test_round_trips_through_the_logged_model(family, design, store):
    import mlflow

    from ketamine_response.pipelines import registry
    from ketamine_response.pipelines.store import open_experiment

    validated, _, built, _, target = design
    estimator, train, _ = _fit(family, design)
    wrapped: CohortModel = make_model(estimator, family, train, built, validated, target, 0.3)
    # the experiment's own artifact folder sits beside the test store (the Default one is cwd-relative)
    with mlflow.start_run(experiment_id=open_experiment("family-contract")):
        info, _ = registry.log_model(wrapped, input_example(wrapped.training_columns))
    loaded = registry.load_model(info.model_uri)
    rows = validated.table.iloc[300:]
    np.testing.assert_allclose(np.asarray(loaded.predict(rows.astype("str").replace({"<NA>": ""}))),
                               wrapped.predict_table(rows), rtol=1e-12)
    explained = loaded.unwrap_python_model().explain_table(rows)
    np.testing.assert_allclose(explained.values.sum(axis=1).to_numpy() + explained.base, explained.raw, atol=1e-9)
    loaded.unwrap_python_model().use_threads(2)  # scoring raises threads where the family allows it
