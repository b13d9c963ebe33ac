"""Assemble synthetic cohorts: covariates, courses, outcomes and safety, with the exact oracle."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.schema import COLUMNS, SPECS
from ketamine_response.features.synthetic.covariates import draw_patients, mask_missing, truncated_madrs
from ketamine_response.features.synthetic.durability import simulate_durability
from ketamine_response.features.synthetic.outcomes import planted_effect, rate_arm, simulate_outcomes, simulate_safety
from ketamine_response.features.synthetic.scenarios import Scenario, get_scenario
from ketamine_response.features.synthetic.tolerability import simulate_tolerability

CROSSOVER_SHARE = 0.15  # share of IV-site patients in a ketamine/placebo crossover
_INTEGER_COLUMNS = ("age", "period", "n_failed_treatments", "episode_duration_months", "shaps_baseline",
                    "cadss_40min", "sbp_change_mmhg", "madrs_baseline", "n_doses", "dose_mg", "days_to_relapse")


def n_sites_for(n: int) -> int:
    """More sites for bigger cohorts: 2 at n=60, 4 at n=300, 12 from n=2,300."""
    return int(np.clip(round(np.sqrt(n) / 4), 2, 12))


def _allocate(rng: np.random.Generator, n_rows: int, n_sites: int) -> tuple[np.ndarray, np.ndarray]:
    """Patient -> site and crossover flag such that the courses add up to exactly *n_rows*."""
    site = rng.integers(0, n_sites, n_rows)
    cross = (site % 3 != 2) & (rng.random(n_rows) < CROSSOVER_SHARE)
    rows = np.cumsum(1 + cross)
    k = int(np.searchsorted(rows, n_rows, side="right"))
    if k == 0 or rows[k - 1] < n_rows:  # the next patient would overshoot: make them single-course
        cross[k] = False
        k += 1
    return site[:k], cross[:k]


def _courses(rng: np.random.Generator, cov: dict[str, np.ndarray], cross: np.ndarray) -> dict[str, np.ndarray]:
    n = cross.size
    esk = cov["site"] % 3 == 2
    drug = np.where(esk, "esketamine_in", "ketamine_iv")
    share = np.where(esk, 0.5, 2 / 3)
    parallel = np.where(rng.random(n) < share, drug, "placebo")
    drug_first = rng.random(n) < 0.5
    patient = np.concatenate([np.arange(n), np.flatnonzero(cross)])
    first = np.where(cross, np.where(drug_first, drug, "placebo"), parallel)
    second = np.where(drug_first, "placebo", drug)[cross]
    order = np.lexsort((np.r_[np.ones(n), 2 * np.ones(cross.sum())], patient))
    courses = {k: v[patient][order] for k, v in cov.items()}
    courses["treatment"] = np.concatenate([first, second])[order]
    courses["period"] = np.concatenate([np.ones(n), 2 * np.ones(cross.sum())])[order]
    courses["patient_index"] = patient[order]
    courses["esk_site"] = esk[patient][order]
    again = courses["period"] == 2  # re-baselined before the second infusion
    rebase = truncated_madrs(rng, courses["madrs_baseline"])
    courses["madrs_baseline"] = np.where(again, rebase, courses["madrs_baseline"])
    courses["rate_arm"] = rate_arm(courses["treatment"], courses["esk_site"])
    return courses


def build_cohort(n: int, seed: int, scenario: str = "literature") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate *n* courses: the cohort table and its oracle (true probabilities per course).

    Parameters
    ----------
    n : int
        Number of rows (treatment courses); crossover patients contribute two.
    seed : int
        Seed of the random generator; the same arguments give the same table.
    scenario : str
        One of :data:`features.synthetic.scenarios.SCENARIOS`.
    """
    if n < 2:
        raise ValueError(f"a synthetic cohort needs at least 2 courses, got {n}")
    spec = get_scenario(scenario)
    rng = np.random.default_rng(seed)
    n_sites = n_sites_for(n)
    site, cross = _allocate(rng, n, n_sites)
    cov = draw_patients(rng, site.size, n_sites)
    cov["site"] = site
    shift = rng.normal(0.0, spec.site_sd, n_sites)
    # centred so each cohort's marginal rates sit on the published ones, whatever sites it drew
    cov["site_effect"] = (shift - shift.mean())[site]
    observed = mask_missing(rng, cov)
    courses = _courses(rng, cov, cross)
    # per course, after a second period's re-baselining: the truth is a function of what each row records
    courses["eta"] = planted_effect(spec, courses)
    courses["prognostic"] = planted_effect(spec, courses, "prognostic")
    courses["placebo_only"] = planted_effect(spec, courses, "placebo_only")
    madrs, oracle = simulate_outcomes(rng, spec, courses)
    ids = np.char.add("P", np.char.zfill(courses["patient_index"].astype(str), len(str(site.size))))
    table = {"patient_id": ids, "site": np.char.add("site_", np.char.zfill((courses["site"] + 1).astype(str), 2)),
             "treatment": courses["treatment"], "period": courses["period"],
             "synthetic": np.full(len(ids), f"{scenario} seed {seed}")}
    index = courses["patient_index"]
    for name in SPECS:
        if name in observed and name not in table and name != "madrs_baseline":
            table[name] = observed[name][index]
    table["madrs_baseline"] = courses["madrs_baseline"]
    if spec.durability is None:
        table |= madrs | simulate_safety(rng, courses)
    else:  # drawn after everything the other scenarios draw, so their cohorts stay as they were
        course, extra = _durability(rng, spec, courses, madrs)
        table |= madrs | course
        oracle |= extra
    cohort = _typed(pd.DataFrame(table))
    oracle_table = pd.DataFrame({"patient_id": ids, "treatment": courses["treatment"], **oracle}).round(6)
    return cohort, oracle_table


