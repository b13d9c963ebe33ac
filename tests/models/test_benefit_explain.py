"""Benefit SHAP's explainer: shap's numba kernels are compiled once, then loaded, and explain as stock shap does.
(That it ranks the planted modifiers: tests/models/test_benefit.py, beside the learners it explains.)"""

from __future__ import annotations

import os
import subprocess
import sys

EXPLAIN = """
import numpy as np
X = np.random.default_rng(0).random((30, 4))
model = lambda x: x[:, 0] * x[:, 1]
"""
CACHED = EXPLAIN + """
from shap.maskers import _tabular
from shap.utils import _masked_model
from ketamine_response.models.benefit_explain import permutation_explainer
values = permutation_explainer(model, X[:10], seed=1)(X[:3]).values
kernels = (_tabular._delta_masking, _masked_model._build_fixed_single_output)  # the two the explainer calls
print([sum(k.stats.cache_hits.values()) for k in kernels])
print(repr(values.tolist()))
"""
# stock shap (its own identity link), in a process that never enables numba's cache: in one that has, this link's
# type names its address, so every run would add a cache entry
STOCK = EXPLAIN + """
import shap
print(repr(shap.PermutationExplainer(model, shap.maskers.Independent(X[:10]), seed=1)(X[:3]).values.tolist()))
"""


def _python(code: str, env: dict[str, str]) -> list[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600,
                          check=True).stdout.splitlines()


def test_shap_kernels_are_compiled_once_and_loaded_after(tmp_path):
    """The first process compiles shap's numba kernels into an empty cache (NUMBA_CACHE_DIR, as where shap's folder
    is read-only); the next loads every one of them instead of compiling; both explain exactly as stock shap does."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    (compiled, first), (loaded, second) = (_python(CACHED, env)[-2:] for _ in range(2))
    assert compiled == "[0, 0]" and all(int(hits) > 0 for hits in loaded.strip("[]").split(", "))
    assert first == second == _python(STOCK, {**env, "NUMBA_CACHE_DIR": str(tmp_path / "stock")})[-1]
