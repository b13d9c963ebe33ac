"""Tier 2: everything learnt from data, as scikit-learn transformers refit in every CV fold.

Each follows scikit-learn's contract: ``__init__`` stores parameters only, ``fit``
validates and sets attributes ending in ``_``, ``get_feature_names_out`` and
``set_output(transform="pandas")`` work. Missing values pass through as NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import _check_feature_names_in, check_is_fitted, validate_data

from ketamine_response.features.cohort.schema import ARM_COLUMNS


class _NanTransformer(TransformerMixin, BaseEstimator):
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    def _check(self, X, reset: bool) -> np.ndarray:
        return validate_data(self, X, reset=reset, ensure_all_finite="allow-nan", dtype="float64")


def _nan_stat(X: np.ndarray, func, fallback: float, *args) -> np.ndarray:
    # An all-missing column gets the fallback instead of numpy's empty-slice warning.
    out = np.full(X.shape[1], fallback)
    seen = ~np.isnan(X).all(axis=0)
    if seen.any():
        out[seen] = func(X[:, seen], *args, axis=0)
    return out


class Winsorizer(_NanTransformer):
    """Clip each column to quantile cut-offs learnt on the training fold (two-valued columns untouched).

    Parameters
    ----------
    lower, upper : float
        Quantiles (0-1) of the training data used as the clipping bounds.
    """

    def __init__(self, lower: float = 0.01, upper: float = 0.99):
        self.lower = lower
        self.upper = upper

    def fit(self, X, y=None):
        if not 0 <= self.lower < self.upper <= 1:
            raise ValueError(f"need 0 <= lower < upper <= 1, got lower={self.lower}, upper={self.upper}")
        X = self._check(X, reset=True)
        self.low_ = _nan_stat(X, np.nanquantile, -np.inf, self.lower)
        self.high_ = _nan_stat(X, np.nanquantile, np.inf, self.upper)
        # clipping a 0/1 column at its quantiles could erase a rare category: leave such columns alone
        binary = np.array([np.unique(c[~np.isnan(c)]).size <= 2 for c in X.T], dtype=bool)
        self.low_[binary], self.high_[binary] = -np.inf, np.inf
        return self

    def transform(self, X):
        check_is_fitted(self)
        return np.clip(self._check(X, reset=False), self.low_, self.high_)

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return _check_feature_names_in(self, input_features)


class ZScoreComposite(_NanTransformer):
    """Append the mean of training-fold z-scores of selected columns as one composite column.

    Rows with none of the columns observed get NaN; with some, the mean of those observed.

    Parameters
    ----------
    columns : list of str or int, optional
        Columns to combine (names need DataFrame input); None means all.
    name : str
        Name of the appended column.
    """

    def __init__(self, columns=None, name: str = "composite"):
        self.columns = columns
        self.name = name

    def _indices(self) -> np.ndarray:
        if self.columns is None:
            return np.arange(self.n_features_in_)
        if all(isinstance(c, str) for c in self.columns):
            names = list(getattr(self, "feature_names_in_", []))
            missing = [c for c in self.columns if c not in names]
            if missing:
                raise ValueError(f"ZScoreComposite: columns {missing} are not in the input {names}")
            return np.array([names.index(c) for c in self.columns])
        return np.asarray(self.columns, dtype=int)

    def fit(self, X, y=None):
        X = self._check(X, reset=True)
        self.indices_ = self._indices()
        part = X[:, self.indices_]
        self.mean_ = _nan_stat(part, np.nanmean, 0.0)
        scale = _nan_stat(part, np.nanstd, 1.0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        return self

    def transform(self, X):
        check_is_fitted(self)
        X = self._check(X, reset=False)
        z = (X[:, self.indices_] - self.mean_) / self.scale_
        seen = (~np.isnan(z)).sum(axis=1)
        total = np.where(np.isnan(z), 0.0, z).sum(axis=1)
        composite = np.where(seen > 0, total / np.maximum(seen, 1), np.nan)
        return np.column_stack([X, composite])

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        names = _check_feature_names_in(self, input_features)
        return np.append(names, self.name).astype(object)


class SelectColumns(TransformerMixin, BaseEstimator):
    """Keep the named columns of a DataFrame (a model family's view of the feature table)."""

    def __init__(self, columns: tuple[str, ...] = ()):
        self.columns = columns

    def fit(self, X: pd.DataFrame, y=None):
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"SelectColumns: columns {missing} are not in the feature table")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        return X[list(self.columns)]

    def get_feature_names_out(self, input_features=None):
        return np.asarray(self.columns, dtype=object)


def _varies(column: np.ndarray, min_minority: int = 10) -> bool:
    """At least *min_minority* courses away from the column's most common value."""
    seen = column[~np.isnan(column)]
    if len(seen) == 0:
        return False
    _, counts = np.unique(seen, return_counts=True)
    return len(seen) - counts.max() >= min_minority


