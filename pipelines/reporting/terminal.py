"""What the terminal shows after a command: the short result table of a training run."""

from __future__ import annotations

import pandas as pd


def render_table(table: pd.DataFrame) -> str:
    """The short result table printed after training (AUROC, or R2 of the percentage change).

    The pooled value is the point estimate; the interval belongs to the mean over outer folds,
    shown beside it (pooling mixes the folds' models, so the two can differ).
    """
    h = "auroc" if "auroc" in table.columns else "r2_pct_change"
    extra = (("brier", "Brier", ".3f"), ("calibration_slope", "slope", ".2f"), ("balanced_accuracy", "bal.acc", ".3f")) \
        if h == "auroc" else (("rmse_pct_change", "RMSE %", ".1f"), ("calibration_slope_pct_change", "slope", ".2f"))
    name = "AUROC" if h == "auroc" else "R2 %chg"
    lines = [f"{'model':30s} {'pooled ' + name:>14s} {'fold mean (95% CI)':>28s} {'repeats':>17s} "
             + " ".join(f"{label:>7s}" for _, label, _ in extra) + f" {'perm p':>7s} {'B':>4s}"]
    for r in table.to_dict("records"):
        folds = f"{r[h + '_fold_mean']:.3f} ({r[h + '_ci_low']:.3f} to {r[h + '_ci_high']:.3f})"
        spread = f"{r[h + '_repeat_min']:.3f} to {r[h + '_repeat_max']:.3f}"
        lines.append(f"{r['model']:30s} {r[h]:>14.3f} {folds:>28s} {spread:>17s} "
                     + " ".join(f"{r[k]:7{f}}" for k, _, f in extra) + f" {r['permutation_p']:7.3f} {r['permutation_b']:4d}")
    planned = int(table["permutation_b"].max()) if len(table) else 0
    lines.append(f"perm p: whole procedure re-run on permuted labels, B permutations (0: constant predictor, p = 1); "
                 f"smallest possible p = 1/(B+1){f' = {1 / (planned + 1):.3f}' if planned else ''}")
    return "\n".join(lines)