def _durability(rng: np.random.Generator, spec: Scenario, courses: dict[str, np.ndarray],
                madrs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The repeated-dose course, follow-up and tolerability columns, and their oracle."""
    course, oracle = simulate_durability(rng, spec, courses, madrs)
    dose_step = course.pop("dose_step")
    safety, harms = simulate_tolerability(rng, spec.name, courses, course["hypertension"], dose_step)
    return course | safety, oracle | harms


def _typed(table: pd.DataFrame) -> pd.DataFrame:
    # Whole-number columns as nullable integers so the CSV reads "30", not "30.0".
    for name in table.columns:
        if name in _INTEGER_COLUMNS or name.startswith("madrs_"):
            table[name] = pd.array(np.round(table[name].astype(float)), dtype="Int64")  # type: ignore[call-overload]
        elif name in SPECS and SPECS[name].kind == "binary":
            table[name] = pd.array(table[name].astype(float), dtype="Int64")  # type: ignore[call-overload]
    return table


def input_example(training_columns: tuple[str, ...], rows: int = 3) -> pd.DataFrame:
    """An input example made up by the generator (never a real course), in a model's input columns: what a
    logged model shows as its example, so no patient's row reaches the store."""
    example, _ = build_cohort(max(rows, 2), seed=0, scenario="durability")  # every optional column: the signature keeps them
    keep = [c.name for c in COLUMNS if c.role not in ("outcome", "safety", "provenance") and c.name in example.columns]
    keep += [c for c in training_columns if c.startswith("madrs_") and c in example.columns
             and c != "madrs_baseline" and c not in keep]
    example = example[keep].head(rows).copy()
    example["patient_id"] = [f"EXAMPLE-{i + 1}" for i in range(len(example))]
    for column in example.columns:
        if str(example[column].dtype) in ("Int64", "int64", "float64"):
            example[column] = example[column].astype("float64")  # NaN-tolerant numeric input
    return example


def data_origin(table: pd.DataFrame) -> str:
    """Whether a cohort was generated by ``synth`` (its files carry the ``synthetic`` marker column)."""
    marks = sorted(map(str, table["synthetic"].dropna().unique())) if "synthetic" in table else []
    return f"SYNTHETIC ({', '.join(marks)})" if marks else "no synthetic marker (treated as real data)"
