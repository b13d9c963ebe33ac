"""Which covariates drive a benefit model's predicted benefit: shap's permutation explainer, with its numba
kernels compiled once per machine rather than once per process."""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ARM_COLUMNS
from ketamine_response.models.benefit import BenefitModel, CalibratedBenefit, covariates


@functools.cache
def cache_shap_kernels() -> None:
    """Let numba keep shap's masking kernels between processes: compiling them took about 5 of the 9 s of the
    first permutation explanation in every ``train``, and the output kernel 2.7 to 3.9 s more
    (measured alone).

    shap declares them ``@njit`` without ``cache=True``; ``enable_caching`` is what that flag does, with numba's
    own locators (beside shap's source, else the user's cache folder) and its checks of shap's file. The output
    kernel ``_build_fixed_single_output`` takes the link function as an argument: shap's own ``identity`` is a
    dispatcher that numba keys by its address in this process, so its cache would miss and grow by one entry a run;
    :func:`identity_link` is typed by its signature alone, so one entry serves every run. Where no cache folder can
    be written, numba compiles as before.
    """
    from shap.maskers import _tabular
    from shap.utils import _masked_model

    for kernel in (_tabular._single_delta_mask, _tabular._delta_masking, _masked_model._build_fixed_single_output):
        with contextlib.suppress(RuntimeError):  # numba: "no locator available" for a read-only install
            kernel.enable_caching()


def _identity(x: float) -> float:
    return x


@functools.cache
def identity_link() -> Any:
    """shap's identity link as a numba ``cfunc``: a first-class function whose numba type is its signature,
    ``float64(float64)``, the same in every process (see :func:`cache_shap_kernels`). shap applies the link to
    scalars only where ``linearize_link`` is off, as it is for :func:`permutation_explainer`."""
    import numba

    try:
        return numba.cfunc("float64(float64)", cache=True)(_identity)
    except RuntimeError:  # "no locator available" for a read-only install: compiled in this process instead
        return numba.cfunc("float64(float64)")(_identity)


def permutation_explainer(model: Any, background: np.ndarray, seed: int) -> Any:
    """shap's permutation explainer of *model* (probability scale, identity link) against *background* rows, its
    kernels cached (:func:`cache_shap_kernels`). The link is linear, so shap's linearisation would change nothing."""
    import shap

    cache_shap_kernels()
    return shap.PermutationExplainer(model, shap.maskers.Independent(background, max_samples=len(background)),
                                     link=identity_link(), linearize_link=False, seed=seed)


def benefit_shap(model: BenefitModel | CalibratedBenefit, X: pd.DataFrame, seed: int, rows: int = 60, background: int = 40) -> pd.Series:
    """Mean |SHAP value| of each covariate for the predicted benefit (probability scale).

    Benefit is a difference of two predictions, not one model's output, so no exact explainer
    applies: shap's permutation explainer (model-agnostic, additive by construction) on up to
    *rows* courses against *background* courses drawn from *X*.
    """
    rng = np.random.default_rng(seed)
    base = covariates(X)
    arms = [c for c in X.columns if c in ARM_COLUMNS]

    def effect(values: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(values, columns=base.columns).assign(**dict.fromkeys(arms, 0.0))[list(X.columns)]
        return model.effect(frame)

    def sample(k: int) -> np.ndarray:
        return base.to_numpy(dtype="float64")[rng.choice(len(base), min(k, len(base)), replace=False)]

    explainer = permutation_explainer(effect, sample(background), seed)
    values = explainer(sample(rows), max_evals=2 * base.shape[1] + 1, silent=True).values
    return pd.Series(np.abs(values).mean(axis=0), index=base.columns)
