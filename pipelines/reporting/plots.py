"""Figures of a training run. Each function returns a matplotlib Figure; nothing is shown."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ketamine_response.features.tasks import HORIZONS, TaskKind
from ketamine_response.pipelines.evaluation.evaluate import Evaluation
from ketamine_response.pipelines.evaluation.metrics import auroc
from ketamine_response.pipelines.evaluation.survival import km_by_fifth


def titled_figure(title: str):
    """A new (Figure, Axes) of the report's size with *title*, drawn off-screen (Agg): every report figure
    starts here, so they share one look."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5, 4.5), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=10)
    return fig, ax


def roc_figure(curves: list[tuple[np.ndarray, np.ndarray, str]]) -> object:
    """ROC curves of out-of-fold probabilities, one per (y, p, legend) in *curves* (the drug arm first, solid;
    all arms after it, dashed), with the chance line."""
    from sklearn.metrics import roc_curve

    fig, ax = titled_figure("ROC, out of fold" + (": drug arm(s) first" if len(curves) > 1 else ""))
    for i, (y, p, label) in enumerate(curves):
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, label=label, ls="-" if i == 0 else "--", alpha=1.0 if i == 0 else 0.7)
    ax.plot([0, 1], [0, 1], ls=":", color="grey", label="chance")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _deciles(y: np.ndarray, p: np.ndarray, bins: int) -> pd.DataFrame:
    frame = pd.DataFrame({"y": y, "p": p})
    frame["bin"] = pd.qcut(frame["p"].rank(method="first"), q=min(bins, len(frame)), labels=False)
    return frame.groupby("bin").agg(predicted=("p", "mean"), observed=("y", "mean"), n=("y", "size"))


def calibration_figure(y: np.ndarray, p: np.ndarray, bins: int = 10, metrics: dict[str, float] | None = None,
                       observed: str = "response rate", drug: np.ndarray | None = None) -> object:
    """Reliability plot: observed rate per decile of predicted probability, with the loess calibration curve of the
    same (repeat-averaged) predictions, on the drug-arm courses (*drug*) where given, the deciles of all arms
    after them (labelled); *metrics* (the evaluation's, per CV repeat then averaged) put the drug arm's slope and
    intercept, or the pooled ICI, E50 and E90, in the legend."""
    from ketamine_response.pipelines.evaluation.metrics import has_calibration_curve, loess_calibration

    first = drug if drug is not None and drug.any() else np.ones(len(y), bool)
    where = "drug arm(s)" if drug is not None and drug.any() else "all arms"
    fig, ax = titled_figure(f"Calibration, out of fold: {where}")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect")
    table = _deciles(y[first], p[first], bins)
    ax.plot(table["predicted"], table["observed"], marker="o", label=f"deciles, {where}")
    if has_calibration_curve(y[first], p[first]):  # no curve without spread or one class
        order = np.argsort(p[first], kind="stable")
        ax.plot(p[first][order], loess_calibration(y[first], p[first])[order], color="#C44E52", label=f"loess, {where}")
    if where != "all arms":
        pooled = _deciles(y, p, bins)
        ax.plot(pooled["predicted"], pooled["observed"], marker=".", ls="--", color="grey", alpha=0.7,
                label="deciles, all arms")
    ax.plot([], [], ls="none", label=_calibration_legend(metrics or {}, where))
    ax.set(xlabel="predicted probability", ylabel=f"observed {observed}", xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)
    return fig


def _calibration_legend(m: dict[str, float], where: str) -> str:
    """The calibration figures the legend names: the metric names' own values (per CV repeat, averaged)."""
    if where != "all arms" and not np.isnan(m.get("calibration_slope_active", np.nan)):
        return (f"drug arm(s): slope {m['calibration_slope_active']:.2f}, intercept "
                f"{m['calibration_intercept_active']:.2f}\n(per CV repeat, averaged)")
    if not np.isnan(m.get("calibration_ici", np.nan)):
        return (f"all arms: ICI {m['calibration_ici']:.3f}, E50 {m['calibration_e50']:.3f}, "
                f"E90 {m['calibration_e90']:.3f}\n(per CV repeat, averaged)")
    return "no calibration slope (no spread)"


