"""How often a harm happened on each arm (the tolerability table of a harm target's report).

Observed counts, not predictions: a reader weighing a drug against its harm needs the rate per arm before
any model of who is at risk. An arm with fewer harms than the policy's minimum shows counts only, as the
subgroup tables do: a rate of 2 in 40 would read as more certain than it is, and few events describe people.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import ACTIVE_ARMS

TOLERABILITY_COLUMNS = ("arm", "courses", "harms", "rate", "rate_ci_low", "rate_ci_high", "shown")


def _row(arm: str, y: np.ndarray, min_events: int) -> dict[str, object]:
    from statsmodels.stats.proportion import proportion_confint

    harms, n = int(y.sum()), len(y)
    shown = harms >= min_events
    low, high = proportion_confint(harms, n, method="wilson") if shown else (np.nan, np.nan)
    return {"arm": arm, "courses": n, "harms": harms, "rate": harms / n if shown else np.nan,
            "rate_ci_low": float(low), "rate_ci_high": float(high), "shown": shown}


def tolerability_by_arm(y: np.ndarray, treatments: np.ndarray, min_events: int) -> pd.DataFrame:
    """Per arm (drug arms first, then placebo and any other), then all arms: courses, harms observed, and the
    harm rate with its Wilson 95% CI; rate and CI withheld (NaN, ``shown`` False) below *min_events* harms."""
    arms = [a for a in (*ACTIVE_ARMS, "placebo") if (treatments == a).any()]
    arms += sorted(set(map(str, treatments)) - set(arms))
    rows = [_row(a, y[treatments == a], min_events) for a in arms]
    if len(arms) > 1:
        rows.append(_row("all arms", y, min_events))
    return pd.DataFrame(rows, columns=list(TOLERABILITY_COLUMNS))
