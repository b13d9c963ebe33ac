"""Benefit SHAP: it ranks the planted modifiers, and shap's numba kernels are compiled once, then loaded."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from ketamine_response.models.benefit import get_learner
from ketamine_response.models.benefit_explain import benefit_shap
from tests.models.conftest import E


def test_benefit_shap_ranks_the_planted_modifiers_first(comparison):
    data, treated, _ = comparison
    model = get_learner("s_learner").fit(data.X, data.y, treated, "ketamine_iv", 3, E(treated))
    importance = benefit_shap(model, data.X, seed=1)
    assert "arm_ketamine_iv" not in importance.index
    top = set(importance.sort_values(ascending=False).index[:4])
    assert len(top & {"family_history_aud", "bmi_kg_m2", "benzodiazepine", "bdnf_met_carrier"}) >= 3


KERNEL_RUN = """
import numpy as np
from shap.maskers import _tabular
from shap.utils import _masked_model
from ketamine_response.models.benefit_explain import permutation_explainer
X = np.random.default_rng(0).random((30, 4))
values = permutation_explainer(lambda x: x[:, 0] * x[:, 1], X[:10], seed=1)(X[:3]).values
kernels = (_tabular._delta_masking, _masked_model._build_fixed_single_output)  # the two the explainer calls
print([sum(k.stats.cache_hits.values()) for k in kernels])
print(repr(values.tolist()))
"""


def test_shap_kernels_are_compiled_once_and_loaded_after(tmp_path):
    """The first process compiles shap's numba kernels into an empty cache (NUMBA_CACHE_DIR, as where shap's folder
    is read-only); the next loads every one of them instead of compiling, and both explain exactly as stock shap
    (its own identity link, compiled in this process) does."""
    import shap

    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    (compiled, first), (loaded, second) = (
        subprocess.run([sys.executable, "-c", KERNEL_RUN], capture_output=True, text=True, env=env, timeout=600,
                       check=True).stdout.splitlines()[-2:] for _ in range(2))
    assert compiled == "[0, 0]" and all(int(hits) > 0 for hits in loaded.strip("[]").split(", "))
    X = np.random.default_rng(0).random((30, 4))
    stock = shap.PermutationExplainer(lambda x: x[:, 0] * x[:, 1], shap.maskers.Independent(X[:10]), seed=1)(X[:3])
    assert first == second == repr(stock.values.tolist())