def decision_curve_figure(curve: pd.DataFrame, where: str = "all arms") -> object:
    """Net benefit of predicting response against flagging everyone and no one, on the courses *where* names.

    A response-prediction curve, not a treatment decision: its "none" counts no responses, whereas untreated
    patients respond on placebo; the treatment-selection curve (:func:`treatment_selection_figure`) counts them."""
    fig, ax = titled_figure(f"Response-prediction decision curve: {where}\n(not a treatment decision: "
                            "see the treatment-selection curve)")
    ax.plot(curve["threshold"], curve["model"], label="model")
    ax.plot(curve["threshold"], curve["treat_all"], label="all predicted responders", color="grey")
    ax.plot(curve["threshold"], curve["treat_none"], label="none (ignores placebo response)", color="black", ls=":")
    top = max(curve["model"].max(), curve["treat_all"].max(), 0.05)
    ax.set(xlabel="threshold probability", ylabel="net benefit", ylim=(-0.05, top * 1.1))
    ax.legend(loc="upper right", fontsize=8)
    return fig


def treatment_selection_figure(curve: pd.DataFrame, arm: str) -> object:
    """Treat by predicted benefit vs treat all vs treat none, in responses gained per 100 patients over placebo
    (``drug_arm.treatment_selection_curve``: doubly robust), with its 95% patient-bootstrap band where it has one."""
    fig, ax = titled_figure(f"Treatment selection: {arm} vs placebo")
    ax.plot(curve["benefit_threshold"] * 100, curve["treat_by_benefit"], label="treat if predicted benefit > threshold")
    if "treat_by_benefit_ci_low" in curve:
        ax.fill_between(curve["benefit_threshold"] * 100, curve["treat_by_benefit_ci_low"],
                        curve["treat_by_benefit_ci_high"], alpha=0.2, label="95% CI (patient bootstrap)")
    ax.plot(curve["benefit_threshold"] * 100, curve["treat_all"], label=f"treat all with {arm}", color="grey")
    ax.plot(curve["benefit_threshold"] * 100, curve["treat_none"], label="treat none (placebo)", color="black", ls=":")
    ax.set(xlabel="benefit needed to treat (percentage points)", ylabel="net responses gained per 100 patients")
    ax.legend(loc="upper right", fontsize=8)
    return fig


def predicted_observed_figure(y: np.ndarray, p: np.ndarray, label: str) -> object:
    """Observed against predicted percentage change, with the identity line (continuous calibration)."""
    fig, ax = titled_figure(f"Predicted vs observed: {label}")
    ax.scatter(p, y, s=8, alpha=0.4, color="#4C72B0")
    low, high = float(min(p.min(), y.min())), float(max(p.max(), y.max()))
    ax.plot([low, high], [low, high], ls="--", color="grey", label="perfect")
    ax.set_xlabel("predicted % change in MADRS (out of fold)")
    ax.set_ylabel("observed % change in MADRS")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def km_figure(curves: pd.DataFrame) -> object:
    """Kaplan-Meier relapse-free curves by fifth of predicted 28-day relapse risk (``survival.km_by_fifth``)."""
    fig, ax = titled_figure("Relapse-free by fifth of predicted risk (out of fold)")
    last = int(curves["fifth"].max())
    colours = matplotlib_colours(last)
    for fifth in range(1, last + 1):
        group = curves[curves["fifth"] == fifth]
        if len(group):  # a fifth can be missing where predictions tie
            ax.step(group["day"], group["relapse_free"], where="post", color=colours[fifth - 1],
                    label=f"fifth {fifth}" + (" (lowest risk)" if fifth == 1 else " (highest risk)" if fifth == last else ""))
    ax.set(xlabel="days after the response", ylabel="relapse-free (Kaplan-Meier)", ylim=(0, 1.02))
    ax.legend(loc="upper right", fontsize=8)
    return fig


def matplotlib_colours(n: int) -> list[tuple[float, ...]]:
    """*n* colours from low (dark blue) to high (orange) risk, none too pale to see on white."""
    from matplotlib import colormaps

    return [colormaps["plasma"](0.8 * i / max(n - 1, 1)) for i in range(n)]


def calibration_28d_figure(table: pd.DataFrame, day: int) -> object:
    """Predicted against Kaplan-Meier observed relapse by *day*, per fifth of predicted risk (the evaluation's table)."""
    fig, ax = titled_figure(f"Calibration at {day} days, by fifth of predicted risk")
    top = float(max(table["predicted_relapse_28d"].max(), table["observed_relapse_28d"].max(), 0.1)) * 1.1
    ax.plot([0, top], [0, top], ls="--", color="grey", label="perfect")
    ax.plot(table["predicted_relapse_28d"], table["observed_relapse_28d"], marker="o", label="fifths (out of fold)")
    ax.set(xlabel=f"predicted relapse by day {day}", ylabel=f"observed relapse by day {day} (1 - Kaplan-Meier)",
           xlim=(0, top), ylim=(0, top))
    ax.legend(loc="upper left", fontsize=8)
    return fig