class ActiveArmInteractions(TransformerMixin, BaseEstimator):
    """Append each feature, centred on the training fold, multiplied by an active-drug indicator.

    Published predictors moderate the drug response rather than the placebo response, so a
    linear model needs feature x active-arm terms to represent them. Centring matters: with raw
    values, ``x:active`` is nearly ``mean(x) * active`` and soaks up the arm effect itself (age
    correlated 0.92-0.96 with the arm indicator), so a null feature looked like a modifier. With
    centred values, ``x:active`` carries effect modification only. The centres are the training
    fold's means (learnt from the features, never from the labels).

    Parameters
    ----------
    arm_columns : tuple of str
        0/1 indicator columns of the active arms (placebo is all zeros); place this step before
        any scaling so they are still 0/1.
    """

    def __init__(self, arm_columns: tuple[str, ...] = ARM_COLUMNS):
        self.arm_columns = arm_columns

    def fit(self, X: pd.DataFrame, y=None):
        if not isinstance(X, pd.DataFrame):
            raise ValueError("ActiveArmInteractions needs a DataFrame (use set_output(transform='pandas'))")
        return self.fit_arrays(list(X.columns), X.to_numpy(dtype="float64"))

    def fit_arrays(self, names: list[str], values: np.ndarray) -> ActiveArmInteractions:
        """:meth:`fit` on a float array whose columns are *names* (what :class:`LinearTier` passes)."""
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.arms_ = [c for c in self.arm_columns if c in names]
        # a column that barely varies (a flag set in a handful of courses) cannot carry an estimable
        # modifier: centred and scaled, its few rare values get huge weights. Leave it main-effect only.
        self.modified_ = [c for i, c in enumerate(names) if c not in self.arms_ and _varies(values[:, i])]
        self.centre_ = _nan_stat(values[:, self._positions(self.modified_)], np.nanmean, 0.0)
        return self

    def _positions(self, columns: list[str]) -> list[int]:
        names = list(self.feature_names_in_)
        return [names.index(c) for c in columns]

    def transform(self, X: pd.DataFrame):
        check_is_fitted(self)
        if list(X.columns) != list(self.feature_names_in_):  # by name, as fitted
            X = X[list(self.feature_names_in_)]
        return self.transform_array(X.to_numpy(dtype="float64"))

    def transform_array(self, values: np.ndarray) -> np.ndarray:
        """:meth:`transform` of a float array in the fitted columns' order."""
        if not self.arms_:
            return values
        active = np.any(values[:, self._positions(self.arms_)] > 0.5, axis=1).reshape(-1, 1)
        return np.column_stack([values, (values[:, self._positions(self.modified_)] - self.centre_) * active])

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return np.array(list(self.feature_names_in_) + [f"{c}:active" for c in self.modified_], dtype=object)


class LinearTier(TransformerMixin, BaseEstimator):
    """The linear families' fitted tier as one step: keep *columns*, winsorise (:class:`Winsorizer`), append the
    z-score composite of *markers* (:class:`ZScoreComposite`, two or more), median-impute with missingness
    indicators, append centred feature x active-arm terms (:class:`ActiveArmInteractions`), standardise.

    The numbers of those steps as a pipeline of their own, with numpy arrays between them. As pipeline steps
    with pandas output, each revalidated and rewrapped a DataFrame, which was most of a linear fit's time.

    Parameters
    ----------
    columns : tuple of str
        The feature columns the family uses.
    markers : tuple of str
        The composite's columns (none: no composite); *composite* names it.

    After fitting, ``sources_out_`` gives each output column's input column (a feature's missingness indicator and
    arm terms are that feature's; the composite is its own): what a model without some features drops.
    """

    def __init__(self, columns: tuple[str, ...] = (), markers: tuple[str, ...] = (), composite: str = "composite"):
        self.columns = columns
        self.markers = markers
        self.composite = composite

    def fit(self, X: pd.DataFrame, y=None):
        self._fit(self._select(X, reset=True))
        return self

    def fit_transform(self, X: pd.DataFrame, y=None, **_):
        return self._fit(self._select(X, reset=True))

    def transform(self, X: pd.DataFrame):
        check_is_fitted(self)
        return self._transform(self._select(X, reset=False))

    def _fit(self, values: np.ndarray) -> np.ndarray:
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import StandardScaler

        names = list(self.columns)
        if not set(self.markers) <= set(names):
            raise ValueError(f"LinearTier: composite markers {sorted(set(self.markers) - set(names))} are not in its columns")
        self.winsorize_ = Winsorizer().fit(values)
        values = self.winsorize_.transform(values)
        self.composite_ = None
        if self.markers:
            self.composite_ = ZScoreComposite([names.index(c) for c in self.markers], self.composite).fit(values)
            values, names = self.composite_.transform(values), [*names, self.composite]
        self.impute_ = SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True).fit(values)
        indicated = self.impute_.indicator_.features_ if self.impute_.indicator_ is not None else []
        sources = [*names, *(names[i] for i in indicated)]  # each column's input column (the composite: itself)
        values, names = self.impute_.transform(values), [*names, *(f"missingindicator_{names[i]}" for i in indicated)]
        self.interact_ = ActiveArmInteractions().fit_arrays(names, values)
        values = self.interact_.transform_array(values)
        self.scale_ = StandardScaler().fit(values)
        self.names_out_ = np.asarray(self.interact_.get_feature_names_out(), dtype=object)
        self.sources_out_ = np.asarray([*sources, *(sources[names.index(c)] for c in self.interact_.modified_)], dtype=object)
        return self.scale_.transform(values)

    def _transform(self, values: np.ndarray) -> np.ndarray:
        values = self.winsorize_.transform(values)
        if self.composite_ is not None:
            values = self.composite_.transform(values)
        return self.scale_.transform(self.interact_.transform_array(self.impute_.transform(values)))

    def _select(self, X: pd.DataFrame, reset: bool) -> np.ndarray:
        if not isinstance(X, pd.DataFrame):
            raise ValueError("LinearTier needs a DataFrame of named feature columns")
        if reset:
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
            self.n_features_in_ = X.shape[1]
        missing = [c for c in self.columns if c not in X.columns]
        if missing:
            raise ValueError(f"LinearTier: columns {missing} are not in the feature table")
        return X[list(self.columns)].to_numpy(dtype="float64")

    def get_feature_names_out(self, input_features=None):
        check_is_fitted(self)
        return self.names_out_
