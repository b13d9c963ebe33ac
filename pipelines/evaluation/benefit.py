"""How well predicted benefit matches observed benefit, out of fold.

* **c-for-benefit** (van Klaveren et al. 2018): each course of the smaller arm is matched to the
  course of the other arm at the same rank of predicted benefit; a pair's observed benefit is
  y(drug) - y(placebo) (-1, 0 or 1), its predicted benefit the mean of the two. The statistic is
  the concordance of predicted with observed benefit over pairs of pairs whose observed benefit
  differs. No maintained Python package computes it (the reference code is R's ``HTEPredictionMetrics``),
  so it is written here. Its CI resamples patients (bootstrap over the out-of-fold predictions,
  so refit variance is not in it: the notes say so).
* **calibration-for-benefit**: observed (drug rate minus placebo rate) vs mean predicted benefit by
  quantile group of predicted benefit, each with Newcombe's interval (courses as independent).
* **crossover patients**: the observed within-patient difference between their two courses, with
  exact tests (:mod:`~ketamine_response.pipelines.evaluation.crossover`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ketamine_response.models.families import SELECTED
from ketamine_response.pipelines.evaluation.crossover import Crossover, crossover
from ketamine_response.pipelines.evaluation.drug_arm import treatment_selection_curve
from ketamine_response.pipelines.evaluation.estimators import with_own_interval
from ketamine_response.pipelines.evaluation.heterogeneity import (
    Heterogeneity,
    Verdict,
    benefit_calibration,
    enough_events,
    path_table,
    verdict,
)
from ketamine_response.pipelines.evaluation.metrics import concordance, newcombe, patient_resamples


def matched_pairs(benefit: np.ndarray, y: np.ndarray, treated: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, observed) benefit of the rank-matched drug/placebo pairs."""
    drug, placebo = np.flatnonzero(treated == 1), np.flatnonzero(treated == 0)
    drug, placebo = drug[np.argsort(benefit[drug], kind="stable")], placebo[np.argsort(benefit[placebo], kind="stable")]
    small, large = (drug, placebo) if len(drug) <= len(placebo) else (placebo, drug)
    if not len(small):
        return np.array([]), np.array([])
    # the course of the larger arm at the same quantile of predicted benefit
    partner = large[np.floor((np.arange(len(small)) + 0.5) * len(large) / len(small)).astype(int)]
    d, p = (small, partner) if small is drug else (partner, small)
    return (benefit[d] + benefit[p]) / 2, y[d] - y[p]


def c_for_benefit(benefit: np.ndarray, y: np.ndarray, treated: np.ndarray) -> float:
    predicted, observed = matched_pairs(benefit, y, treated)
    return concordance(predicted, observed) if len(predicted) else float("nan")


def c_for_benefit_ci(benefit: np.ndarray, y: np.ndarray, treated: np.ndarray, patients: np.ndarray,
                     resamples: int, seed: int) -> tuple[float, float, float]:
    """c-for-benefit and its 95% patient-bootstrap percentile interval."""
    point = c_for_benefit(benefit, y, treated)
    values = [c_for_benefit(benefit[r], y[r], treated[r]) for r in patient_resamples(patients, resamples, seed)]
    values = [v for v in values if not np.isnan(v)]
    if not values:
        return point, float("nan"), float("nan")
    return with_own_interval(point, float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5)))


