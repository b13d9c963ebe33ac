"""The model-level caveats decided at training time and stored with the logged model.

``score`` repeats each of them in every row's ``warnings`` and in the ``<out>.model.md`` sidecar, so a score
never travels without what limits it. Each caveat is one short sentence: it is repeated on every row.
"""

from __future__ import annotations

from collections.abc import Mapping

from ketamine_response.features.cohort.schema import ARM_COLUMNS
from ketamine_response.models.benefit import CalibratedBenefit
from ketamine_response.models.families import get_family
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.evaluation.sample_size import SampleSize

SYNTHETIC_PREFIX = "SYNTHETIC"  # how features.synthetic.cohort.data_origin marks a generated cohort


def model_caveats(size: SampleSize, selected: str, features: tuple[str, ...], domains: Mapping[str, str],
                  benefit: Mapping[str, CalibratedBenefit], origin: str, p: float, config: TrainConfig) -> tuple[str, ...]:
    """Every caveat that holds for the final model, in a fixed order (see the module docstring).

    *features* and *domains* are the training features (the selected family's view of them says whether it
    reads any patient feature); *benefit* the final benefit models by drug; *origin* the run's data origin;
    *p* the selected procedure's permutation p, compared with ``config.policy.alpha``.
    """
    caveats = []
    if size.below_minimum:
        caveats.append(f"trained below the minimum sample size ({size.patients} patients, {size.minimum} needed; "
                       f"{size.events_per_parameter:.2f} {size.task.size_unit} per parameter)")
    family = get_family(selected)
    reads = family.columns(features, domains)
    if family.explainer == "constant" or all(c in ARM_COLUMNS for c in reads):
        caveats.append(f"arm-only model ({selected}): it uses no patient features, every course on an arm gets "
                       "the same probability")
    caveats += [f"benefit constant for {arm}: no heterogeneity found, predicted_benefit_{arm} is the average "
                "benefit (the model keeps only the least share of its learner's spread)"
                for arm, model in benefit.items() if model.slope <= model.least]
    if origin.startswith(SYNTHETIC_PREFIX):
        caveats.append(f"trained on synthetic data ({origin.removeprefix(SYNTHETIC_PREFIX).strip(' ()')}), "
                       "not on patients")
    if p > config.policy.alpha:
        caveats.append(f"not shown to beat chance: permutation p = {p:.3f} > alpha {config.policy.alpha:g}")
    return tuple(caveats)


def operating_point(config: TrainConfig) -> float | None:
    """The explicit probability threshold the training config sets, or None for the prevalence default (a
    threshold nobody chose: ``score`` then writes no class label unless given ``--threshold``)."""
    threshold = config.evaluation.threshold
    return None if isinstance(threshold, str) else float(threshold)
