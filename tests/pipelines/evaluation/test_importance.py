from types import SimpleNamespace

import numpy as np
import pandas as pd

from ketamine_response.pipelines.evaluation.importance import IMPORTANCE_COLUMNS, by_domain, by_source_column, global_importance

DICTIONARY = pd.DataFrame({
    "feature": ["bmi_kg_m2", "age", "log_crp", "log_il6"],
    "derivation": ["bmi_kg_m2", "age", "log_crp", "log_il6"],
    "domain": ["clinical", "clinical", "inflammatory", "inflammatory"],
    "inputs": ["bmi;weight_kg;height_cm", "age", "crp_mg_l", "il6_pg_ml"],
    "unit": "", "rationale": "",
})


def _folds(n_folds=5, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(200, 4)), columns=["bmi_kg_m2", "age", "log_crp", "log_il6"])
    folds = []
    for i in range(n_folds):
        rows = X.index[i::n_folds]
        shap = pd.DataFrame({"bmi_kg_m2": 0.8 * X.loc[rows, "bmi_kg_m2"], "age": 0.01 * rng.normal(size=len(rows)),
                             "log_crp": -0.3 * X.loc[rows, "log_crp"], "inflammation_composite": 0.1 * X.loc[rows, "log_il6"]},
                            index=rows)
        folds.append(SimpleNamespace(shap=shap, split=SimpleNamespace(repeat=i % 2)))
    return folds, X


def test_global_importance_ranks_directions_and_stability():
    folds, X = _folds()
    table = global_importance(folds, X, DICTIONARY, top_k=1)
    assert list(table.columns) == IMPORTANCE_COLUMNS
    assert list(table["feature"]) == ["bmi_kg_m2", "log_crp", "inflammation_composite", "age"]
    top = table.iloc[0]
    assert top["topk_frequency"] == 1.0 and top["sign_consistency"] == 1.0 and top["direction"] == "+"
    assert top["consistent"] and top["repeat_low"] <= top["mean_abs_shap"] <= top["repeat_high"]
    crp = table.set_index("feature").loc["log_crp"]
    assert crp["direction"] == "-" and crp["domain"] == "inflammatory" and crp["source_columns"] == "crp_mg_l"
    composite = table.set_index("feature").loc["inflammation_composite"]
    assert composite["source_columns"] == "crp_mg_l;il6_pg_ml" and composite["domain"] == "inflammatory"
    assert not table.set_index("feature").loc["age", "consistent"]
    assert list(table["rank"]) == [1, 2, 3, 4]


def test_domain_and_source_aggregation():
    values = pd.DataFrame({"bmi_kg_m2": [1.0, -1.0], "age": [0.5, 0.5], "log_crp": [0.2, 0.2]})
    domains = by_domain(values, DICTIONARY).set_index("domain")["mean_abs_shap"]
    assert domains["clinical"] == 1.0  # |1 + 0.5| and |-1 + 0.5| averaged
    sources = by_source_column(values, DICTIONARY).set_index("source_column")["mean_abs_shap"]
    assert sources["weight_kg"] == 1 / 3 and sources["crp_mg_l"] == 0.2
