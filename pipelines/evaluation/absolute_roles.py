"""Biomarker roles on the absolute (risk-difference) scale: does a feature change how much more likely
response is on the drug than on placebo?

Each course of a placebo-controlled comparison has a doubly robust (DR) score of its benefit
(:mod:`~ketamine_response.pipelines.training.heterogeneity`, cross-fitted by econml's DRTester); its
mean given the features is the benefit in probability points. One OLS regression per group of features:

    DR score ~ drug comparison + z_1 .. z_k + missing_1 .. missing_k + others_prognostic + others_modifier

* a *group* is a feature with every feature that shares a source column with it (bmi and obese, met
  carrier and met alleles): proxies of one measurement are tested together (a joint Wald test), so a
  proxy is never tested with its own source left out of the adjustment; within a group that survives,
  a feature is called only if its own test survives Bonferroni over the group (hierarchical testing);
* *z* is the feature standardised over the comparison's courses, missing values set to the median
  (the final model's imputer) with a missingness indicator, so every course counts (n is the cohort);
* ``others_*``: the same cross-fitted index of the other features as the log-odds roles use;
* "drug comparison": one intercept per active arm (ketamine and esketamine have their own average effect);
* standard errors clustered on the patient (a crossover patient has two courses); the groups' p-values
  are adjusted for the false discovery rate (Benjamini-Hochberg).

``absolute_interaction`` is the feature's own coefficient when tested alone in this model (probability
points of benefit per SD), with its cluster-robust CI; ``absolute_interaction_q`` is its group's q.
A constant risk difference gives every feature 0 here, however strongly it predicts placebo response.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ketamine_response.pipelines.folds import Data

ABSOLUTE_COLUMNS = ("role_absolute", "absolute_interaction", "absolute_interaction_ci_low", "absolute_interaction_ci_high",
                    "absolute_interaction_q")


MIN_MINORITY = 10  # a 0/1 feature needs this many courses in its rarer level to be estimable


def estimable(values: np.ndarray) -> bool:
    """Whether a feature varies enough to test: not constant, and a 0/1 feature with at least
    :data:`MIN_MINORITY` courses in its rarer level (a handful of courses would carry the whole estimate
    and a cluster-robust test of it is far too confident)."""
    seen = values[~np.isnan(values)]
    levels, counts = np.unique(seen, return_counts=True)
    return len(levels) > 1 and not (len(levels) == 2 and counts.min() < MIN_MINORITY)


def _columns(data: Data, rows: np.ndarray, features: list[str]) -> pd.DataFrame:
    out = {}
    for f in features:
        values = data.X[f].to_numpy(dtype="float64")[rows]
        missing = np.isnan(values)
        filled = np.where(missing, np.nanmedian(values) if (~missing).any() else 0.0, values)
        if estimable(values):
            out[f"z_{f}"] = (filled - filled.mean()) / filled.std()
        if missing.any() and not missing.all():
            out[f"missing_{f}"] = missing.astype(float)
    return pd.DataFrame(out)


def _others(index: np.ndarray) -> pd.DataFrame:
    """The other features' indices as covariates, with the absolute benefit they imply: expit(placebo +
    modifier) - expit(placebo). On the probability scale benefit also moves with baseline risk, so a
    feature correlated with the others' risk or modifiers would otherwise inherit their absolute effect."""
    from scipy.special import expit

    placebo, modifier = index[:, 0], index[:, 1]
    return pd.DataFrame({"others_prognostic": placebo, "others_modifier": modifier,
                         "others_benefit": expit(placebo + modifier) - expit(placebo)})


def _ols(scores: np.ndarray, design: pd.DataFrame, clusters: np.ndarray, tested: list[str]) -> tuple[np.ndarray, float]:
    """(estimate, CI low, CI high) of the first tested term, and the joint Wald p of all tested terms."""
    import statsmodels.api as sm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fit = sm.OLS(scores, design).fit(cov_type="cluster", cov_kwds={"groups": clusters})
            first = tested[0]
            estimate = np.array([fit.params[first], *fit.conf_int().loc[first].to_numpy()])
            p = float(np.asarray(fit.wald_test(" = 0, ".join(tested) + " = 0", scalar=True).pvalue))
        except (ValueError, np.linalg.LinAlgError):  # a singular design from a user's cohort: no estimate, not a crash
            return np.full(3, np.nan), float("nan")
    return estimate, p


def absolute_roles(data: Data, rows: np.ndarray, scores: np.ndarray, comparison: np.ndarray, groups: Mapping[str, list[str]],
                   indexes: Mapping[str, np.ndarray], alpha: float) -> pd.DataFrame:
    """One row per feature of *groups* (feature -> its group, itself first) with :data:`ABSOLUTE_COLUMNS`.

    *rows*: the courses of the comparisons; *scores*: their DR scores; *comparison*: their active arm.
    """
    base = pd.get_dummies(pd.Series(comparison), dtype=float).reset_index(drop=True)  # an intercept per drug
    clusters = np.unique(data.patients[rows], return_inverse=True)[1]
    records, group_p = [], {}
    for feature, group in groups.items():
        own = _columns(data, rows, [feature])
        if f"z_{feature}" not in own:
            records.append({"feature": feature, "absolute_interaction": np.nan, "absolute_interaction_ci_low": np.nan,
                            "absolute_interaction_ci_high": np.nan, "group": tuple(sorted(group)), "own_p": np.nan})
            continue
        others = _others(indexes[feature])
        estimate, own_p = _ols(scores, pd.concat([base, own, others], axis=1), clusters, [f"z_{feature}"])
        key = tuple(sorted(group))
        if key not in group_p:
            joint = _columns(data, rows, list(key))
            joint = joint.loc[:, ~joint.T.duplicated().to_numpy()]  # proxies share missingness: one indicator
            tested = [str(c) for c in joint.columns if str(c).startswith("z_")]
            group_p[key] = _ols(scores, pd.concat([base, joint, others], axis=1), clusters, tested)[1] if tested else np.nan
        records.append({"feature": feature, "absolute_interaction": estimate[0], "absolute_interaction_ci_low": estimate[1],
                        "absolute_interaction_ci_high": estimate[2], "group": key, "own_p": own_p})
    return _with_q(pd.DataFrame(records), group_p, alpha)


def _with_q(table: pd.DataFrame, group_p: dict[tuple[str, ...], float], alpha: float) -> pd.DataFrame:
    from statsmodels.stats.multitest import fdrcorrection

    keys = [k for k, p in group_p.items() if not np.isnan(p)]
    q = dict(zip(keys, fdrcorrection([group_p[k] for k in keys])[1], strict=True)) if keys else {}
    table["absolute_interaction_q"] = [q.get(k, np.nan) for k in table["group"]]
    # hierarchical: a member of a group that survives is called only if its own test survives Bonferroni within
    # the group, so a feature sharing a source with a composite (lithium and the Maudsley score) is not called
    # for the composite's effect
    own = table["own_p"] * table["group"].map(len) < alpha
    table["role_absolute"] = np.where((table["absolute_interaction_q"] < alpha) & own, "predictive", "none")
    return table.drop(columns=["group", "own_p"])
