"""The model-level caveats decided at training time and stored with the logged model.

``score`` repeats each of them in every row's ``warnings`` and in the ``<out>.model.md`` sidecar, so a score
never travels without what limits it. Each caveat is one short sentence: it is repeated on every row.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ketamine_response.features.cohort.schema import ARM_COLUMNS
from ketamine_response.models.benefit import CalibratedBenefit
from ketamine_response.models.families import get_family
from ketamine_response.models.intervals import Intervals
from ketamine_response.pipelines.config import TrainConfig
from ketamine_response.pipelines.evaluation.heterogeneity import Verdict
from ketamine_response.pipelines.evaluation.sample_size import SampleSize

SYNTHETIC_PREFIX = "SYNTHETIC"  # how features.synthetic.cohort.data_origin marks a generated cohort


def model_caveats(size: SampleSize, selected: str, features: tuple[str, ...], domains: Mapping[str, str],
                  benefit: Mapping[str, CalibratedBenefit], origin: str, p: float, config: TrainConfig,
                  metrics: Mapping[str, float] | None = None, verdicts: Mapping[str, Verdict] | None = None,
                  intervals: Intervals | None = None) -> tuple[str, ...]:
    """Every caveat that holds for the final model, in a fixed order (see the module docstring).

    *features* and *domains* are the training features (the selected family's view of them says whether it
    reads any patient feature); *benefit* the final benefit models by drug; *origin* the run's data origin;
    *p* the selected procedure's permutation p, compared with ``config.policy.alpha``; *metrics* the
    selected procedure's logged metrics (``calibration_slope_active`` with its ``_ci_low``/``_ci_high``,
    ``c_for_benefit_<drug>``); *verdicts* each drug's heterogeneity verdict; *intervals* the response
    model's replicates (their failures are counted).
    """
    caveats = []
    if size.below_minimum:
        caveats.append(f"trained below the minimum sample size ({size.patients} patients, {size.minimum} needed; "
                       f"{size.events_per_parameter:.2f} {size.task.size_unit} per parameter)")
    family = get_family(selected)
    reads = family.columns(features, domains)
    arm_only = family.explainer == "constant" or all(c in ARM_COLUMNS for c in reads)
    if arm_only:
        caveats.append(f"arm-only model ({selected}): it uses no patient features, every course on an arm gets "
                       "the same probability (and --explain has no reasons to give)")
    caveats += benefit_caveats(benefit, metrics or {}, verdicts or {})
    # an arm-only model has no within-arm slope: its out-of-fold spread within an arm is fold-to-fold noise
    caveats += [] if arm_only else calibration_caveats(metrics or {})
    caveats += failed_replicates(benefit, config, intervals)
    if origin.startswith(SYNTHETIC_PREFIX):
        caveats.append(f"trained on synthetic data ({origin.removeprefix(SYNTHETIC_PREFIX).strip(' ()')}), "
                       "not on patients")
    if p > config.policy.alpha:
        caveats.append(f"not shown to beat chance: permutation p = {p:.3f} > alpha {config.policy.alpha:g}")
    return tuple(caveats)


def benefit_caveats(benefit: Mapping[str, CalibratedBenefit], metrics: Mapping[str, float],
                    verdicts: Mapping[str, Verdict]) -> list[str]:
    """Per drug: heterogeneity of benefit not shown (a verdict other than ``shown`` is not evidence that there
    is none), and an out-of-fold c-for-benefit at or below chance (0.5)."""
    out = []
    for arm, model in benefit.items():
        verdict = verdicts.get(arm)
        if model.slope <= model.least:
            out.append(f"benefit constant for {arm}: heterogeneity not shown (not evidence of none), "
                       f"predicted_benefit_{arm} is the average benefit (the model keeps only the least share of "
                       "its learner's spread)")
        elif verdict is not None and verdict is not Verdict.SHOWN:
            out.append(f"heterogeneity of benefit for {arm} not shown (not evidence of none): differences in "
                       f"predicted_benefit_{arm} between patients are not established")
        c = metrics.get(f"c_for_benefit_{arm}", math.nan)
        if c <= 0.5:  # NaN (withheld: too few events, or a constant benefit) compares False
            out.append(f"c-for-benefit for {arm} is {c:.2f} (out of fold; 0.5 is chance): predicted_benefit_{arm} "
                       "does not rank patients by their benefit")
    return out


def calibration_caveats(metrics: Mapping[str, float]) -> list[str]:
    """The drug-arm calibration slope whose CI excludes 1: within the drug arm the probabilities rank the wrong
    way (slope below 0), are too extreme (between 0 and 1) or too timid (above 1)."""
    slope, low, high = (metrics.get(f"calibration_slope_active{end}", math.nan) for end in ("", "_ci_low", "_ci_high"))
    if not (low > 1 or high < 1):  # NaN bounds (no CI) compare False: no caveat
        return []
    way = ("ranked the wrong way (a negative slope)" if slope < 0 else "too extreme" if slope < 1
           else "too close to the average")
    return [f"drug-arm calibration slope {slope:.2f} (95% CI {low:.2f}-{high:.2f}) excludes 1: within the drug "
            f"arm the probabilities are {way}"]


def failed_replicates(benefit: Mapping[str, CalibratedBenefit], config: TrainConfig,
                      intervals: Intervals | None) -> list[str]:
    """Bootstrap replicates that failed to fit (their intervals come from the rest), counted, never dropped
    silently."""
    out = []
    failed = getattr(intervals, "failed", 0)
    if intervals is not None and failed:
        out.append(f"{failed} of {intervals.requested} bootstrap replicates of the response model failed to fit "
                   "(a one-class inner fold); its intervals come from the rest")
    wanted = config.intervals.benefit_replicates
    for arm, model in benefit.items():
        kept = len(getattr(model, "replicates", []))
        if wanted and kept < wanted:
            out.append(f"{wanted - kept} of {wanted} bootstrap replicates of the benefit model for {arm} failed to "
                       "fit; its intervals come from the rest")
    return out


def operating_point(config: TrainConfig) -> float | None:
    """The explicit probability threshold the training config sets, or None for the prevalence default (a
    threshold nobody chose: ``score`` then writes no class label unless given ``--threshold``)."""
    threshold = config.evaluation.threshold
    return None if isinstance(threshold, str) else float(threshold)
