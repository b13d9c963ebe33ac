"""Observed within-patient benefit of crossover patients, with exact tests (aggregates only).

A crossover patient had a drug course and a placebo course, so each patient is a pair of binary
outcomes. With few patients (ds005917: 4 better on the drug, 0 on placebo) a Wald interval claims
too much, so the figures are the small-sample ones:

* the paired difference (b - c) / n (b: better on the drug, c: better on placebo) with Newcombe's
  score interval for paired proportions (method 10; Newcombe 1998, Stat Med 17:2635), written here
  because neither statsmodels nor SciPy offers an interval for a paired difference;
* the exact McNemar p: a two-sided binomial test of b against b + c at 1/2 (SciPy);
* with both sequences (drug first, placebo first), the Mainland-Gart exact test, which removes a
  period effect: Fisher's exact test of sequence against which period was better, among the
  discordant patients (SciPy). Carryover of the drug into a later placebo period is not removed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ketamine_response.pipelines.evaluation.metrics import concordance

MIN_PATIENTS = 10  # fewer crossover patients: their own c-for-benefit is not shown


@dataclass(frozen=True)
class Crossover:
    """Within-patient benefit of the patients who had both courses."""

    patients: int
    mean_difference: float  # (better on drug - better on placebo) / patients
    ci_low: float
    ci_high: float
    p_exact: float          # exact McNemar
    better_on_drug: int
    same: int
    better_on_placebo: int
    c_for_benefit: float    # concordance of their mean predicted benefit with their own difference
    drug_first: int = 0
    placebo_first: int = 0
    period_adjusted_p: float = float("nan")  # Mainland-Gart, where both sequences occur


def newcombe_paired(a: int, b: int, c: int, d: int) -> tuple[float, float, float]:
    """Difference p1 - p2 of paired proportions (a: both, b: first only, c: second only, d: neither) and
    Newcombe's method-10 95% interval (Wilson limits of each margin, combined with their correlation phi).
    Bentur et al.'s table (1, 1, 7, 12), Fagerland et al. chapter 8: -0.286 (-0.507 to -0.026)."""
    from statsmodels.stats.proportion import proportion_confint

    n = a + b + c + d
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = proportion_confint(a + b, n, method="wilson")
    l2, u2 = proportion_confint(a + c, n, method="wilson")
    margins, cross = (a + b) * (c + d) * (a + c) * (b + d), a * d - b * c
    # Newcombe's continuity-corrected phi (as in Fagerland, Lydersen & Laake's contingencytables)
    phi = 0.0 if margins == 0 or 0 <= cross <= n / 2 else (cross - n / 2 if cross > 0 else cross) / np.sqrt(margins)
    delta = np.sqrt(max((p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2, 0.0))
    epsilon = np.sqrt(max((u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2, 0.0))
    diff = p1 - p2
    return float(diff), float(max(diff - delta, -1.0)), float(min(diff + epsilon, 1.0))


def _mcnemar_exact(b: int, c: int) -> float:
    from scipy.stats import binomtest

    return float(binomtest(b, b + c, 0.5).pvalue) if b + c else 1.0


def _mainland_gart(diff: np.ndarray, drug_period: np.ndarray) -> float:
    """Fisher's exact p of sequence x (first period better / second period better) among discordant
    patients: a drug effect makes the first period better in the drug-first sequence and the second in
    the placebo-first one; a pure period effect makes the same period better in both (no association)."""
    from scipy.stats import fisher_exact

    first, second = drug_period == 1, drug_period == 2
    if not first.any() or not second.any():
        return float("nan")
    table = [[int((diff[first] > 0).sum()), int((diff[first] < 0).sum())],
             [int((diff[second] < 0).sum()), int((diff[second] > 0).sum())]]
    return float(fisher_exact(table).pvalue) if sum(map(sum, table)) else 1.0


def crossover(benefit: np.ndarray, y: np.ndarray, treated: np.ndarray, patients: np.ndarray,
              periods: np.ndarray | None = None, ranks: bool = True) -> Crossover:
    """The crossover patients' observed benefit (see the module docstring); *ranks* False: the benefit
    model ranks nobody (constant within every outer fold) or its figures are withheld, so no c-for-benefit."""
    frame = pd.DataFrame({"patient": patients, "t": treated, "y": y, "b": benefit,
                          "period": np.nan if periods is None else periods})
    both = frame.groupby("patient").filter(lambda g: g["t"].nunique() == 2)
    if both.empty:
        nan = float("nan")
        return Crossover(0, nan, nan, nan, nan, 0, 0, 0, nan)
    wide = both.groupby(["patient", "t"])["y"].mean().unstack()
    drug, placebo = wide[1.0].to_numpy(), wide[0.0].to_numpy()
    diff = drug - placebo
    predicted = both.groupby("patient")["b"].mean().loc[wide.index].to_numpy()
    drug_period = both[both["t"] == 1].groupby("patient")["period"].first().loc[wide.index].to_numpy()
    a, b = int(((drug == 1) & (placebo == 1)).sum()), int((diff > 0).sum())
    c, d = int((diff < 0).sum()), int(((drug == 0) & (placebo == 0)).sum())
    mean, low, high = newcombe_paired(a, b, c, d)
    # a concordance needs predictions that differ and enough patients to rank
    ranked = ranks and np.ptp(predicted) > 1e-9 and len(diff) >= MIN_PATIENTS
    c_benefit = concordance(predicted, diff) if ranked else float("nan")
    return Crossover(len(diff), mean, low, high, _mcnemar_exact(b, c), b, a + d, c, c_benefit,
                     int((drug_period == 1).sum()), int((drug_period == 2).sum()), _mainland_gart(diff, drug_period))
