"""The logged model: takes a raw cohort table, returns calibrated response probabilities.

Feature building is part of the model, so a registered model scores cohort files directly.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd


class CohortModel(mlflow.pyfunc.PythonModel):
    """A fitted, calibrated pipeline plus what it needs to rebuild its features.

    Parameters
    ----------
    estimator : fitted classifier with ``predict_proba``
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
    """

    def __init__(self, estimator: Any, features: tuple[str, ...], derivations: tuple[str, ...],
                 training_columns: tuple[str, ...], target: str, threshold: float,
                 extra_features: tuple[str, ...] = (), centres: list | None = None):
        self.estimator = estimator
        self.features = features
        self.derivations = derivations
        self.training_columns = training_columns
        self.target = target
        self.threshold = threshold
        self.extra_features = extra_features
        self.centres = centres

    def explain_table(self, cohort: pd.DataFrame):
        """SHAP values (log-odds) of validated courses, in the feature dictionary's space."""
        from models.explain import explain

        return explain(self.estimator, self.centres, self.feature_table(cohort))

    def feature_table(self, cohort: pd.DataFrame) -> pd.DataFrame:
        """The model's features for a validated cohort table; absent inputs give NaN (imputed in the pipeline)."""
        from features.build import registry_for

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

    def use_threads(self, n: int) -> None:
        """Let LightGBM members predict with *n* threads (training fixes 1 for parallel CV folds)."""
        members = getattr(self.estimator, "calibrated_classifiers_", None)
        for member in ([c.estimator for c in members] if members else [self.estimator]):
            if type(member[-1]).__name__ == "LGBMClassifier":
                member[-1].set_params(n_jobs=n)

    def predict_table(self, cohort: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities for an already validated cohort table."""
        return self.estimator.predict_proba(self.feature_table(cohort))[:, 1]

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> np.ndarray:
        """Validate a raw cohort table and return one calibrated probability per row.

        Raises
        ------
        ValueError
            If any row has problems (validate or score the file to see and quarantine them).
        """
        from features.validation import format_problem, validate_table

        cohort = validate_table(pd.DataFrame(model_input), "model input")
        if len(cohort.problems):
            first = format_problem(cohort.problems.iloc[0])
            raise ValueError(f"model input has {len(cohort.problems)} problems, first: {first}")
        return self.predict_table(cohort.table)
