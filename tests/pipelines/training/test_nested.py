"""The cheaper inner loop selects and calibrates what the plain one does (issue 26)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.base import clone

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.models.families import get_family, predict
from ketamine_response.pipelines.evaluation.metrics import log_loss
from ketamine_response.pipelines.flows.train import build_training_data
from ketamine_response.pipelines.training.cv import inner_splits
from ketamine_response.pipelines.training.nested import (
    Searched,
    calibrated_ensemble,
    candidate_fits,
    fit_calibrated,
    fit_searched,
    search,
)
from tests.pipelines.conftest import TARGET


@pytest.fixture(scope="module")
def searched(fast_config):
    cohort, _ = build_cohort(900, 3, "strong")
    data = build_training_data(validate_table(cohort, "c"), TARGET, fast_config, False)[0]
    folds = inner_splits(data.y, data.patients, fast_config.cv.inner_folds, 7)
    return data, folds, search(data, fast_config, 7, folds)


def test_calibration_from_the_search_is_scikit_learns(searched, fast_config):
    """Given the members scikit-learn fits, the calibrated ensemble built from them is CalibratedClassifierCV's."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.utils._response import _get_response_values

    data, folds, found = searched
    for family in ("arm_only", "clinical_logistic", "elastic_net", "lightgbm"):
        plain = fit_calibrated(family, found[family].params, data, fast_config, 7, folds)
        assert isinstance(plain, CalibratedClassifierCV)
        members = tuple(c.estimator for c in plain.calibrated_classifiers_)
        raw = tuple(_get_response_values(m, data.X.iloc[te], ["decision_function", "predict_proba"])[0]
                    for m, (_, te) in zip(members, folds, strict=True))
        ours = calibrated_ensemble(plain.estimator, Searched(found[family].params, 0.0, members, raw), data, folds,
                                   fast_config.calibration.method)
        assert np.abs(ours.predict_proba(data.X) - plain.predict_proba(data.X)).max() < 1e-12, family


def test_calibrated_members_from_the_path_stay_within_solver_tolerance(searched, fast_config):
    """At the shipped budget (4 candidates on a warm-started path) the search's own members give probabilities
    within 0.015 of cold refits (measured up to 0.0074); members that were not warm-started are the same fits."""
    data, folds, _ = searched
    config = dataclasses.replace(fast_config, search=dataclasses.replace(fast_config.search, budget=4))
    found = search(data, config, 7, folds)
    for family in config.families:
        ours = fit_searched(family, found[family], data, config, 7, folds).predict_proba(data.X)[:, 1]
        plain = fit_calibrated(family, found[family].params, data, config, 7, folds).predict_proba(data.X)[:, 1]
        tolerance = 0.015 if "model__C" in found[family].params else 1e-12
        assert np.abs(ours - plain).max() < tolerance, family


@pytest.mark.parametrize("family", ["clinical_logistic", "elastic_net"])
def test_the_warm_started_path_picks_the_candidate_cold_fits_pick(searched, family):
    """Every setting of the family fitted from cold, and converged far past the family's tolerance, on every inner
    fold: the path scores each as close to its converged score as a cold start does, and picks the same best."""
    data, folds, _ = searched
    pipeline = get_family(family).pipeline(tuple(data.X.columns), data.domains, {}, 7)
    candidates = get_family(family).candidates(15, 7)  # every setting the family has, a wider search than the config's
    assert len(candidates) == len(get_family(family).space["model__C"]) * (3 if family == "elastic_net" else 1)

    def cold(**solver):
        return np.array([np.mean([-log_loss(data.y[te], predict(clone(pipeline).set_params(**c, **solver).fit(
            data.X.iloc[tr], data.y[tr]), data.X.iloc[te])) for tr, te in folds]) for c in candidates])

    plain, converged = cold(), cold(model__tol=1e-6, model__max_iter=50_000)
    path, _ = candidate_fits(family, data, folds, candidates, "log_loss", 7)
    # saga stops at tol 1e-3 short of the optimum for weak penalties, from either start (up to 0.02 in log-loss)
    assert np.abs(path - converged).max() <= 1.5 * np.abs(plain - converged).max() + 1e-3
    assert int(np.argmax(path)) == int(np.argmax(plain)) == int(np.argmax(converged))


def test_one_outer_repeat_from_the_threshold_counted_where_the_statistic_is_judged(searched, fast_config):
    """The repeat count reads the smaller outcome class within the drug arms (where auroc_active is judged), is the
    same for every label permutation, and the notes say when one repeat ran."""
    from ketamine_response.pipelines.evaluation.repeats import active
    from ketamine_response.pipelines.training.cv import permute_labels
    from ketamine_response.pipelines.training.nested import repeats, repeats_note

    data, _, _ = searched
    drug = data.y[active(data)]
    smaller = int(min(drug.sum(), len(drug) - drug.sum()))
    assert smaller < min(data.y.sum(), len(data.y) - data.y.sum())  # the drug arm's count, not the cohort's

    def config(threshold):
        return dataclasses.replace(fast_config, cv=dataclasses.replace(fast_config.cv, outer_repeats=2,
                                                                        single_repeat_from=threshold))

    assert repeats(data, config(smaller)) == 1 and "one outer repeat" in repeats_note(data, config(smaller))
    assert repeats(data, config(smaller + 1)) == 2 and repeats_note(data, config(smaller + 1)) is None
    for seed in range(3):
        permuted = dataclasses.replace(data, y=permute_labels(data.y, data.patients, data.sites, data.treatments,
                                                              np.random.default_rng(seed)))
        assert repeats(permuted, config(smaller)) == 1 and repeats(permuted, config(smaller + 1)) == 2
