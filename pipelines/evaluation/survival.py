"""Performance of out-of-fold durability predictions (time to relapse after a response), with CIs.

A prediction is each course's probability of relapse within 28 days (``HORIZONS[0]``); every family here
has proportional hazards, so it ranks courses as the model's log hazard does. Censoring is handled by
scikit-survival throughout:

* Harrell's C (``c_index``): among comparable pairs (the shorter time is an observed relapse), the share the
  prediction orders correctly; tied predictions count one half, pairs tied in time with one relapse are
  comparable, pairs with both censored or the shorter censored are not (``concordance_index_censored``).
* Uno's C (``uno_c``): the same weighted by the inverse probability of remaining uncensored (IPCW, the
  censoring Kaplan-Meier of the evaluated courses), truncated at 56 days, so it does not depend on the
  censoring distribution where censoring is independent of the features (``concordance_index_ipcw``). Every
  censoring weight here is that marginal Kaplan-Meier: follow-up that differs by site or arm biases them.
* Time-dependent AUROC at 28 and 56 days (``auroc_28d``, ``auroc_56d``): cumulative cases (relapsed by t)
  against dynamic controls (still relapse-free at t), IPCW (``cumulative_dynamic_auc``).
* Integrated Brier score (``integrated_brier``) of the predicted relapse-free curves, IPCW, over the weekly
  grid to 56 days inside the follow-up (``integrated_brier_score``; later the censoring weights grow unstable);
  the Kaplan-Meier floor's row is the reference.
* Calibration at 28 days, by fifths of predicted risk: mean predicted relapse probability against
  1 - Kaplan-Meier relapse-free probability at 28 days in that fifth; ``calibration_28d_gap`` is their
  mean absolute difference, weighted by courses (a grouped gap, not Austin & Steyerberg's smoothed ICI).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.tasks import HORIZONS
from ketamine_response.pipelines.evaluation.metrics import averaged, patient_resamples, percentile_interval

SURVIVAL_CI_METRICS = ("c_index", "uno_c", "auroc_28d", "auroc_56d", "calibration_28d_gap")
GRID_DAYS = np.arange(7.0, 85.0, 7.0)  # weekly, to 12 weeks: where relapse-free curves are stored and scored


def harrell_c(y: np.ndarray, p: np.ndarray) -> float:
    """Harrell's C of relapse risk *p* (NaN without a comparable pair)."""
    from sksurv.metrics import concordance_index_censored

    if not y["event"].any():
        return float("nan")
    try:
        return float(concordance_index_censored(y["event"], y["time"], p)[0])
    except ValueError:  # no comparable pair (a small arm within a fold)
        return float("nan")


def uno_c(y: np.ndarray, p: np.ndarray) -> float:
    """Uno's IPCW C truncated at the last horizon (NaN where undefined)."""
    from sksurv.metrics import concordance_index_ipcw

    tau = min(float(HORIZONS[-1]), float(y["time"][y["event"]].max(initial=0.0)))
    if tau <= 0:
        return float("nan")
    try:
        return float(concordance_index_ipcw(y, y, p, tau=tau)[0])
    except ValueError:  # the censoring distribution reaches 0 before tau
        return float("nan")


def td_auroc(y: np.ndarray, p: np.ndarray, day: float) -> float:
    """Cumulative/dynamic AUROC at *day* (NaN when no course relapsed by then or none is still at risk).

    The courses are judged as censored just after *day* (which leaves the AUROC at *day* unchanged): with
    administrative censoring at the end of follow-up the censoring curve reaches 0 there, and the inverse
    weights scikit-survival would compute for later relapses do not exist.
    """
    from sksurv.metrics import cumulative_dynamic_auc

    if not (y["event"] & (y["time"] <= day)).any() or not (y["time"] > day).any():
        return float("nan")
    judged = y.copy()
    judged["event"] &= judged["time"] <= day
    judged["time"] = np.minimum(judged["time"], day + 1)
    try:
        return float(cumulative_dynamic_auc(y, judged, p, [day])[0][0])
    except ValueError:
        return float("nan")


def partial_log_likelihood(y: np.ndarray, p: np.ndarray) -> float:
    """Held-out Cox partial log-likelihood per relapse (Breslow ties) of predicted 28-day relapse probabilities.

    Under proportional hazards log(-log(1 - p)), the log cumulative hazard at 28 days, is the linear predictor
    plus a constant, to which the partial likelihood is invariant; so it scores every family here on its own
    risk scale. Written by hand: scikit-survival scores held-out data only by concordance.
    """
    events = y["event"]
    if not events.any():
        return float("nan")
    lp = np.log(-np.log1p(-np.clip(p, 1e-12, 1 - 1e-12)))
    order = np.argsort(-y["time"], kind="stable")  # latest first: a running sum gives each time's risk set
    time, lp_sorted = y["time"][order], lp[order]
    shift = lp_sorted.max()
    at_risk = np.cumsum(np.exp(lp_sorted - shift))
    # ties: everyone with the same time is at risk for each of them (the risk set's last member with that time)
    last = np.searchsorted(-time, -time, side="right") - 1
    log_risk = np.log(at_risk[last]) + shift
    ev = events[order]
    return float((lp_sorted[ev] - log_risk[ev]).sum() / ev.sum())


def km_at(y: np.ndarray, day: float) -> float:
    """The Kaplan-Meier relapse-free probability at *day*."""
    from sksurv.nonparametric import kaplan_meier_estimator

    if len(y) == 0:
        return float("nan")
    times, curve = kaplan_meier_estimator(y["event"], y["time"])
    index = np.searchsorted(times, day, side="right") - 1
    return float(curve[index]) if index >= 0 else 1.0


