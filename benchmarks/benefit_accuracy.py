"""Benchmark: response if given the drug, benefit over placebo and biomarker roles on cohorts with a known truth.

``python benchmarks/benefit_accuracy.py [SEEDS] [--speed]`` on the 2-core machine; the README reports
the result. For each seed, the shipped default config (permutation test off: it does not touch
these figures) trains on an 800-course ``benefit`` cohort (four planted drug-arm modifiers, two
prognostic factors, nulls) and on an 800-course ``constant_effect`` cohort (no modifier at all), target
``response_24h``. Then, on a fresh 10,000-course cohort of the same scenario:

* the response model's AUROC within the drug arm against its out-of-fold ``auroc_active``;
* the Spearman correlation of the final benefit model's prediction with the true benefit (oracle);
* roles (log-odds scale, `role_log_odds`): planted modifiers called predictive/both (of 4), and prognostic or null
  features called so.

``--speed`` also times ``train`` at 1,000 ``literature`` courses with the default config, with and
without the benefit model.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
warnings.filterwarnings("ignore")

PREDICTIVE = {"family_history_aud", "bmi_kg_m2", "benzodiazepine", "bdnf_met_carrier"}
PROXIES = {"obese", "bdnf_met_alleles"}  # derived from a planted modifier: not a false discovery
PROGNOSTIC = {"n_failed_treatments", "madrs_baseline", "madrs_severity_band", "maudsley_staging_score"}
TARGET = "response_24h"


def _train(scenario: str, n: int, seed: int, config, tmp: Path):
    from ketamine_response.features.cohort.reader import write_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.pipelines.flows.train import run_train

    cohort, _ = build_cohort(n, seed, scenario)
    path = tmp / f"{scenario}-{seed}.csv"
    write_table(cohort, path)
    return run_train(path, TARGET, config, "benchmark-benefit")


def _fresh(result, scenario: str) -> tuple[float, float]:
    """(AUROC within the drug arm, Spearman with the true benefit) of the final models on 10,000 new courses."""
    from scipy.stats import spearmanr

    from ketamine_response.features.build import build_feature_table
    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.features.tasks import parse_target
    from ketamine_response.pipelines.evaluation.metrics import auroc

    cohort, oracle = build_cohort(10_000, 424242, scenario)
    table = validate_table(cohort, "fresh").table
    y = build_feature_table(table, parse_target(TARGET)).frame[TARGET]
    drug = (y.notna() & (table["treatment"] == "ketamine_iv")).to_numpy()
    model = result.model
    auc = auroc(y[drug].to_numpy(), model.predict_table(table[drug]))
    iv = table["site"].isin(model.sites).to_numpy() & (oracle["p_response_24h_ketamine_iv"].notna().to_numpy())
    benefit = model.arm_table(table[iv])["predicted_benefit_ketamine_iv"].to_numpy()
    return auc, float(spearmanr(benefit, oracle.loc[iv, "benefit_24h_ketamine_iv"])[0])


def _roles(result) -> tuple[int, list[str]]:
    roles = result.benefit.roles
    called = set(roles.loc[roles["role_log_odds"].isin(["predictive", "both"]), "feature"])
    return len(called & PREDICTIVE), sorted(called - PREDICTIVE - PROXIES)


def main(seeds: int, speed: bool) -> None:
    from ketamine_response.pipelines.config import load_config

    base = load_config()
    config = dataclasses.replace(base, evaluation=dataclasses.replace(base.evaluation, permutations=0))
    print(f"{'seed':>4} {'auroc_active OOF':>16} {'fresh':>6} {'diff':>6} {'Spearman':>8} {'c-for-benefit (95% CI)':>24} "
          f"{'learner':>10} {'hits/4':>6} {'false predictive':>18} {'constant: predictive':>21}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        rows = []
        for seed in range(seeds):
            result = _train("benefit", 800, 100 + seed, config, Path(tmp))
            oof = result.evaluations["selected"].metrics["auroc_active"]
            fresh, rho = _fresh(result, "benefit")
            hits, false = _roles(result)
            constant = _roles(_train("constant_effect", 800, 100 + seed, config, Path(tmp)))[1]
            c = result.benefit.primary
            ci = f"{c.c_for_benefit[0]:.3f} ({c.c_for_benefit[1]:.3f}-{c.c_for_benefit[2]:.3f})"
            rows.append((abs(oof - fresh), rho, hits, len(false), len(constant)))
            print(f"{seed:>4} {oof:>16.3f} {fresh:>6.3f} {oof - fresh:>+6.3f} {rho:>8.3f} {ci:>24} {c.learner:>10} "
                  f"{hits:>6} {', '.join(false) or '-':>18} {', '.join(constant) or '-':>21}", flush=True)
        a = np.array(rows, dtype=float)
        print(f"mean |OOF - fresh| {a[:, 0].mean():.3f} (max {a[:, 0].max():.3f}); Spearman mean {a[:, 1].mean():.3f} "
              f"(min {a[:, 1].min():.3f}); >= 3 of 4 modifiers found in {int((a[:, 2] >= 3).sum())}/{seeds}; "
              f"cohorts with a false predictive call: {int((a[:, 3] > 0).sum())}/{seeds} (benefit), "
              f"{int((a[:, 4] > 0).sum())}/{seeds} (constant effect)")
        if speed:
            for enabled in (False, True):
                timed = dataclasses.replace(base, benefit=dataclasses.replace(base.benefit, enabled=enabled))
                start = time.perf_counter()
                _train("literature", 1000, 7, timed, Path(tmp))
                print(f"train, 1,000 literature courses, default config, benefit model {'on ' if enabled else 'off'}: "
                      f"{time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--speed"]
    main(int(args[0]) if args else 5, "--speed" in sys.argv)
