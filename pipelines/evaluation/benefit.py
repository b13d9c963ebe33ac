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
* **crossover patients**: the observed within-patient difference between their two courses,
  period-adjusted (Hills-Armitage) where both sequences occur.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from ketamine_response.pipelines.evaluation.metrics import patient_resamples


def _concordance(predicted: np.ndarray, observed: np.ndarray) -> float:
    """Harrell's C of *predicted* against an ordinal *observed* (ties in observed excluded, in predicted half)."""
    levels = np.unique(observed)
    concordant, comparable = 0.0, 0.0
    for i, low in enumerate(levels):
        for high in levels[i + 1:]:
            a, b = predicted[observed == low], predicted[observed == high]
            # Mann-Whitney U of b over a: the number of (a, b) pairs ranked the right way, ties half
            ranks = rankdata(np.concatenate([a, b]))
            u = ranks[len(a):].sum() - len(b) * (len(b) + 1) / 2
            concordant += u
            comparable += len(a) * len(b)
    return concordant / comparable if comparable else float("nan")


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
    return _concordance(predicted, observed) if len(predicted) else float("nan")


def c_for_benefit_ci(benefit: np.ndarray, y: np.ndarray, treated: np.ndarray, patients: np.ndarray,
                     resamples: int, seed: int) -> tuple[float, float, float]:
    """c-for-benefit and its 95% patient-bootstrap percentile interval."""
    point = c_for_benefit(benefit, y, treated)
    values = [c_for_benefit(benefit[r], y[r], treated[r]) for r in patient_resamples(patients, resamples, seed)]
    values = [v for v in values if not np.isnan(v)]
    if not values:
        return point, float("nan"), float("nan")
    return point, float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def calibration_for_benefit(benefit: np.ndarray, y: np.ndarray, treated: np.ndarray, groups: int = 5) -> pd.DataFrame:
    """Observed vs predicted benefit by quantile group of predicted benefit (Wald 95% CI on the observed)."""
    group = np.minimum((rankdata(benefit, method="ordinal") - 1) * groups // len(benefit), groups - 1)
    rows = []
    for g in range(groups):
        inside = group == g
        drug, placebo = y[inside & (treated == 1)], y[inside & (treated == 0)]
        observed, low, high = _newcombe(drug, placebo)
        rows.append({"group": g + 1, "n_drug": len(drug), "n_placebo": len(placebo),
                     "predicted_benefit": float(benefit[inside].mean()), "observed_benefit": observed,
                     "observed_ci_low": low, "observed_ci_high": high})
    return pd.DataFrame(rows)


def _newcombe(drug: np.ndarray, placebo: np.ndarray) -> tuple[float, float, float]:
    """Difference of two proportions with Newcombe's hybrid score 95% interval (sensible at 0% or 100%)."""
    from statsmodels.stats.proportion import proportion_confint

    if not len(drug) or not len(placebo):
        return float("nan"), float("nan"), float("nan")
    p1, p2 = drug.mean(), placebo.mean()
    l1, u1 = proportion_confint(drug.sum(), len(drug), method="wilson")
    l2, u2 = proportion_confint(placebo.sum(), len(placebo), method="wilson")
    d = p1 - p2
    return float(d), float(d - np.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)), float(d + np.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2))


@dataclass(frozen=True)
class Crossover:
    """Observed within-patient benefit of the patients who had both courses (aggregates only).

    With periods known, ``mean_difference`` is the Hills-Armitage estimate: the mean of the two
    sequence groups' mean differences (drug first, placebo first), which cancels a period effect;
    carryover of the drug into a later placebo period is not removed (it understates benefit).
    """

    patients: int
    mean_difference: float
    ci_low: float
    ci_high: float
    better_on_drug: int
    same: int
    better_on_placebo: int
    c_for_benefit: float  # concordance of their mean predicted benefit with their own difference
    drug_first: int = 0
    placebo_first: int = 0
    period_adjusted: bool = False