def calibration_28d(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Per fifth of predicted 28-day relapse risk: courses, relapses, mean predicted and Kaplan-Meier observed
    relapse by 28 days."""
    edges = np.quantile(p, [0.2, 0.4, 0.6, 0.8])
    fifth = np.searchsorted(edges, p, side="right") if np.ptp(p) > 0 else np.zeros(len(p), int)
    rows = []
    for k in np.unique(fifth):
        m = fifth == k
        rows.append({"fifth": int(k) + 1, "n": int(m.sum()), "relapses": int(y["event"][m].sum()),
                     "predicted_relapse_28d": float(p[m].mean()), "observed_relapse_28d": 1.0 - km_at(y[m], HORIZONS[0])})
    return pd.DataFrame(rows)


def survival_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The point metrics of one prediction set."""
    table = calibration_28d(y, p)
    gap = (table["predicted_relapse_28d"] - table["observed_relapse_28d"]).abs()
    return {"c_index": harrell_c(y, p), "uno_c": uno_c(y, p), "auroc_28d": td_auroc(y, p, HORIZONS[0]),
            "auroc_56d": td_auroc(y, p, HORIZONS[1]),
            "calibration_28d_gap": float(np.average(gap, weights=table["n"])) if gap.notna().all() else float("nan"),
            "relapses": float(y["event"].sum()), "n_courses": float(len(y))}


def integrated_brier(y: np.ndarray, curves: np.ndarray) -> float:
    """The IPCW integrated Brier score of relapse-free curves on :data:`GRID_DAYS` (NaN where under two grid
    days lie inside the follow-up)."""
    from sksurv.metrics import integrated_brier_score

    inside = (y["time"].min() <= GRID_DAYS) & (y["time"].max() > GRID_DAYS) & (HORIZONS[-1] >= GRID_DAYS)
    if inside.sum() < 2:
        return float("nan")
    try:
        return float(integrated_brier_score(y, y, curves[:, inside], GRID_DAYS[inside]))
    except ValueError:
        return float("nan")


def survival_bootstrap_ci(y: np.ndarray, p: np.ndarray, patients: np.ndarray, n_boot: int,
                          seed: int) -> dict[str, tuple[float, float]]:
    """95% percentile CIs from resampling whole patients (predictions held fixed, as for the other tasks); NaN
    intervals when *n_boot* is 0."""
    if n_boot == 0:
        return dict.fromkeys(SURVIVAL_CI_METRICS, (float("nan"), float("nan")))
    draws: dict[str, list[float]] = {m: [] for m in SURVIVAL_CI_METRICS}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a resample without a relapse at a horizon leaves that metric NaN
        for pick in patient_resamples(patients, n_boot, seed):
            values = averaged(survival_metrics, y[pick], np.atleast_2d(p)[:, pick])
            for m in SURVIVAL_CI_METRICS:
                draws[m].append(values[m])
    return {m: percentile_interval(np.asarray(v)) for m, v in draws.items()}


def brier_with_ci(y: np.ndarray, curves: list[np.ndarray], patients: np.ndarray, n_boot: int,
                  seed: int) -> tuple[float, tuple[float, float]]:
    """The integrated Brier score per CV repeat's curves, averaged, with its patient-bootstrap interval."""
    def mean_ibs(pick: np.ndarray) -> float:
        values = [integrated_brier(y[pick], c[pick]) for c in curves]
        return float(np.nanmean(values)) if not np.isnan(values).all() else float("nan")

    every = np.arange(len(y))
    if n_boot == 0:
        return mean_ibs(every), (float("nan"), float("nan"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        draws = np.array([mean_ibs(pick) for pick in patient_resamples(patients, n_boot, seed)])
        return mean_ibs(every), percentile_interval(draws)


def survival_subgroups(y: np.ndarray, p: np.ndarray, groups: dict[str, np.ndarray], min_n: int,
                       min_events: int) -> pd.DataFrame:
    """Per subgroup (sex, arm, site): courses, relapses, Harrell's C; counts only below *min_n* courses or
    *min_events* relapses."""
    rows: list[dict[str, Any]] = []
    for name, labels in groups.items():
        for level in pd.unique(labels):
            if pd.isna(level):
                continue
            m = labels == level
            small = m.sum() < min_n or y["event"][m].sum() < min_events
            rows.append({"subgroup": name, "level": str(level), "n": int(m.sum()), "relapses": int(y["event"][m].sum()),
                         "c_index": float("nan") if small else harrell_c(y[m], p[m]),
                         "observed_relapse_free_28d": float("nan") if small else km_at(y[m], HORIZONS[0])})
    return pd.DataFrame(rows)


def km_by_fifth(y: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """Kaplan-Meier relapse-free curves by fifth of predicted risk (for the report's figure): fifth, day,
    relapse-free probability, at every grid day."""
    edges = np.quantile(p, [0.2, 0.4, 0.6, 0.8])
    fifth = np.searchsorted(edges, p, side="right") if np.ptp(p) > 0 else np.zeros(len(p), int)
    rows = [{"fifth": int(k) + 1, "day": float(d), "relapse_free": km_at(y[fifth == k], d)}
            for k in np.unique(fifth) for d in np.r_[0.0, GRID_DAYS]]
    return pd.DataFrame(rows)
