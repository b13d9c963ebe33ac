"""Benchmark: does the benefit model find benefit wherever it comes from, against plain learners?

``python benchmarks/benefit_learners.py [N] [SEEDS] [--quick]`` on the 2-core machine; the README reports
the result. For each scenario of the benefit suite (``BENEFIT_SUITE``: drug-arm modifiers, a constant
log-odds effect, a constant risk difference, placebo-driven heterogeneity, no effect at all) and each
seed, an N-course cohort (default 1,400) is drawn, and on its ketamine-vs-placebo courses (target
``response_24h``):

* **project**: ``train`` with the shipped default config (permutation test off: it does not touch
  the benefit model), its final benefit model; ``--quick`` fits the benefit selection on all courses
  without the outer cross-validation and reports the chosen learner unrescaled (the rescaling needs the
  outer folds; Spearman is the same, the SD is not), and the S-learner's drug-arm SD: for development;
* **S-EN**: one elastic-net logistic model (scikit-learn ``LogisticRegressionCV``, l1_ratio 0.5, penalty
  by 5-fold log-loss) on the features, the arm and centred feature x arm terms;
* **T-EN**: the same model fitted per arm;
* **DR**: econml's ``DRLearner`` (elastic-net logistic outcome models, allocation-ratio propensity, its
  default linear final stage).

Each predicts the benefit of a fresh 5,000-course cohort of the same scenario, which is compared with
the oracle: Spearman(predicted, true benefit) and the SD of the prediction (the truth's SD beside it).
For the project, also the SD of its predicted drug-arm probability, the c-for-benefit CI and whether the
run said "no heterogeneity predicted" (full mode only).
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

TARGET = "response_24h"
ARM = "ketamine_iv"


def _data(scenario: str, n: int, seed: int, config):
    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.pipelines.flows.train import build_training_data

    cohort, _ = build_cohort(n, seed, scenario)
    return cohort, build_training_data(validate_table(cohort, "benchmark"), TARGET, config, False)[0]


def _fresh(scenario: str, columns: list[str]):
    """Fresh IV-site courses: (validated table, feature matrix, true benefit)."""
    from ketamine_response.features.build import build_feature_table
    from ketamine_response.features.cohort.validation import validate_table
    from ketamine_response.features.synthetic.cohort import build_cohort
    from ketamine_response.features.tasks import parse_target

    cohort, oracle = build_cohort(5_000, 424242, scenario)
    iv = oracle[f"benefit_24h_{ARM}"].notna().to_numpy()
    # the benefit takes no treatment: the arm columns are set inside the learners
    table = validate_table(cohort[iv].reset_index(drop=True), "fresh").table
    frame = build_feature_table(table, parse_target(TARGET)).frame
    return table, frame[columns].assign(**{c: 0.0 for c in columns if c.startswith("arm_")}), \
        oracle.loc[iv, f"benefit_24h_{ARM}"].to_numpy()


def _iv(data):
    rows = np.isin(data.treatments, [ARM, "placebo"]) & np.isin(data.sites, np.unique(data.sites[data.treatments == ARM]))
    return data.take(np.flatnonzero(rows)), (data.treatments[rows] == ARM).astype(int)


def _en():
    from sklearn.linear_model import LogisticRegressionCV

    return LogisticRegressionCV(Cs=10, l1_ratios=[0.5], solver="saga", max_iter=3000, cv=5, scoring="neg_log_loss")


def _baselines(data, X_new) -> dict[str, np.ndarray]:
    """The plain learners' predicted benefit of the fresh courses."""
    from econml.dr import DRLearner
    from sklearn.linear_model import LogisticRegression

    from ketamine_response.models.benefit import covariates, numeric_pipeline

    sub, t = _iv(data)
    numeric = numeric_pipeline().fit(covariates(sub.X))
    x, x_new = numeric.transform(covariates(sub.X)), numeric.transform(covariates(X_new))
    centre = x.mean(axis=0)

    def s_design(z: np.ndarray, arm: np.ndarray) -> np.ndarray:
        return np.column_stack([z, arm, (z - centre) * arm[:, None]])

    s = _en().fit(s_design(x, t), sub.y)
    ones, zeros = np.ones(len(x_new)), np.zeros(len(x_new))
    out = {"S-EN": s.predict_proba(s_design(x_new, ones))[:, 1] - s.predict_proba(s_design(x_new, zeros))[:, 1]}
    drug, placebo = _en().fit(x[t == 1], sub.y[t == 1]), _en().fit(x[t == 0], sub.y[t == 0])
    out["T-EN"] = drug.predict_proba(x_new)[:, 1] - placebo.predict_proba(x_new)[:, 1]
    dr = DRLearner(model_propensity=LogisticRegression(C=1e-6), model_regression=_en(), discrete_outcome=True, cv=5,
                   random_state=0).fit(sub.y.astype(int), t, X=x)
    out["DR"] = np.clip(np.ravel(dr.effect(x_new)), -1, 1)
    return out


