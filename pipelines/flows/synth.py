"""The ``synth`` flow: generate a synthetic cohort with known truth and write it; describe the scenarios."""

from __future__ import annotations

from pathlib import Path

from ketamine_response.features.cohort.formats import output_format_of
from ketamine_response.features.cohort.reader import refuse_overwriting, write_tables
from ketamine_response.features.synthetic.cohort import build_cohort
from ketamine_response.features.synthetic.durability_truth import CADSS_THRESHOLD, COURSE_DOSES, Durability
from ketamine_response.features.synthetic.scenarios import BENEFIT_SUITE, LITERATURE_RATES, NULL_FEATURES, SCENARIOS, EffectScale, Scenario


def write_synthetic(n: int, seed: int, scenario: str, out: str | Path,
                    oracle: str | Path | None = None) -> dict[str, int]:
    """Generate a cohort and write it (and optionally its oracle); returns row and patient counts."""
    output_format_of(Path(out))  # an unknown extension stops before generating
    if oracle is not None:
        output_format_of(Path(oracle))
    refuse_overwriting({"--out": out, "--oracle": oracle}, [])
    cohort, truth = build_cohort(n, seed, scenario)
    # together: a stop never leaves a new cohort beside an old oracle, or without its own
    write_tables({Path(out): cohort} | ({Path(oracle): truth} if oracle is not None else {}))
    return {"rows": len(cohort), "patients": int(cohort["patient_id"].nunique())}


def _effect_scale_line(s: Scenario) -> str:
    """How the drug's effect is planted: probit intercepts, or one constant effect on a risk scale."""
    if s.scale is EffectScale.RISK_DIFFERENCE:
        rule = f"p_drug = p_placebo {s.effect_size:+g} for every patient (constant risk difference)"
    elif s.scale is EffectScale.RISK_RATIO:
        rule = f"p_drug = {s.effect_size:g} x p_placebo for every patient (constant risk ratio)"
    elif s.scale is EffectScale.LOG_ODDS:
        rule = f"logit p_drug = logit p_placebo {s.effect_size:+g} for every patient (constant log odds ratio)"
    else:
        return "  drug effect scale: probit (drug intercepts solved to the rates)"
    return f"  drug effect scale: {s.scale.value}: {rule}, p_placebo = {s.placebo_ceiling:g} x Phi(predictor)"


def _durability_lines(d: Durability) -> list[str]:
    """The relapse and tolerability truth of a durability scenario."""
    prognostic = ", ".join(f"{k} {v:+.2f}" for k, v in d.prognostic.items()) or "none"
    modified = ", ".join(f"{k} {v:+.2f}" for k, v in d.drug_modified.items()) or "none"
    (t1, s1), (t2, s2) = d.maintained_relapse_free
    return [
        f"  courses: IV {COURSE_DOSES['iv']} infusions (end-of-course madrs_day14), esketamine {COURSE_DOSES['in']} sessions "
        "(madrs_day28); end-of-course responders followed for relapse (days_to_relapse, relapse_observed)",
        f"  relapse (Weibull proportional hazards): IV ketamine median {d.iv_median_days:g} days; esketamine relapse-free "
        f"{s1:.0%} at {t1:g} and {s2:.0%} at {t2:g} days; HR drug vs placebo {d.hr_drug_vs_placebo:g}; "
        f"follow-up {d.follow_up_days} days, {d.lost_by_end:.0%} lost",
        f"  relapse log-HR per SD, every arm: {prognostic}",
        f"  relapse log-HR per SD, drug arms only: {modified}",
        f"  tolerability (probit, label rates): dissociation = cadss_40min >= {CADSS_THRESHOLD}, SBP rise >= 40 mmHg, nausea; "
        "driven by age, BMI, hypertension, dose and drug",
    ]


def describe_scenarios() -> str:
    """The planted truth of every scenario as a plain-text table (``synth --describe``)."""
    lines = []
    for s in SCENARIOS.values():
        lines.append(f"{s.name}: {s.description}")
        if s.name in BENEFIT_SUITE:
            lines.append("  in the benefit suite: where benefit comes from, with its oracle (benchmarks/benefit_learners.py)")
        lines.append(f"  prior ECT scales the drug effect by {s.prior_ect_drug_scale:g}; site SD {s.site_sd:g} "
                     f"(probit); timepoint correlation {s.timepoint_correlation:g}")
        effects = ", ".join(f"{k} {v:+.2f}" for k, v in s.effects.items()) or "none"
        lines.append(f"  predictive effects, drug arms only (probit per SD): {effects}")
        prognostic = ", ".join(f"{k} {v:+.2f}" for k, v in s.prognostic.items()) or "none"
        lines.append(f"  prognostic effects, every arm (probit per SD): {prognostic}")
        if s.placebo_only:
            placebo_only = ", ".join(f"{k} {v:+.2f}" for k, v in s.placebo_only.items())
            lines.append(f"  placebo-only effects, placebo arms only (probit per SD): {placebo_only}")
        lines.append(_effect_scale_line(s))
        if s.durability is not None:
            lines += _durability_lines(s.durability)
        changed = {k: v for k, v in s.rates.items() if LITERATURE_RATES.get(k) != v}
        if s.name == "literature" or changed:
            rates = s.rates if s.name == "literature" else changed
            lines.append("  response / remission (threshold) by arm and timepoint"
                         + ("" if s.name == "literature" else ", where different from literature") + ":")
            lines += [f"    {arm:14s} {tp:6s} {r:.3f} / {m:.3f} (<= {t})" for (arm, tp), (r, m, t) in rates.items()]
    lines.append("null features in every scenario (no effect on response; age and sex drive tolerability in the durability "
                 "scenarios): " + ", ".join(NULL_FEATURES))
    return "\n".join(lines)