def performance_figures(y: np.ndarray, p: np.ndarray, evaluation: Evaluation, label: str,
                        drug: np.ndarray | None = None) -> dict[str, Any]:
    """ROC, reliability and decision-curve figures (on the drug-arm courses, *drug*, first; the legends print the
    evaluation's own values of the names they show); predicted vs observed for a continuous target; Kaplan-Meier
    curves and calibration at 28 days by fifth of predicted risk for a time to relapse (ROC, reliability and
    decision curve need a binary outcome observed for everyone, which censoring rules out)."""
    if evaluation.task.kind is TaskKind.SURVIVAL:  # y is (event, time)
        return {"plots/km_by_fifth.png": km_figure(km_by_fifth(y, p)),
                "plots/calibration_28d.png": calibration_28d_figure(evaluation.curve, HORIZONS[0])}
    if not evaluation.task.probabilities:
        h = evaluation.headline
        return {"plots/predicted_vs_observed.png": predicted_observed_figure(y, p, f"{label} ({h} {evaluation.metrics[h]:.3f})")}
    rate = "harm rate" if evaluation.task.kind is TaskKind.HARM else "response rate"
    m = evaluation.metrics
    # the curve drawn is of the predictions averaged over repeats (and, in the drug arm, of both drugs pooled): its
    # area is not the table's AUROC (per repeat, within each drug), so the legend gives both, each named for what it is
    curves = [(y, p, f"all arms: {label}, AUROC {m['auroc']:.3f}\n(area under the curve drawn {auroc(y, p):.3f})")]
    if drug is not None and "auroc_active" in m:  # the drug arm first; the pooled curve stays, labelled
        curves.insert(0, (y[drug], p[drug], f"drug arm(s): {label}, AUROC {m['auroc_active']:.3f}\n"
                                            f"(area under the curve drawn, drugs pooled {auroc(y[drug], p[drug]):.3f})"))
    active = not evaluation.curve_active.empty
    return {"plots/roc.png": roc_figure(curves),
            "plots/calibration.png": calibration_figure(y, p, metrics=m, observed=rate,
                                                        drug=drug if "auroc_active" in m else None),
            "plots/decision_curve.png": decision_curve_figure(evaluation.curve_active if active else evaluation.curve,
                                                              "drug arm(s)" if active else "all arms")}


def path_figure(table: pd.DataFrame, arm: str) -> object:
    """PATH risk-modelling view: observed benefit by quarter of predicted placebo-arm risk, with 95% CIs."""
    fig, ax = titled_figure(f"Benefit by baseline risk: {arm} vs placebo")
    shown = table[table["shown"].astype(bool)]
    ax.errorbar(shown["predicted_placebo_risk"], shown["observed_benefit"],
                yerr=[shown["observed_benefit"] - shown["observed_ci_low"], shown["observed_ci_high"] - shown["observed_benefit"]],
                marker="o", ls="-", capsize=3, label="quarters of predicted placebo risk (95% CI)")
    hidden = table[~table["shown"].astype(bool)]  # too few responders: counts, not a rate
    if len(hidden):
        lines = [f"Q{r.risk_quarter}: drug {r.responders_drug}/{r.n_drug}, placebo {r.responders_placebo}/{r.n_placebo}"
                 for r in hidden.itertuples()]
        ax.text(0.98, 0.02, "withheld (responders/courses):\n" + "\n".join(lines), transform=ax.transAxes,
                ha="right", va="bottom", fontsize=7)
    ax.axhline(0, color="black", lw=0.5)
    ax.set(xlabel="predicted response on placebo (cross-fitted)", ylabel="observed: drug rate - placebo rate")
    ax.legend(loc="upper left", fontsize=8)
    return fig


def benefit_calibration_figure(table: pd.DataFrame, arm: str) -> object:
    """Observed vs predicted benefit of the drug over placebo by quantile group, with 95% CIs."""
    fig, ax = titled_figure(f"Calibration for benefit: {arm} vs placebo")
    low, high = table["observed_ci_low"].min(), table["observed_ci_high"].max()
    span = [min(low, table["predicted_benefit"].min(), 0), max(high, table["predicted_benefit"].max(), 0)]
    ax.plot(span, span, ls="--", color="grey", label="perfect")
    ax.errorbar(table["predicted_benefit"], table["observed_benefit"],
                yerr=[table["observed_benefit"] - table["observed_ci_low"], table["observed_ci_high"] - table["observed_benefit"]],
                marker="o", ls="none", capsize=3, label="quantile groups (95% CI)")
    ax.axhline(0, color="black", lw=0.5)
    ax.set(xlabel="predicted benefit (out of fold)", ylabel="observed: drug rate - placebo rate")
    ax.legend(loc="upper left", fontsize=8)
    return fig
