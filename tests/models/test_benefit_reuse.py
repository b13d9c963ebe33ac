"""What the benefit learners reuse within a process gives the numbers a fresh fit gives: scikit-learn's log-loss
scorer's value, the T-learner's tuned arm models in the X-learner, the S-learner's shared transform."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import get_scorer

from ketamine_response.models.benefit import get_learner
from ketamine_response.models.benefit_estimators import (
    SafeLogistic,
    TunedLogistic,
    fit_sharing_transform,
    forget_fits,
    neg_log_loss,
)
from ketamine_response.models.families import linear_pipeline


def test_the_log_loss_scorer_is_scikit_learns():
    rng = np.random.default_rng(0)
    for C in (1e-4, 1.0, 1e4):  # near-constant to near-separating fits: clipping included
        X = rng.normal(size=(200, 4))
        y = (rng.random(200) < 1 / (1 + np.exp(-3 * X[:, 0]))).astype(int)
        model = LogisticRegression(C=C).fit(X, y)
        assert neg_log_loss(model, X, y) == get_scorer("neg_log_loss")(model, X, y)


def test_a_tuned_fit_of_the_same_inputs_is_reused_and_equals_a_refit():
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(150, 3)), (rng.random(150) < 0.4).astype(int)
    forget_fits()
    first = TunedLogistic(random_state=2).fit(X, y)
    assert TunedLogistic(random_state=2).fit(X, y).model_ is first.model_  # same inputs: the same fit
    assert TunedLogistic(random_state=3).fit(X, y).model_ is not first.model_  # another seed: its own
    assert TunedLogistic(random_state=2).fit(X, 1 - y).model_ is not first.model_  # other labels: their own
    forget_fits()
    np.testing.assert_array_equal(TunedLogistic(random_state=2).fit(X, y).predict_proba(X), first.predict_proba(X))


def test_the_x_learner_reuses_the_t_learners_arm_models():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(160, 3)), columns=["a", "b", "c"]).assign(arm_ketamine_iv=0.0)
    treated = (np.arange(160) % 2).astype(float)
    X["arm_ketamine_iv"] = treated
    y = (rng.random(160) < 0.3 + 0.3 * treated * (X["a"] > 0)).astype(int)
    e = np.full(160, 0.5)
    forget_fits()
    t = get_learner("t_learner").fit(X, y, treated, "ketamine_iv", 1, e)
    x = get_learner("x_learner").fit(X, y, treated, "ketamine_iv", 1, e)
    for arm in (0, 1):
        assert x.estimator.models[arm].classifier_.model_ is t.estimator.models[arm].classifier_.model_


def test_a_shared_transform_gives_the_pipelines_own_fit():
    rng = np.random.default_rng(4)
    X = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    X.loc[::7, "b"] = np.nan
    X["arm_ketamine_iv"] = (np.arange(120) % 2).astype(float)
    y = (rng.random(120) < 0.4).astype(int)
    columns = tuple(X.columns)
    forget_fits()
    for C in (0.03, 0.3):  # the second reuses the first's transform
        shared = fit_sharing_transform(linear_pipeline(columns, SafeLogistic(C=C, l1_ratio=0.5, random_state=0)), X, y)
        own = linear_pipeline(columns, SafeLogistic(C=C, l1_ratio=0.5, random_state=0)).fit(X, y)
        np.testing.assert_array_equal(shared.predict_proba(X), own.predict_proba(X))
