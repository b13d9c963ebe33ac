"""Label-permutation test of the whole training procedure (Ojala & Garriga 2010).

Each permutation exchanges whole patients' labels within site (crossover pairs move together),
draws its own outer splits on the permuted labels, and re-runs the procedure being tested:
the inner family and hyperparameter search, in-fold calibration and pooling over repeats. The
statistic is the one reported: the pooled out-of-fold AUROC (R2 for a continuous target) of the
selected procedure, and of each family for the child runs. All of them come from the same permuted runs.

Ties and undefined (NaN) null values count against the model. Sequential stopping (Besag &
Clifford 1991) ends the test of a statistic once it has *h* exceedances: p = h / permutations
run. A statistic that never reaches *h* gets p = (exceedances + 1) / (permutations + 1), whose
floor is 1 / (B + 1). With *h* = 5 and B <= 99, stopping changes no decision at alpha = 0.05:
a stopped statistic has p >= 5 / B > 0.05. An undefined observed statistic gets no p-value.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ketamine_response.models.families import SELECTED, get_family
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.evaluation.metrics import STATISTICS
from ketamine_response.pipelines.folds import Data, FoldResult, pooled
from ketamine_response.pipelines.training.cv import permute_labels
from ketamine_response.pipelines.training.nested import n_outer, run_nested
from ketamine_response.pipelines.training.progress import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PermutationResult:
    """Per statistic (each family, and ``selected``): observed AUROC, p-value and permutations run.

    ``b`` is 0 where the p-value needs no permutation (a constant predictor: p = 1) or none was
    asked for (p is NaN).
    """

    observed: dict[str, float]
    p: dict[str, float]
    b: dict[str, int]
    null: dict[str, list[float]] = field(default_factory=dict)
    planned: int = 0

    def note(self, stop_after: int) -> str:
        """What was run, for the run notes."""
        ran = max(self.b.values(), default=0)
        if self.planned == 0:
            return "permutation test: not run (0 permutations asked for), so no p-value is claimed"
        return (f"permutation test: the whole procedure (new outer splits on the permuted labels, inner family "
                f"and hyperparameter selection, calibration, pooling) re-run for each of up to {self.planned} "
                f"label permutations; whole patients exchanged within site; {ran} run; each statistic stops after "
                f"{stop_after} permuted values at or above the observed one (Besag & Clifford 1991); ties and "
                f"undefined values count against the model; smallest possible p = 1/{self.planned + 1}")


def statistics(data: Data, y: np.ndarray, folds: list[FoldResult], families: tuple[str, ...]) -> dict[str, float]:
    """The task's headline metric (pooled out-of-fold AUROC, or R2 for a continuous target) of each family
    and of the selected procedure."""
    metric = STATISTICS[data.task.headline]
    return {name: metric(y, pooled(data, folds, None if name == SELECTED else name)) for name in (*families, SELECTED)}


def _never_varies(folds: list[FoldResult], name: str) -> bool:
    """Whether a statistic's predictions come from a constant predictor in every fold."""
    chosen = {f.selected if name == SELECTED else name for f in folds}
    return all(get_family(c).explainer == "constant" for c in chosen)


def permutation_test(data: Data, folds: list[FoldResult], config: TrainConfig, parallel: Any,
                     progress: Progress | None = None) -> PermutationResult:
    """Test every family and the selected procedure against permuted labels (see the module docstring)."""
    e = config.evaluation
    observed = statistics(data, data.y, folds, config.families)
    p = {n: (1.0 if _never_varies(folds, n) else float("nan")) for n in observed}
    undefined = [n for n in observed if np.isnan(observed[n]) and np.isnan(p[n])]  # nothing to test against
    b = dict.fromkeys(observed, 0)
    null: dict[str, list[float]] = {n: [] for n in observed}
    pending = [n for n in observed if np.isnan(p[n]) and n not in undefined]
    exceed = dict.fromkeys(observed, 0)
    progress = progress or Progress()
    progress.stage(f"permutation test: up to {e.permutations} re-runs of the whole procedure on permuted labels "
                   "(stops early once a p-value is settled)", e.permutations * n_outer(data, config) if pending else 0)
    for i in range(e.permutations if pending else 0):
        log.info("permutation %d/%d (%d statistics still open)", i + 1, e.permutations, len(pending))
        y = permute_labels(data.y, data.patients, data.sites, data.treatments, np.random.default_rng([config.seed, i]))
        permuted = replace(data, y=y)
        runs = run_nested(permuted, config, parallel, seed=config.seed + 7919 * (i + 1), explain=False, progress=progress)
        values = statistics(permuted, y, runs, config.families)
        for name in list(pending):
            b[name] += 1
            null[name].append(values[name])
            exceed[name] += int(np.isnan(values[name]) or values[name] >= observed[name])
            if exceed[name] >= e.permutation_stop:
                p[name] = exceed[name] / b[name]
                pending.remove(name)
        if not pending:
            break
    for name in pending:
        if b[name]:
            p[name] = (exceed[name] + 1) / (b[name] + 1)
    log.info("permutation test: %s", {n: (round(p[n], 3), b[n]) for n in p})
    return PermutationResult(observed, p, b, null, e.permutations)
