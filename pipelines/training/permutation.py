"""Label-permutation test of the whole training procedure (Ojala & Garriga 2010), with max-T adjustment.

Each permutation exchanges whole patients' labels within site x arm (crossover patients among
crossover patients, their pairs kept together), draws its own outer splits on the permuted labels,
and re-runs the procedure being tested: the inner family and hyperparameter search, in-fold
calibration. The statistic is the one the table shows beside the p (:mod:`~ketamine_response.pipelines.evaluation.repeats`):
the within-active-arm AUROC (Harrell's C within the drug arms for a time to relapse), per repeat then
averaged (the task's headline where no course had the drug), of the selected procedure and of each family, all from the same permuted runs. Exchanging
within arm keeps the arm effect, so the arm alone cannot carry the test.

Each family's row also gets a p adjusted for having tested every family (single-step max-T,
Westfall & Young 1993): the permuted statistic is the largest over the families in that run, which
keeps the family-wise error at alpha with the families' dependence intact. The selected procedure's
p needs none: the selection is inside the procedure it re-runs.

Permutations run in batches as wide as the workers (:func:`batch_width`): each (permutation, outer fold)
pair is one task, so a cluster runs several permutations at once. Results are read in permutation order
and stopping is applied between them exactly as one at a time, so a batch may run a few permutations
beyond the stop; they are not counted, and the p-values do not depend on the batch width.

Ties and undefined (NaN) null values count against the model. Sequential stopping (Besag &
Clifford 1991) ends the test of a statistic once it has *h* exceedances: p = h / permutations
run. A statistic that never reaches *h* gets p = (exceedances + 1) / (permutations + 1), whose
floor is 1 / (B + 1). With *h* = 5 and B <= 99, stopping changes no decision at alpha = 0.05:
a stopped statistic has p >= 5 / B > 0.05. An undefined observed statistic gets no p-value.
A max-T exceedance is at least as frequent as the family's own, so its test settles no later.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ketamine_response.models.families import SELECTED, get_family
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.evaluation.repeats import (
    ACTIVE_AUROC,
    ACTIVE_C,
    active,
    constant_within,
    statistic_of,
    statistic_values,
)
from ketamine_response.pipelines.folds import Data, FoldResult
from ketamine_response.pipelines.training.cv import permute_labels
from ketamine_response.pipelines.training.nested import n_outer, run_many, splits_of
from ketamine_response.pipelines.training.progress import Progress

log = logging.getLogger(__name__)
ADJUSTED = "adjusted:"  # key prefix of a family's max-T adjusted test


@dataclass(frozen=True)
class PermutationResult:
    """Per family (and ``selected``): the observed tested statistic, its p-value and permutations run, and
    each family's max-T adjusted p.

    ``statistic`` names what was tested (``auroc_active``, or the task's headline). ``b`` is 0 where the
    p-value needs no permutation (a predictor constant where it is judged: p = 1) or none was asked for
    (p is NaN).
    """

    observed: dict[str, float]
    p: dict[str, float]
    b: dict[str, int]
    adjusted: dict[str, float] = field(default_factory=dict)
    null: dict[str, list[float]] = field(default_factory=dict)
    planned: int = 0
    statistic: str = "auroc_active"

    def metrics(self, name: str) -> dict[str, float]:
        """The logged metrics of one run: ``<statistic>_p``, ``<statistic>_permutations`` and, for a family,
        ``<statistic>_p_adjusted``."""
        s = self.statistic
        out = {f"{s}_p": self.p[name], f"{s}_permutations": float(self.b[name])}
        return out | ({f"{s}_p_adjusted": self.adjusted[name]} if name in self.adjusted else {})

    def note(self, stop_after: int) -> str:
        """What was run, for the run notes."""
        ran = max(self.b.values(), default=0)
        if self.planned == 0:
            return "permutation test: not run (0 permutations asked for), so no p-value is claimed"
        return (f"permutation test of {self.statistic} (per CV repeat, then averaged; the number shown beside each p): "
                f"the whole procedure (new outer splits on the permuted labels, inner family and hyperparameter "
                f"selection, calibration) re-run for each of up to {self.planned} label permutations; whole patients' "
                f"labels exchanged within site x arm; {ran} run; each statistic stops after {stop_after} permuted "
                f"values at or above the observed one (Besag & Clifford 1991; permutations run in batches as wide as "
                f"the workers, read in order, so a batch's runs past the stop are not counted); ties and undefined values count "
                f"against the model; smallest possible p = 1/{self.planned + 1}; each family's p also adjusted for "
                f"testing {len(self.adjusted)} families (max-T, Westfall & Young)")


def _never_varies(data: Data, folds: list[FoldResult], name: str, min_events: int) -> bool:
    """Whether a statistic's predictions cannot rank anyone where it is judged: a constant family, or one
    constant within the active arm when the within-arm AUROC is tested."""
    family = None if name == SELECTED else name
    chosen = {f.selected if name == SELECTED else name for f in folds}
    if all(get_family(c).explainer == "constant" for c in chosen):
        return True
    within_drug = statistic_of(data, min_events) in (ACTIVE_AUROC, ACTIVE_C)
    where = active(data) if within_drug else np.ones(len(data.y), bool)
    return (data.task.probabilities or within_drug) and constant_within(folds, family, where)


def _with_max(values: dict[str, float], families: tuple[str, ...]) -> dict[str, float]:
    """*values* plus, per family, the max-T statistic (the largest over the families; NaN counts against)."""
    spread = [values[f] for f in families]
    top = float("inf") if any(np.isnan(v) for v in spread) else max(spread, default=float("nan"))
    return values | {ADJUSTED + f: top for f in families}


def batch_width(parallel: Any, folds: int) -> int:
    """How many permutations run at once: enough (permutation, fold) tasks to fill every worker of *parallel*
    (on 2 local workers: one permutation at a time; on a 40-core cluster with 10 folds: four)."""
    workers = parallel._effective_n_jobs() if hasattr(parallel, "_effective_n_jobs") else getattr(parallel, "n_jobs", 1)
    return max(1, -(-int(workers) // max(folds, 1)))


def _permuted_runs(data: Data, config: TrainConfig, parallel: Any, batch: range,
                   progress: Progress) -> list[dict[str, float]]:
    """The tested statistics of the procedure re-run on each permutation in *batch*, in order: one joblib call
    of (permutation, fold) tasks; each permutation's labels and outer splits depend only on its number."""
    m = config.policy.min_events_per_arm
    permuted = [replace(data, y=permute_labels(data.y, data.patients, data.sites, data.treatments,
                                               np.random.default_rng([config.seed, i]))) for i in batch]
    splits = [splits_of(d, config, seed=config.seed + 7919 * (i + 1)) for d, i in zip(permuted, batch, strict=True)]
    runs = run_many(permuted, splits, config, parallel, explain=False, progress=progress)
    return [_with_max(statistic_values(d, r, config.families, m), config.families) for d, r in zip(permuted, runs, strict=True)]


def permutation_test(data: Data, folds: list[FoldResult], config: TrainConfig, parallel: Any,
                     progress: Progress | None = None) -> PermutationResult:
    """Test every family and the selected procedure against permuted labels (see the module docstring)."""
    e = config.evaluation
    m = config.policy.min_events_per_arm
    observed = statistic_values(data, folds, config.families, m)
    keys = [*observed, *(ADJUSTED + f for f in config.families)]
    target = observed | {ADJUSTED + f: observed[f] for f in config.families}
    settled = {k: 1.0 for k in keys if _never_varies(data, folds, k.removeprefix(ADJUSTED), m)}
    p = {k: settled.get(k, float("nan")) for k in keys}
    b, exceed = dict.fromkeys(keys, 0), dict.fromkeys(keys, 0)
    null: dict[str, list[float]] = {k: [] for k in observed}
    pending = [k for k in keys if k not in settled and not np.isnan(target[k])]  # undefined: nothing to test against
    progress = progress or Progress()
    progress.stage(f"permutation test: up to {e.permutations} re-runs of the whole procedure on permuted labels "
                   "(stops early once a p-value is settled)", e.permutations * n_outer(data, config) if pending else 0)
    width, ran = batch_width(parallel, n_outer(data, config)), 0
    while pending and ran < e.permutations:
        batch = range(ran, min(ran + width, e.permutations))
        log.info("permutations %d-%d of %d (%d statistics still open)", batch[0] + 1, batch[-1] + 1, e.permutations,
                 len(pending))
        for values in _permuted_runs(data, config, parallel, batch, progress):
            for k in list(pending):  # in permutation order; a batch's runs after every test settled are not counted
                b[k] += 1
                null.setdefault(k, []).append(values[k])
                exceed[k] += int(np.isnan(values[k]) or values[k] >= target[k])
                if exceed[k] >= e.permutation_stop:
                    p[k] = exceed[k] / b[k]
                    pending.remove(k)
        ran = batch[-1] + 1
    for k in pending:
        if b[k]:
            p[k] = (exceed[k] + 1) / (b[k] + 1)
    adjusted = {f: float(np.fmax(p[ADJUSTED + f], p[f])) for f in config.families}  # never below its own p
    null = {k: v for k, v in null.items() if not k.startswith(ADJUSTED)}
    log.info("permutation test: %s", {n: (round(p[n], 3), b[n]) for n in observed})
    return PermutationResult(observed, {n: p[n] for n in observed}, {n: b[n] for n in observed}, adjusted, null,
                             e.permutations, statistic_of(data, m))
