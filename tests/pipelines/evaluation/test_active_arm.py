"""Within-active-arm metrics and the gain over an arm-only model, on hand-made out-of-fold predictions."""

import numpy as np
import pandas as pd

from ketamine_response.pipelines.evaluation.evaluate import add_active_arm_metrics, add_cv_uncertainty, add_gain_over_arm, evaluate
from ketamine_response.pipelines.folds import Data, FoldResult, Split


def _design(n=600, seed=0):
    rng = np.random.default_rng(seed)
    arm = rng.choice(["ketamine_iv", "esketamine_in", "placebo"], n)
    x = rng.normal(size=n)
    active = arm != "placebo"
    y = (rng.random(n) < np.where(active, 1 / (1 + np.exp(-(0.3 + 1.5 * x))), 0.2)).astype(float)
    data = Data(pd.DataFrame({"x": x}), y, np.arange(n).astype(str), np.zeros(n).astype(str), arm, {"x": "clinical"})
    folds = []
    for i in range(5):
        test = np.arange(i, n, 5)
        model = np.where(active[test], 1 / (1 + np.exp(-(0.3 + 1.5 * x[test]))), 0.2)  # knows x within the drug arms
        arm_only = np.where(active[test], 0.55, 0.2)
        folds.append(FoldResult(Split(0, i, np.setdiff1d(np.arange(n), test), test), "model", {}, {},
                                predictions={"model": model, "arm_only": arm_only}))
    return data, folds


def test_active_arm_metrics_use_only_drug_courses_and_split_two_arms():
    data, folds = _design()
    evaluations = {}
    for name in ("model", "arm_only", "selected"):
        family = None if name == "selected" else name
        p = np.zeros(len(data.y))
        for f in folds:
            p[f.split.test] = f.predictions[family or f.selected]
        ev = add_cv_uncertainty(evaluate(data.y, p, data.patients, {}, 0.4, 100, 0), data, folds, family)
        evaluations[name] = add_active_arm_metrics(ev, data, folds, family)
    evaluations = add_gain_over_arm(evaluations, data, folds)
    model, arm_only = evaluations["model"].metrics, evaluations["arm_only"].metrics
    assert model["auroc_active"] > 0.7 and arm_only["auroc_active"] == 0.5  # the arm alone ranks nobody within it
    assert {"auroc_ketamine_iv", "auroc_esketamine_in"} <= set(model)
    low, high = evaluations["model"].ci["auroc_gain_over_arm"]
    assert model["auroc_gain_over_arm"] > 0 and low > 0  # biomarkers add to the arm, with an interval to say so
    assert arm_only["auroc_gain_over_arm"] == 0
