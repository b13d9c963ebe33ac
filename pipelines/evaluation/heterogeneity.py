"""Benefit on the absolute scale, checked against what was observed: DRTester's tests, the PATH
risk-modelling table and a calibration summary with a CI (aggregates only).

* :class:`Heterogeneity`: the best-linear-projection test and QINI of the out-of-fold benefit
  (computed by econml's ``DRTester`` in :mod:`~ketamine_response.pipelines.training.heterogeneity`).
* :func:`path_table`: the PATH statement's risk-modelling view (Kent et al. 2020): observed benefit
  (drug rate minus placebo rate, Newcombe's interval) by quarter of cross-fitted predicted
  placebo-arm risk. Benefit that grows with baseline risk under a constant relative effect shows
  here, whatever any feature's interaction says.
* :func:`benefit_calibration`: the weighted slope of observed on predicted benefit across fifths of
  predicted benefit, and the gap between mean observed and mean predicted benefit, each with a
  patient-bootstrap interval; a gap whose interval excludes 0 flags the run.

An arm-specific figure from fewer than *min_events* responders (or non-responders) in that arm is
not shown: its counts are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ketamine_response.pipelines.evaluation.estimators import with_own_interval
from ketamine_response.pipelines.evaluation.metrics import newcombe, patient_resamples


@dataclass(frozen=True)
class Heterogeneity:
    """DRTester's results for one comparison; ``scores`` (DR scores) and ``placebo_risk`` are per course
    of the comparison and never logged."""

    blp_slope: float
    blp_se: float
    blp_p: float
    qini: float
    qini_se: float
    scores: np.ndarray
    placebo_risk: np.ndarray
    learner_p: dict[str, float] = field(default_factory=dict)  # each learner's own one-sided BLP p (NaN: constant)

    @property
    def spread_kept(self) -> float:
        """The share of the benefit model's spread of benefit that the final model keeps: the BLP slope shrunk
        by its uncertainty, slope x (1 - 1/z^2) for z = slope / SE above 1, else 0, at most 1.

        The BLP slope on every out-of-fold prediction is the calibration of the predicted differences in
        benefit (1: as observed); its SE at trial sizes is often near the slope itself, so the slope is
        shrunk toward 0 by how weakly the data determine it (positive-part shrinkage): a spread the data do
        not support is removed, a clear one kept, and it is never widened (a slope above 1 keeps the
        learner's spread). NaN slope (nothing varied): 0.
        """
        if np.isnan(self.blp_slope) or self.blp_slope <= self.blp_se:
            return 0.0
        z = self.blp_slope / self.blp_se
        return float(min(1.0, self.blp_slope * (1.0 - 1.0 / z**2)))

    @property
    def learners_tested(self) -> int:
        """How many learners' out-of-fold benefits varied, so had a BLP test."""
        return sum(p == p for p in self.learner_p.values())

    @property
    def best_learner_p(self) -> tuple[float, str]:
        """(smallest learner BLP p, that learner): does any learner's out-of-fold benefit track the DR scores?
        Unadjusted (:func:`verdict` adjusts it where it supports a claim). NaN where none varies."""
        tested = {n: p for n, p in self.learner_p.items() if p == p}
        if not tested:
            return float("nan"), ""
        name = min(tested, key=lambda n: tested[n])
        return tested[name], name

    def metrics(self, suffix: str = "") -> dict[str, float]:
        low, high = self.qini - 1.96 * self.qini_se, self.qini + 1.96 * self.qini_se
        return {f"benefit_blp_slope{suffix}": self.blp_slope, f"benefit_blp_p{suffix}": self.blp_p,
                f"benefit_qini{suffix}": self.qini, f"benefit_qini_ci_low{suffix}": low,
                f"benefit_qini_ci_high{suffix}": high}


class Verdict(StrEnum):
    """What the run may say about heterogeneity of benefit (absolute scale), and on which test."""

    SHOWN = "shown"          # the benefit model's benefit varies and its BLP test rejects slope <= 0
    NOT_SHOWN = "not_shown"  # no test shows heterogeneity, and "none" is not supported either
    OTHER = "other_learner"  # it varies, its BLP test does not reject, but a learner's does (Bonferroni)
    NONE = "none"            # it is constant, and no learner's BLP test rejects, even unadjusted
    MISSED = "missed"        # it is constant, yet a learner's BLP test rejects (Bonferroni): heterogeneity unranked


def verdict(varies: bool, h: Heterogeneity | None, alpha: float) -> Verdict:
    """What may be said about heterogeneity, each claim made the harder way: that a learner found it needs
    its one-sided BLP p times the number of learners tested <= *alpha* (Bonferroni); "no heterogeneity
    predicted" needs a constant benefit model and every learner's unadjusted p > *alpha*; not rejecting is
    no proof of none."""
    p, tested = h.best_learner_p[0] if h is not None else float("nan"), h.learners_tested if h is not None else 0
    found, hinted = p * tested <= alpha, p <= alpha
    if varies and h is not None and h.blp_p <= alpha:
        return Verdict.SHOWN
    if found:
        return Verdict.OTHER if varies else Verdict.MISSED
    return Verdict.NOT_SHOWN if varies or hinted else Verdict.NONE


def enough_events(y: np.ndarray, min_events: int) -> bool:
    """Whether an arm's courses hold at least *min_events* responders and as many non-responders."""
    return bool(min(y.sum(), len(y) - y.sum()) >= min_events)


def _groups(values: np.ndarray, k: int) -> np.ndarray:
    return np.minimum((rankdata(values, method="ordinal") - 1) * k // max(len(values), 1), k - 1)


def path_table(risk: np.ndarray, y: np.ndarray, treated: np.ndarray, min_events: int, quarters: int = 4) -> pd.DataFrame:
    """Observed benefit by quarter of predicted placebo-arm risk (PATH); rates withheld below *min_events*."""
    rows = []
    for g, inside in ((g, _groups(risk, quarters) == g) for g in range(quarters)):
        drug, placebo = y[inside & (treated == 1)], y[inside & (treated == 0)]
        shown = enough_events(drug, min_events) and enough_events(placebo, min_events)
        observed = newcombe(drug, placebo) if shown else (np.nan, np.nan, np.nan)
        rows.append({"risk_quarter": g + 1, "predicted_placebo_risk": float(risk[inside].mean()),
                     "n_drug": len(drug), "responders_drug": int(drug.sum()), "n_placebo": len(placebo),
                     "responders_placebo": int(placebo.sum()),
                     "drug_rate": float(drug.mean()) if shown else np.nan,
                     "placebo_rate": float(placebo.mean()) if shown else np.nan, "observed_benefit": observed[0],
                     "observed_ci_low": observed[1], "observed_ci_high": observed[2], "shown": shown})
    return pd.DataFrame(rows)


def _summary(benefit: np.ndarray, y: np.ndarray, treated: np.ndarray, groups: int, min_events: int) -> tuple[float, float]:
    """(weighted slope of observed on predicted benefit across the groups with enough events in both arms,
    mean observed - mean predicted); the slope needs 3 such groups."""
    g = _groups(benefit, groups)
    predicted, observed, weight = [], [], []
    for k in range(groups):
        drug, placebo = y[(g == k) & (treated == 1)], y[(g == k) & (treated == 0)]
        if enough_events(drug, min_events) and enough_events(placebo, min_events):
            predicted.append(benefit[g == k].mean())
            observed.append(drug.mean() - placebo.mean())
            weight.append((g == k).sum())
    gap = float(y[treated == 1].mean() - y[treated == 0].mean() - benefit.mean())
    if len(predicted) < 3 or np.ptp(predicted) < 1e-9:
        return float("nan"), gap
    return float(np.polyfit(predicted, observed, 1, w=np.sqrt(weight))[0]), gap


def benefit_calibration(benefit: np.ndarray, y: np.ndarray, treated: np.ndarray, patients: np.ndarray,
                        resamples: int, seed: int, min_events: int = 0, groups: int = 5) -> dict[str, tuple[float, float, float]]:
    """``slope`` (observed on predicted benefit across the fifths whose arms have *min_events* responders
    and non-responders; 1 is ideal) and ``gap`` (mean observed minus mean predicted benefit), each as
    (estimate, 95% CI low, high) from a patient bootstrap."""
    point = _summary(benefit, y, treated, groups, min_events)
    draws = np.array([_summary(benefit[r], y[r], treated[r], groups, min_events)
                      for r in patient_resamples(patients, resamples, seed) if 0 < treated[r].sum() < len(r)])

    def interval(i: int) -> tuple[float, float, float]:
        seen = draws[~np.isnan(draws[:, i]), i] if len(draws) else np.array([])
        if np.isnan(point[i]) or len(seen) < len(draws) / 2 or not len(seen):
            return point[i], float("nan"), float("nan")
        return with_own_interval(point[i], float(np.percentile(seen, 2.5)), float(np.percentile(seen, 97.5)))

    return {"slope": interval(0), "gap": interval(1)}
