"""The logged model: takes a raw cohort table, returns calibrated response probabilities.

Feature building is part of the model, so a registered model scores cohort files directly.
This module and :mod:`ketamine_response.pipelines.tracking` are the only ones that import MLflow.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from ketamine_response.features.cohort.schema import ARM_COLUMNS
from ketamine_response.features.tasks import HORIZONS, Task, TaskKind, task_of
from ketamine_response.models.families import get_family, predict

if TYPE_CHECKING:
    from ketamine_response.models.explain import Explanation
    from ketamine_response.models.intervals import Intervals


class ScoringModel(Protocol):
    """What the score and explain flows need of a logged model (a :class:`CohortModel` is one)."""

    target: str
    threshold: float

    @property
    def task(self) -> Task: ...

    @property
    def score_columns(self) -> tuple[str, ...]: ...

    def predictions(self, cohort: pd.DataFrame) -> dict[str, Any]: ...

    def feature_table(self, cohort: pd.DataFrame) -> pd.DataFrame: ...

    def predict_table(self, cohort: pd.DataFrame) -> np.ndarray: ...

    def explain_table(self, cohort: pd.DataFrame) -> Explanation: ...

    def use_threads(self, n: int) -> None: ...

    def features_once(self, cohort: pd.DataFrame) -> AbstractContextManager[None]: ...

    def arm_columns(self) -> list[str]: ...

    def arm_table(self, cohort: pd.DataFrame) -> pd.DataFrame: ...

    def unseen(self, cohort: pd.DataFrame) -> pd.Series: ...


class CohortModel(PythonModel):
    """A fitted, calibrated pipeline plus what it needs to rebuild its features.

    Parameters
    ----------
    estimator : fitted classifier with ``predict_proba``, or regressor (continuous target)
    family : str
        Its registered model family (how it is explained and threaded).
    features : tuple of str
        Feature columns in training order.
    derivations : tuple of str
        Registry derivations that produce them.
    training_columns : tuple of str
        Column names of the training cohort (names only: early-course derivations depend on them).
    target : str
    threshold : float
        Probability at or above which a course is called a responder.
    extra_features : tuple of str
        Extra numeric features declared by the mapping file.
    centres : list
        Mean transformed training row per ensemble member (linear SHAP background; aggregates only).
    benefit : dict
        Active arm -> fitted :class:`models.benefit.CalibratedBenefit` (empty without a placebo arm).
    arms, sites : tuple of str
        The treatments and sites seen in training (a course of another is flagged when scored).

    Set after construction by training (class defaults, so models logged before them read as none):
    ``caveats``, the model-level caveats ``score`` repeats on every row; ``operating_point``, the explicit
    threshold of the training config (None: the prevalence default, and no class label unless asked for).
    """

    caveats: tuple[str, ...] = ()
    operating_point: float | None = None
    # the bootstrap replicates and percentile grids of the per-patient intervals (models/intervals.py); set by
    # training, None in models logged before them (their interval columns are blank)
    intervals: Intervals | None = None
    # (cohort, its feature table) inside a features_once block, else None; never pickled (set and cleared there)
    _features: tuple[pd.DataFrame, pd.DataFrame] | None = None

    def __init__(self, estimator: Any, family: str, features: tuple[str, ...], derivations: tuple[str, ...],
                 training_columns: tuple[str, ...], target: str, threshold: float,
                 extra_features: tuple[str, ...], centres: list[np.ndarray | None],
                 benefit: dict[str, Any] | None = None, arms: tuple[str, ...] = (), sites: tuple[str, ...] = ()):
        self.estimator = estimator
        self.family = family
        self.features = features
        self.derivations = derivations
        self.training_columns = training_columns
        self.target = target
        self.threshold = threshold
        self.extra_features = extra_features
        self.centres = centres
        self.benefit = benefit or {}
        self.arms = arms
        self.sites = sites

    def explain_table(self, cohort: pd.DataFrame) -> Explanation:
        """SHAP values (log-odds) of validated courses, in the feature dictionary's space."""
        from ketamine_response.models.explain import explain

        return explain(self.estimator, self.family, self.centres, self.feature_table(cohort))

    @contextmanager
    def features_once(self, cohort: pd.DataFrame) -> Iterator[None]:
        """Inside the block, the features of *cohort* (this very table, which must not change meanwhile) are built
        once and shared by every prediction of it: score asks one chunk for its prediction, interval and per-arm
        columns, and building the features is a large part of scoring a row. Nested blocks of one table share it."""
        built = getattr(self, "_features", None)
        if built is not None and built[0] is cohort:
            yield
            return
        self._features = (cohort, self.feature_table(cohort))
        try:
            yield
        finally:
            del self._features  # back to the class's None: the instance's stored state is as it was

    def feature_table(self, cohort: pd.DataFrame) -> pd.DataFrame:
        """The model's features for a validated cohort table; absent inputs give NaN (imputed in the pipeline)."""
        from ketamine_response.features.build import registry_for

        built = getattr(self, "_features", None)
        if built is not None and built[0] is cohort:
            return built[1]
        wanted = set(self.derivations)
        parts = []
        for feature in registry_for(list(self.training_columns), self.extra_features):
            if feature.name not in wanted:
                continue
            if feature.available(set(cohort.columns)):
                parts.append(feature.func(cohort))
            else:
                parts.append(pd.DataFrame(np.nan, index=cohort.index, columns=list(feature.outputs)))
        return pd.concat(parts, axis=1)[list(self.features)]

    @property
    def task(self) -> Task:
        """The target's task: what the prediction is, and which columns ``score`` writes."""
        return task_of(self.target)

    @property
    def score_columns(self) -> tuple[str, ...]:
        """The prediction columns ``score`` writes for this model's target: the prediction, its interval
        columns (:meth:`interval_columns`), then the rest (the call at the threshold)."""
        first, *rest = self.task.columns_for(self.target)
        return (first, *self.interval_columns(), *rest)

    def interval_columns(self) -> list[str]:
        """``<prediction>_low`` and ``_high`` (and for a probability ``_percentile``); none for a time to relapse."""
        if self.task.kind is TaskKind.SURVIVAL:
            return []
        first = self.task.columns_for(self.target)[0]
        return [f"{first}_low", f"{first}_high"] + [f"{first}_percentile"] * self.task.probabilities

    def interval_table(self, cohort: pd.DataFrame, p: np.ndarray | None = None) -> pd.DataFrame:
        """The :meth:`interval_columns` of validated courses (*p*: their prediction, if already made); blank
        where the prediction is, and for a model logged without intervals."""
        columns = self.interval_columns()
        ivs = getattr(self, "intervals", None)
        p = self.predict_table(cohort) if p is None else p
        if ivs is None or not columns:
            return pd.DataFrame(np.nan, index=cohort.index, columns=columns)
        low, high = ivs.bounds(self.feature_table(cohort), p, self.task.probabilities)
        out = {columns[0]: np.where(np.isnan(p), np.nan, low), columns[1]: np.where(np.isnan(p), np.nan, high)}
        if self.task.probabilities:
            out[columns[2]] = ivs.percentiles(p, cohort["treatment"].astype(str).to_numpy())
        return pd.DataFrame(out, index=cohort.index)

    def predictions(self, cohort: pd.DataFrame) -> dict[str, Any]:
        """The :attr:`score_columns` of validated courses: the prediction, its interval (and percentile), and the
        call at the threshold, or a
        durability model's relapse-free probabilities at 28 and 56 days and its median days to relapse (NaN
        when the curve stays above one half through the follow-up it was fitted on). Blank for a course of
        an arm the model never saw in training."""
        with self.features_once(cohort):  # the prediction and its interval read the same features
            return self._predictions(cohort)

    def _predictions(self, cohort: pd.DataFrame) -> dict[str, Any]:
        from ketamine_response.models.survival import median_days, relapse_free

        unseen = self.not_seen(cohort, "treatment").to_numpy()
        if self.task.kind is TaskKind.SURVIVAL:
            X = self.feature_table(cohort)
            free = relapse_free(self.estimator, X, HORIZONS)
            values: tuple[Any, ...] = (free[:, 0], free[:, 1], median_days(self.estimator, X))
            return {c: np.where(unseen, np.nan, v) for c, v in zip(self.score_columns, values, strict=True)}
        p = self.predict_table(cohort)
        first, *rest = self.task.columns_for(self.target)
        bounds = {str(c): v.to_numpy() for c, v in self.interval_table(cohort, p).items()}
        if not self.task.probabilities:
            return {first: p} | bounds
        called = pd.array(np.where(np.isnan(p), pd.NA, p >= self.threshold), dtype="Int64")  # type: ignore[call-overload,var-annotated]
        return {first: p} | bounds | dict(zip(rest, (called,), strict=True))

    def use_threads(self, n: int) -> None:
        """Predict with *n* threads where the family can (training fixes 1 for parallel CV folds)."""
        from ketamine_response.models.explain import members

        param = get_family(self.family).threads_param
        replicates = getattr(getattr(self, "intervals", None), "estimators", [])
        if param is not None:
            for member in (m for e in (self.estimator, *replicates) for m in members(e)):
                member.set_params(**{param: n})

    def arm_table(self, cohort: pd.DataFrame) -> pd.DataFrame:
        """``probability_<arm>`` for every arm seen in training (the response model with that arm set) and
        ``predicted_benefit_<drug>`` for every drug with a benefit model, each followed by its interval's
        ``_low`` and ``_high`` (blank for a model logged without intervals); empty without a placebo arm."""
        from ketamine_response.models.benefit import with_arm

        if not self.arm_columns():
            return pd.DataFrame(index=cohort.index)
        X = self.feature_table(cohort)
        if not self.task.benefit:  # a harm's probability, or the 28-day relapse-free probability, on each arm
            return pd.DataFrame({f"{self.score_columns[0]}_{arm}": self._first(with_arm(X, None if arm == "placebo" else arm))
                                 for arm in self.arms}, index=cohort.index)
        ivs, blank = getattr(self, "intervals", None), np.full(len(X), np.nan)
        out = {}
        for arm in self.arms:
            on_arm = with_arm(X, None if arm == "placebo" else arm)
            p = out[f"probability_{arm}"] = predict(self.estimator, on_arm)
            out[f"probability_{arm}_low"], out[f"probability_{arm}_high"] = (
                ivs.bounds(on_arm, p, True) if ivs is not None else (blank, blank))
        for arm, model in self.benefit.items():
            effect = out[f"predicted_benefit_{arm}"] = model.effect(X)
            out[f"predicted_benefit_{arm}_low"], out[f"predicted_benefit_{arm}_high"] = (
                ivs.benefit_bounds(model, X, effect) if ivs is not None else (blank, blank))
        return pd.DataFrame(out, index=cohort.index)[self.arm_columns()]

    def arm_columns(self) -> list[str]:
        """The per-arm columns :meth:`arm_table` writes: for a response, every arm's probability and each drug's
        benefit (none without a placebo arm); for a harm or a time to relapse trained on more than one arm, its
        first prediction on every arm; none for a percentage change."""
        if self.task.kind in (TaskKind.HARM, TaskKind.SURVIVAL):
            with_arms = len(self.arms) > 1 and any(c in self.features for c in ARM_COLUMNS)
            return [f"{self.score_columns[0]}_{arm}" for arm in self.arms] if with_arms else []
        benefit = getattr(self, "benefit", {})  # models logged before benefit existed have none
        if not benefit or not self.task.probabilities:
            return []
        return ([f"probability_{arm}{end}" for arm in self.arms for end in ("", "_low", "_high")]
                + [f"predicted_benefit_{arm}{end}" for arm in benefit for end in ("", "_low", "_high")])

    def _first(self, X: pd.DataFrame) -> np.ndarray:
        """The first score column from features: a probability, or the 28-day relapse-free probability."""
        from ketamine_response.models.survival import relapse_free

        if self.task.kind is TaskKind.SURVIVAL:
            return relapse_free(self.estimator, X, HORIZONS[:1])[:, 0]
        return predict(self.estimator, X)

    def not_seen(self, cohort: pd.DataFrame, column: str) -> pd.Series:
        """Per course, whether its *column* (``treatment`` or ``site``) holds a value training never saw."""
        seen = getattr(self, {"treatment": "arms", "site": "sites"}[column], ())  # older models lack them
        if not seen or column not in cohort:
            return pd.Series(False, index=cohort.index)
        values = cohort[column].astype("string")
        return (values.notna() & ~values.isin(list(seen))).astype(bool)

    def unseen(self, cohort: pd.DataFrame) -> pd.Series:
        """Per course, what the model never saw in training (an arm or a site), or ""."""
        columns = ("treatment", "site")
        # the four possible notes, picked per course by its two flags: a string operation per course costs more
        notes = np.array(["; ".join(f"{c} not seen in training" for i, c in enumerate(columns) if k >> i & 1)
                          for k in range(2 ** len(columns))], dtype=object)
        code = sum(self.not_seen(cohort, c).to_numpy().astype(int) << i for i, c in enumerate(columns))
        return pd.Series(notes[code], index=cohort.index, dtype=object)

    def predict_table(self, cohort: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities for an already validated cohort table; NaN for a course of an arm the
        model never saw in training (it has no estimate of that arm's effect)."""
        p = predict(self.estimator, self.feature_table(cohort))
        return np.where(self.not_seen(cohort, "treatment").to_numpy(), np.nan, p)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        """Validate a raw cohort table and return one calibrated probability per row.

        Raises
        ------
        ValueError
            If any row has problems (validate or score the file to see and quarantine them).
        """
        from ketamine_response.features.cohort.validation import format_problem, validate_table

        cohort = validate_table(pd.DataFrame(model_input), "model input")
        if len(cohort.problems):
            first = format_problem(cohort.problems.iloc[0])
            raise ValueError(f"model input has {len(cohort.problems)} problems, first: {first}")
        return self.predict_table(cohort.table)
