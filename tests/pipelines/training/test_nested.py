"""The cheaper inner loop selects and calibrates what the plain one does (issue 26)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from ketamine_response.features.cohort.validation import validate_table
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.models.families import get_family, predict
from ketamine_response.pipelines.evaluation.metrics import log_loss
from ketamine_response.pipelines.flows.train import build_training_data
from ketamine_response.pipelines.training.cv import inner_splits
from ketamine_response.pipelines.training.nested import candidate_fits, fit_calibrated, fit_searched, search
from tests.pipelines.conftest import TARGET


@pytest.fixture(scope="module")
def searched(fast_config):
    cohort, _ = build_cohort(900, 3, "strong")
    data = build_training_data(validate_table(cohort, "c"), TARGET, fast_config, False)[0]
    folds = inner_splits(data.y, data.patients, fast_config.cv.inner_folds, 7)
    return data, folds, search(data, fast_config, 7, folds)


def test_calibration_from_the_search_is_scikit_learns(searched, fast_config):
    """Re-using the search's inner-fold fits as calibration members gives CalibratedClassifierCV's probabilities."""
    data, folds, found = searched
    for family in fast_config.families:
        ours = fit_searched(family, found[family], data, fast_config, 7, folds).predict_proba(data.X)[:, 1]
        plain = fit_calibrated(family, found[family].params, data, fast_config, 7, folds).predict_proba(data.X)[:, 1]
        # a warm-started path member converges to the same optimum within the solver's tolerance (1e-3)
        assert np.abs(ours - plain).max() < (2e-3 if "model__C" in found[family].params else 1e-12), family


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