def calibration_for_benefit(benefit: np.ndarray, y: np.ndarray, treated: np.ndarray, groups: int = 5,
                            min_events: int = 0) -> pd.DataFrame:
    """Observed vs predicted benefit by quantile group of predicted benefit (Newcombe's 95% CI on the
    observed); the observed benefit of a group withheld where an arm has fewer than *min_events*
    responders or non-responders in it."""
    group = np.minimum((rankdata(benefit, method="ordinal") - 1) * groups // len(benefit), groups - 1)
    rows = []
    for g in range(groups):
        inside = group == g
        drug, placebo = y[inside & (treated == 1)], y[inside & (treated == 0)]
        shown = enough_events(drug, min_events) and enough_events(placebo, min_events)
        observed, low, high = newcombe(drug, placebo) if shown else (np.nan, np.nan, np.nan)
        rows.append({"group": g + 1, "n_drug": len(drug), "responders_drug": int(drug.sum()), "n_placebo": len(placebo),
                     "responders_placebo": int(placebo.sum()), "predicted_benefit": float(benefit[inside].mean()),
                     "observed_benefit": observed, "observed_ci_low": low, "observed_ci_high": high})
    return pd.DataFrame(rows)


NAN3 = (float("nan"), float("nan"), float("nan"))


@dataclass(frozen=True)
class BenefitSummary:
    """Out-of-fold benefit figures of one comparison (aggregates only: nothing patient-level).

    Nothing from nothing: with fewer than the policy's responders or non-responders in either arm
    (``shown`` False) the figures are withheld and the counts stand; a benefit model whose out-of-fold
    benefit does not vary (``varies`` False) predicts no heterogeneity and gets no c-for-benefit.
    """

    arm: str
    learner: str                         # the final model's learner and its rescaling, "t_learner x 0.85"
    selections: dict[str, int]           # outer-fold selections
    n_drug: int
    n_placebo: int
    responders_drug: int
    responders_placebo: int
    shown: bool
    varies: bool
    c_for_benefit: tuple[float, float, float]  # point, CI low, CI high
    c_learners: dict[str, float]         # each learner's own out-of-fold c-for-benefit
    calibration: pd.DataFrame
    calibration_summary: dict[str, tuple[float, float, float]]  # slope and gap, each with its CI
    crossover: Crossover
    heterogeneity: Heterogeneity | None = None
    path: pd.DataFrame | None = None
    min_events: int = 10
    verdict: Verdict = Verdict.NOT_SHOWN  # what may be said about heterogeneity (policy alpha, BLP tests)
    # treat by predicted benefit vs treat all vs treat none, responses gained per 100 patients (empty when withheld)
    selection: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def flagged(self) -> bool:
        """Mean predicted and mean observed benefit disagree beyond their bootstrap interval."""
        _, low, high = self.calibration_summary.get("gap", NAN3)
        return bool(low > 0 or high < 0)

    def metrics(self, suffix: str = "") -> dict[str, float]:
        x = self.crossover
        out = {f"n_crossover_patients{suffix}": float(x.patients), f"crossover_observed_benefit{suffix}": x.mean_difference,
               f"crossover_observed_benefit_ci_low{suffix}": x.ci_low, f"crossover_observed_benefit_ci_high{suffix}": x.ci_high,
               f"crossover_mcnemar_exact_p{suffix}": x.p_exact, f"responders_drug{suffix}": float(self.responders_drug),
               f"responders_placebo{suffix}": float(self.responders_placebo)}
        if not self.shown:
            return out
        gap = self.calibration_summary["gap"]  # a constant model's average can still be off
        out |= {f"benefit_mean_gap{suffix}": gap[0], f"benefit_mean_gap_ci_low{suffix}": gap[1],
                f"benefit_mean_gap_ci_high{suffix}": gap[2]}
        if self.heterogeneity is not None:  # does any learner's benefit track the DR scores (one-sided, unadjusted)
            out[f"benefit_learners_blp_p_min{suffix}"] = self.heterogeneity.best_learner_p[0]
        if not self.varies:
            return out
        c, low, high = self.c_for_benefit
        slope = self.calibration_summary["slope"]
        out |= {f"c_for_benefit{suffix}": c, f"c_for_benefit_ci_low{suffix}": low, f"c_for_benefit_ci_high{suffix}": high,
                f"benefit_calibration_slope{suffix}": slope[0], f"benefit_calibration_slope_ci_low{suffix}": slope[1],
                f"benefit_calibration_slope_ci_high{suffix}": slope[2],
                **{f"c_for_benefit_{name}{suffix}": v for name, v in self.c_learners.items()}}
        return out | (self.heterogeneity.metrics(suffix) if self.heterogeneity is not None else {})

    def learners_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"arm": self.arm, "learner": name, "c_for_benefit_out_of_fold": c if self.shown else np.nan,
                              "outer_folds_selected": self.selections.get(name, 0),
                              "final": self.learner.split(" ")[0] == name}
                             for name, c in self.c_learners.items()])


def summarise(arm: str, learner: str, selections: list[str], benefit: np.ndarray, by_learner: dict[str, np.ndarray],
              y: np.ndarray, treated: np.ndarray, patients: np.ndarray, resamples: int, seed: int,
              periods: np.ndarray | None = None, heterogeneity: Heterogeneity | None = None,
              min_events: int = 10, varies: dict[str, bool] | None = None, alpha: float = 0.05) -> BenefitSummary:
    """Every out-of-fold benefit figure of one comparison (see :class:`BenefitSummary` for what is withheld).

    *varies*: per learner and ``selected``, whether its benefit varies within some outer fold (default:
    whether the pooled benefit varies at all).
    """
    varies = varies or {name: bool(np.ptp(b) > 1e-9) for name, b in [*by_learner.items(), (SELECTED, benefit)]}
    shown = enough_events(y[treated == 1], min_events) and enough_events(y[treated == 0], min_events)
    figures = shown and varies[SELECTED]
    path = (path_table(heterogeneity.placebo_risk, y, treated, min_events) if heterogeneity is not None else None)
    return BenefitSummary(
        arm, learner, {str(k): int(v) for k, v in pd.Series(selections).value_counts().items()}, int(treated.sum()),
        int((1 - treated).sum()), int(y[treated == 1].sum()), int(y[treated == 0].sum()), shown, varies[SELECTED],
        c_for_benefit_ci(benefit, y, treated, patients, resamples, seed) if figures else NAN3,
        {name: c_for_benefit(b, y, treated) if varies.get(name) else float("nan") for name, b in by_learner.items()},
        calibration_for_benefit(benefit, y, treated, min_events=min_events),
        benefit_calibration(benefit, y, treated, patients, resamples, seed, min_events) if shown else {"slope": NAN3, "gap": NAN3},
        crossover(benefit, y, treated, patients, periods, figures), heterogeneity, path, min_events,
        verdict(varies[SELECTED], heterogeneity, alpha),
        treatment_selection_curve(benefit, y, treated, patients, None if heterogeneity is None else heterogeneity.scores,
                                  n_boot=resamples, seed=seed) if figures else pd.DataFrame())


@dataclass(frozen=True)
class BenefitResult:
    """The benefit model's figures per comparison (active arm vs placebo) and the biomarker roles table."""

    summaries: list[BenefitSummary]
    roles: pd.DataFrame
    notes: list[str]

    @property
    def primary(self) -> BenefitSummary:
        """The comparison with the most courses: its figures are logged without an arm suffix."""
        return max(self.summaries, key=lambda s: s.n_drug + s.n_placebo)

    def metrics(self) -> dict[str, float]:
        out = self.primary.metrics()
        for summary in self.summaries:
            out |= summary.metrics(f"_{summary.arm}")
        return out
