"""Global SHAP importance with its uncertainty across outer folds, and aggregation to sources and domains.

Importance comes from out-of-fold SHAP values (each fold's model explained on its held-out courses),
so it describes what generalises, not the training fit.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ARM_COLUMNS
from ketamine_response.features.derivations.inflammatory import COMPOSITE, COMPOSITE_MARKERS

IMPORTANCE_COLUMNS = ["feature", "source_columns", "domain", "mean_abs_shap", "repeat_low", "repeat_high", "rank",
                      "topk_frequency", "sign_consistency", "direction", "consistent", "mean_abs_shap_main",
                      "mean_abs_shap_modifier"]


def feature_metadata(dictionary: pd.DataFrame) -> pd.DataFrame:
    """Feature → source columns and domain, plus the fitted inflammation composite."""
    meta = dictionary.set_index("feature")[["inputs", "domain"]].rename(columns={"inputs": "source_columns"})
    markers = meta.loc[meta.index.intersection(list(COMPOSITE_MARKERS)), "source_columns"]
    meta.loc[COMPOSITE] = [";".join(markers), "inflammatory"]
    return meta


def _fold_direction(values: pd.DataFrame, X: pd.DataFrame) -> pd.Series:
    """Sign of the correlation between each feature's value and its SHAP value in one fold (0 if undefined)."""
    out = {}
    for feature in values.columns:
        if feature not in X.columns:
            out[feature] = 0.0
            continue
        x, v = X[feature].to_numpy(float), values[feature].to_numpy(float)
        ok = ~np.isnan(x)
        defined = ok.sum() > 2 and np.std(x[ok]) > 0 and np.std(v[ok]) > 0
        out[feature] = float(np.sign(np.corrcoef(x[ok], v[ok])[0, 1])) if defined else 0.0
    return pd.Series(out)


def global_importance(folds: list, X: pd.DataFrame, dictionary: pd.DataFrame, top_k: int = 5) -> pd.DataFrame:
    """One row per feature, sorted by mean |SHAP| (columns :data:`IMPORTANCE_COLUMNS`).

    ``repeat_low``/``repeat_high``: the lowest and highest mean over the folds of one outer-CV repeat.
    This is the spread from re-splitting, not a confidence interval: outer folds share most of their
    training courses, so treating them as independent draws (as a bootstrap over folds would) gives
    intervals far too narrow, and no interval that respects the overlap is cheap. ``rank``: rank of the
    mean; ``topk_frequency``: share of folds where the feature is in the top *top_k*;
    ``sign_consistency``: share of folds agreeing with the majority direction (value up → log-odds
    up or down); ``consistent``: top-k in at least 80% of folds with one direction in at least 80%.
    ``mean_abs_shap_main`` / ``mean_abs_shap_modifier``: the same mean for the feature's main
    (prognostic) part and for the part through its feature x active-arm term (effect modification);
    the two need not add up to ``mean_abs_shap`` (they can offset each other within a course).
    """
    shaps = [f.shap for f in folds if f.shap is not None]
    # the treatment indicator is the arm, not a feature of the patient: it is never listed as one that matters
    features = list(dict.fromkeys(c for s in shaps for c in s.columns if c not in ARM_COLUMNS))
    per_fold = pd.DataFrame([s.reindex(columns=features, fill_value=0.0).abs().mean() for s in shaps])
    ranks = per_fold.rank(axis=1, ascending=False, method="min").where(per_fold > 0, len(features))
    directions = pd.DataFrame([_fold_direction(s.reindex(columns=features, fill_value=0.0), X.loc[s.index])
                               for s in shaps])
    repeat = [getattr(getattr(f, "split", None), "repeat", 0) for f in folds if f.shap is not None]
    by_repeat = per_fold.groupby(np.asarray(repeat)).mean()
    positive, negative = (directions > 0).mean(), (directions < 0).mean()
    meta = feature_metadata(dictionary).reindex(features)
    table = pd.DataFrame({
        "feature": features, "source_columns": meta["source_columns"].fillna("").to_numpy(),
        "domain": meta["domain"].fillna("unknown").to_numpy(), "mean_abs_shap": per_fold.mean().to_numpy(),
        "repeat_low": by_repeat.min().to_numpy(), "repeat_high": by_repeat.max().to_numpy(),
        "topk_frequency": (ranks <= top_k).mean().to_numpy(),
        "sign_consistency": np.maximum(positive.to_numpy(), negative.to_numpy()),
        "direction": np.where(positive >= negative, "+", "-"),
    })
    modifiers = [getattr(f, "shap_modifier", None) for f in folds if f.shap is not None]
    modifier = [m.reindex(columns=features, fill_value=0.0) if m is not None else s.reindex(columns=features) * 0.0
                for s, m in zip(shaps, modifiers)]
    table["mean_abs_shap_modifier"] = pd.DataFrame([m.abs().mean() for m in modifier]).mean().to_numpy()
    table["mean_abs_shap_main"] = pd.DataFrame([(s.reindex(columns=features, fill_value=0.0) - m).abs().mean()
                                                for s, m in zip(shaps, modifier)]).mean().to_numpy()
    table["consistent"] = (table["topk_frequency"] >= 0.8) & (table["sign_consistency"] >= 0.8)
    table = table.sort_values("mean_abs_shap", ascending=False, kind="stable").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table[IMPORTANCE_COLUMNS]


def by_domain(values: pd.DataFrame, dictionary: pd.DataFrame) -> pd.DataFrame:
    """Mean |sum of a domain's SHAP values| per course, by domain (the treatment indicator left out: it is the arm)."""
    values = values.drop(columns=[c for c in ARM_COLUMNS if c in values], errors="ignore")
    domain = feature_metadata(dictionary)["domain"].reindex(values.columns).fillna("unknown")
    summed = values.T.groupby(domain.to_numpy()).sum().T
    out = summed.abs().mean().sort_values(ascending=False)
    return pd.DataFrame({"domain": out.index, "mean_abs_shap": out.to_numpy()})


def by_source_column(values: pd.DataFrame, dictionary: pd.DataFrame) -> pd.DataFrame:
    """Mean |SHAP| per source column: a feature's values are split equally among its inputs (the treatment
    indicator left out)."""
    values = values.drop(columns=[c for c in ARM_COLUMNS if c in values], errors="ignore")
    sources = feature_metadata(dictionary)["source_columns"].reindex(values.columns).fillna("")
    rows: dict[str, pd.Series] = {}
    for feature, joined in sources.items():
        inputs = [c for c in joined.split(";") if c] or [feature]
        for column in inputs:
            rows[column] = rows.get(column, 0.0) + values[feature] / len(inputs)
    table = pd.DataFrame(rows).abs().mean().sort_values(ascending=False)
    return pd.DataFrame({"source_column": table.index, "mean_abs_shap": table.to_numpy()})
