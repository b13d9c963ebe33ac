"""Biomarker roles: prognostic (predicts the outcome on placebo too) vs predictive (changes the drug's effect).

One regression per candidate feature, on the courses of every placebo-controlled comparison:

    outcome ~ arm + site + z + z x drug + others_prognostic + others_modifier x drug

* *z*: the feature standardised over the courses that have it (complete cases, which assumes the
  feature is missing at random given the rest; the row count is in the table);
* the two ``others`` covariates: a cross-fitted summary of every other feature (see
  :func:`~ketamine_response.pipelines.training.roles.others_fold`: a fitted model, so training computes
  it and this module receives it; without them a prognostic feature looked predictive once other
  modifiers existed, and true modifiers were attenuated);
* a logistic link (identity for a continuous outcome) and standard errors clustered on the patient
  (crossover patients contribute two courses); "drug" pools the active arms of the comparisons.

``prognostic_estimate`` is the coefficient of *z*: log-odds per SD **on placebo** (drug coded 0/1),
adjusted for arm and site; ``interaction_estimate`` that of *z* x drug. Each set of p-values is
adjusted for the false discovery rate (Benjamini-Hochberg) over the features. ``predictive`` means
the interaction survives the adjustment; ``prognostic`` that the placebo-arm effect does; ``both``
and ``none`` follow. Fitted with statsmodels (GLM, cluster-robust).

Benefit on the probability scale also varies with baseline risk when no interaction exists
(risk-based heterogeneity; PATH statement, Kent et al. 2020): a ``prognostic`` feature still moves
the predicted benefit, and that is not effect modification.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ARM_COLUMNS
from ketamine_response.pipelines.evaluation.absolute_roles import ABSOLUTE_COLUMNS, estimable
from ketamine_response.pipelines.folds import Data

ROLE_COLUMNS = ("feature", "source_columns", "domain", "role_log_odds", "role_absolute", "n_courses", "prognostic_estimate",
                "prognostic_ci_low", "prognostic_ci_high", "prognostic_q", "interaction_estimate",
                "interaction_ci_low", "interaction_ci_high", "interaction_q", *ABSOLUTE_COLUMNS[1:],
                "benefit_mean_abs_shap", "benefit_rank")
ESTIMATES = [c for c in ROLE_COLUMNS if c.startswith(("prognostic_", "interaction_", "absolute_"))]


def _design(data: Data, rows: np.ndarray, feature: str,
            index: np.ndarray | None = None) -> tuple[pd.DataFrame, np.ndarray, np.ndarray] | None:
    values = data.X[feature].to_numpy(dtype="float64")[rows]
    missing = np.isnan(values)
    seen = values[~missing]
    if not estimable(values):
        return None
    sub = rows
    x = np.where(missing, np.median(seen), values)  # the final model's imputer: every course counts
    z = (x - x.mean()) / x.std()
    active = (data.treatments[sub] != "placebo").astype(float)
    design = pd.DataFrame({"const": 1.0, "z": z, "z_x_drug": z * active}, index=np.arange(len(sub)))
    if missing.any():
        design["missing"] = missing.astype(float)
    if index is not None:  # the other features' prognostic and modifier index (see training.roles.others_fold)
        design["others_prognostic"] = index[:, 0]
        design["others_modifier_x_drug"] = index[:, 1] * active
    for column in ARM_COLUMNS:
        if column in data.X and data.X[column].to_numpy(dtype="float64")[sub].std() > 0:
            design[column] = data.X[column].to_numpy(dtype="float64")[sub]
    sites = pd.get_dummies(pd.Series(data.sites[sub]), prefix="site", drop_first=True, dtype=float)
    clusters = np.unique(data.patients[sub], return_inverse=True)[1]
    return pd.concat([design, sites.set_index(design.index)], axis=1), data.y[sub], clusters


def _fit(design: pd.DataFrame, y: np.ndarray, clusters: np.ndarray, binary: bool) -> tuple[np.ndarray, np.ndarray]:
    """(estimate, CI low, CI high) rows and p-values of z and z x drug; NaN where the model cannot be fitted."""
    import statsmodels.api as sm

    family = sm.families.Binomial() if binary else sm.families.Gaussian()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # separation and convergence: judged below by finiteness
        try:
            fit = sm.GLM(y, design, family=family).fit(cov_type="cluster", cov_kwds={"groups": clusters})
        except (ValueError, np.linalg.LinAlgError):
            return np.full((2, 3), np.nan), np.full(2, np.nan)
    terms = ["z", "z_x_drug"]
    table = np.column_stack([fit.params[terms], fit.conf_int().loc[terms].to_numpy()])
    p = np.asarray(fit.pvalues[terms], dtype=float)
    if not np.all(np.isfinite(table)) or np.any(np.abs(table[:, 0]) > 20):  # separated: no usable estimate
        return np.full((2, 3), np.nan), np.full(2, np.nan)
    return table, p


def _fdr(p: np.ndarray) -> np.ndarray:
    from statsmodels.stats.multitest import fdrcorrection

    q = np.full(len(p), np.nan)
    ok = ~np.isnan(p)
    if ok.any():
        q[ok] = fdrcorrection(p[ok])[1]
    return q


def _role(prognostic_q: float, interaction_q: float, alpha: float) -> str:
    predictive, prognostic = interaction_q < alpha, prognostic_q < alpha  # NaN compares False
    return "both" if predictive and prognostic else "predictive" if predictive else "prognostic" if prognostic else "none"


def biomarker_roles(data: Data, rows: np.ndarray, dictionary: pd.DataFrame, binary: bool, alpha: float,
                    benefit_shap: dict[str, float], indexes: Mapping[str, np.ndarray],
                    absolute: pd.DataFrame | None = None, withheld: bool = False) -> pd.DataFrame:
    """The roles table (see the module docstring), one row per candidate feature (arm indicators excluded).

    *indexes*: each feature's cross-fitted others index (:func:`~ketamine_response.pipelines.training.roles.others_indexes`);
    *absolute*: the absolute-scale columns (:func:`~ketamine_response.pipelines.evaluation.absolute_roles.absolute_roles`);
    *withheld*: too few responders or non-responders in an arm: every estimate is withheld, the counts stand.
    """
    info = dictionary.set_index("feature")
    records, p_values = [], []
    for feature in [c for c in data.X.columns if c not in ARM_COLUMNS]:
        built = _design(data, rows, feature, indexes[feature])
        table, p = _fit(*built, binary) if built is not None else (np.full((2, 3), np.nan), np.full(2, np.nan))
        n = len(rows)  # missing values imputed: every course counts
        records.append({"feature": feature, "source_columns": str(info.loc[feature, "inputs"]).replace(";", " "),
                        "domain": info.loc[feature, "domain"], "n_courses": n,
                        "prognostic_estimate": table[0, 0], "prognostic_ci_low": table[0, 1],
                        "prognostic_ci_high": table[0, 2], "interaction_estimate": table[1, 0],
                        "interaction_ci_low": table[1, 1], "interaction_ci_high": table[1, 2],
                        "benefit_mean_abs_shap": benefit_shap.get(feature, np.nan)})
        p_values.append(p)
    out = pd.DataFrame(records)
    p_all = np.array(p_values).reshape(-1, 2)
    out["prognostic_q"], out["interaction_q"] = _fdr(p_all[:, 0]), _fdr(p_all[:, 1])
    out["role_log_odds"] = [_role(a, b, alpha) for a, b in zip(out["prognostic_q"], out["interaction_q"], strict=True)]
    out = out.merge(absolute, on="feature", how="left") if absolute is not None else out.assign(
        **dict.fromkeys(ABSOLUTE_COLUMNS[1:], np.nan), role_absolute="none")
    if withheld:
        out[ESTIMATES] = np.nan
        out["role_log_odds"] = out["role_absolute"] = "withheld"
    out["benefit_rank"] = out["benefit_mean_abs_shap"].rank(ascending=False, method="min").astype("Int64")
    return out[list(ROLE_COLUMNS)].sort_values(["benefit_rank", "feature"], na_position="last").reset_index(drop=True)
