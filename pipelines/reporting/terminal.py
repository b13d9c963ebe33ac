"""What the terminal shows after a command: the short result table of a training run."""

from __future__ import annotations

import pandas as pd


def render_table(table: pd.DataFrame) -> str:
    """The short result table printed after training."""
    lines = [f"{'model':30s} {'AUROC (95% CI)':>22s} {'Brier':>7s} {'slope':>6s} {'bal.acc':>7s} {'perm p':>7s}"]
    for r in table.itertuples():
        auc = f"{r.auroc:.3f} ({r.auroc_ci_low:.3f}-{r.auroc_ci_high:.3f})"
        lines.append(f"{r.model:30s} {auc:>22s} {r.brier:7.3f} {r.calibration_slope:6.2f} "
                     f"{r.balanced_accuracy:7.3f} {r.permutation_p:7.3f}")
    return "\n".join(lines)