def _project(cohort, data, config, quick: bool, tmp: Path, X_new, table_new, truth):
    """The project's predicted benefit of the fresh courses, the SD of its drug-arm probability, and its run's words."""
    from ketamine_response.pipelines.training.benefit import comparisons, fit_selected

    if quick:
        c = next(c for c in comparisons(data)[0] if c.arm == ARM)
        chosen, fitted, _ = fit_selected(data, c, config.benefit.learners, config.cv.inner_folds, config.seed,
                                         config.benefit.propensity)
        from scipy.stats import spearmanr

        parts = " ".join(f"{k} {spearmanr(m.effect(X_new), truth)[0]:+.2f}" for k, m in fitted.items()
                         if np.ptp(truth) > 0 and np.ptp(m.effect(X_new)) > 0)
        return (fitted[chosen].effect(X_new), float(np.std(fitted["s_learner"].probabilities(X_new)[0])), chosen,
                parts)
    from ketamine_response.features.cohort.reader import write_table
    from ketamine_response.pipelines.flows.train import run_train

    path = tmp / "cohort.csv"
    write_table(cohort, path)
    result = run_train(path, TARGET, config, "benchmark-benefit-learners")
    arms = result.model.arm_table(table_new)
    s = next(s for s in result.benefit.summaries if s.arm == ARM)
    ci = f"{s.c_for_benefit[1]:.2f}-{s.c_for_benefit[2]:.2f}" if s.varies else "none"
    blp = s.heterogeneity.blp_p if s.heterogeneity is not None else float("nan")
    return (arms[f"predicted_benefit_{ARM}"].to_numpy(), float(arms[f"probability_{ARM}"].std()),
            s.learner, f"c-for-benefit CI {ci}; BLP p {blp:.3f}; heterogeneity {s.verdict.value}")


def _rho(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Spearman(predicted, true benefit); NaN where either is constant."""
    from scipy.stats import spearmanr

    return float(spearmanr(predicted, truth)[0]) if np.ptp(predicted) > 1e-9 and np.ptp(truth) > 1e-9 else float("nan")


def main(n: int, seeds: int, quick: bool) -> None:
    from ketamine_response.features.synthetic.scenarios import BENEFIT_SUITE
    from ketamine_response.pipelines.config import load_config

    base = load_config()
    config = dataclasses.replace(base, evaluation=dataclasses.replace(base.evaluation, permutations=0))
    print(f"{n} courses, fresh 5,000; Spearman with the true benefit (SD of prediction); project: learner, SD of its "
          "drug-arm probability, run's verdict")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        for scenario in [a for a in sys.argv[1:] if a in BENEFIT_SUITE] or BENEFIT_SUITE:
            for seed in range(seeds):
                start = time.perf_counter()
                cohort, data = _data(scenario, n, 500 + seed, config)
                table_new, X_new, truth = _fresh(scenario, list(data.X.columns))
                predictions = _baselines(data, X_new)
                project, p_sd, learner, verdict = _project(cohort, data, config, quick, Path(tmp), X_new, table_new, truth)
                predictions = {"project": project} | predictions
                cells = "  ".join(f"{k} {_rho(v, truth):+.3f} ({np.std(v):.3f})" for k, v in predictions.items())
                print(f"{scenario:25s} seed {seed} truth SD {np.std(truth):.3f}  {cells}  | {learner}, drug-arm p SD "
                      f"{p_sd:.3f} {verdict} [{time.perf_counter() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    main(int(args[0]) if args else 1400, int(args[1]) if len(args) > 1 else 1, "--quick" in sys.argv)