def _mean_ci(diff: np.ndarray) -> tuple[float, float]:
    return float(diff.mean()), float(diff.var(ddof=1) / len(diff)) if len(diff) > 1 else float("nan")


def crossover(benefit: np.ndarray, y: np.ndarray, treated: np.ndarray, patients: np.ndarray,
              periods: np.ndarray | None = None) -> Crossover:
    frame = pd.DataFrame({"patient": patients, "t": treated, "y": y, "b": benefit,
                          "period": np.nan if periods is None else periods})
    both = frame.groupby("patient").filter(lambda g: g["t"].nunique() == 2)
    if both.empty:
        nan = float("nan")
        return Crossover(0, nan, nan, nan, 0, 0, 0, nan)
    wide = both.groupby(["patient", "t"])["y"].mean().unstack()
    diff = (wide[1.0] - wide[0.0]).to_numpy()
    predicted = both.groupby("patient")["b"].mean().loc[wide.index].to_numpy()
    drug_period = both[both["t"] == 1].groupby("patient")["period"].first().loc[wide.index].to_numpy()
    first = drug_period == 1
    adjusted = bool(first.any() and (drug_period == 2).any())
    if adjusted:  # Hills-Armitage: average the two sequences' mean differences
        (m1, v1), (m2, v2) = _mean_ci(diff[first]), _mean_ci(diff[drug_period == 2])
        mean, var = (m1 + m2) / 2, (v1 + v2) / 4
    else:
        mean, var = _mean_ci(diff)
    half = 1.96 * np.sqrt(var)
    return Crossover(len(diff), mean, mean - half, mean + half, int((diff > 0).sum()), int((diff == 0).sum()),
                     int((diff < 0).sum()), _concordance(predicted, diff), int(first.sum()),
                     int((drug_period == 2).sum()), adjusted)


@dataclass(frozen=True)
class BenefitSummary:
    """Out-of-fold benefit figures of one comparison (aggregates only: nothing patient-level)."""

    arm: str
    learner: str                         # the final model's learner
    selections: dict[str, int]           # outer-fold selections
    n_drug: int
    n_placebo: int
    c_for_benefit: tuple[float, float, float]  # point, CI low, CI high
    c_learners: dict[str, float]         # each learner's own out-of-fold c-for-benefit
    calibration: pd.DataFrame
    crossover: Crossover

    def metrics(self, suffix: str = "") -> dict[str, float]:
        c, low, high = self.c_for_benefit
        x = self.crossover
        return {f"c_for_benefit{suffix}": c, f"c_for_benefit_ci_low{suffix}": low, f"c_for_benefit_ci_high{suffix}": high,
                f"n_crossover_patients{suffix}": float(x.patients),
                f"crossover_observed_benefit{suffix}": x.mean_difference,
                f"crossover_observed_benefit_ci_low{suffix}": x.ci_low,
                f"crossover_observed_benefit_ci_high{suffix}": x.ci_high,
                **{f"c_for_benefit_{name}{suffix}": v for name, v in self.c_learners.items()}}

    def learners_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"arm": self.arm, "learner": name, "c_for_benefit_out_of_fold": c,
                              "outer_folds_selected": self.selections.get(name, 0), "final": name == self.learner}
                             for name, c in self.c_learners.items()])


def summarise(arm: str, learner: str, selections: list[str], benefit: np.ndarray, by_learner: dict[str, np.ndarray],
              y: np.ndarray, treated: np.ndarray, patients: np.ndarray, resamples: int, seed: int,
              periods: np.ndarray | None = None) -> BenefitSummary:
    """Every out-of-fold benefit figure of one comparison."""
    return BenefitSummary(
        arm, learner, {str(k): int(v) for k, v in pd.Series(selections).value_counts().items()}, int(treated.sum()), int((1 - treated).sum()),
        c_for_benefit_ci(benefit, y, treated, patients, resamples, seed),
        {name: c_for_benefit(b, y, treated) for name, b in by_learner.items()},
        calibration_for_benefit(benefit, y, treated), crossover(benefit, y, treated, patients, periods))


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
