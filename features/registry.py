"""The one explicit registry of per-course derivations (tier 1: nothing learnt from data).

Each entry names its function, the columns it reads, the columns it returns, the unit,
the domain and a one-line rationale with its source. A candidate is not a proven
predictor: the rationale says when the evidence did not replicate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from ketamine_response.features.cohort.schema import ARM_COLUMNS, spec_for, timepoint_minutes
from ketamine_response.features.derivations import clinical as cl
from ketamine_response.features.derivations import inflammatory as inf
from ketamine_response.features.derivations import kynurenine as ky
from ketamine_response.features.derivations import neurotrophic as nt
from ketamine_response.features.derivations import pharmacological as ph
from ketamine_response.features.derivations.early_course import madrs_pct_change
from ketamine_response.features.derivations.pharmacological import treatment_arm_indicators

Derivation = Callable[[pd.DataFrame], pd.DataFrame]


@dataclass(frozen=True)
class Feature:
    """One registered derivation.

    ``requires`` lists alternative sets of input columns, any one of which suffices
    (default: all ``inputs``).
    """

    name: str
    func: Derivation
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    unit: str
    domain: str
    rationale: str
    requires: tuple[tuple[str, ...], ...] = ()

    def available(self, columns: set[str]) -> bool:
        """Whether the cohort has the inputs this derivation needs."""
        return any(set(need) <= columns for need in (self.requires or (self.inputs,)))

    def measured_after(self) -> int:
        """Minutes after dosing of the latest input (-1 for baseline-only features)."""
        times = [timepoint_minutes(s.timepoint) for s in map(spec_for, self.inputs) if s and s.timepoint]
        return max(times, default=-1)

    def allowed_for(self, target_minutes: int) -> bool:
        """Leakage guard: no safety column, and every post-dose input measured strictly before the target."""
        reads_safety = any(s is not None and s.role == "safety" for s in map(spec_for, self.inputs))
        return not reads_safety and self.measured_after() < target_minutes


def identity(column: str) -> Derivation:
    """A derivation returning *column* unchanged, as float."""
    def derive(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({column: df[column].astype("float64")}, index=df.index)

    derive.__name__ = column
    return derive


def _raw(column: str, unit: str, domain: str, rationale: str) -> Feature:
    return Feature(column, identity(column), (column,), (column,), unit, domain, rationale)


_CLINICAL = "clinical"
_PHARM = "pharmacological"

STATIC_FEATURES: tuple[Feature, ...] = (
    Feature("bmi_kg_m2", cl.bmi_kg_m2, ("bmi", "weight_kg", "height_cm"), ("bmi_kg_m2",), "kg/m2", _CLINICAL,
            "+ higher BMI, more improvement at 230 min/day 1 (std beta 0.30-0.37, Niciu 2014); not a moderator vs ECT (ELEKT-D)",
            requires=(("bmi",), ("weight_kg", "height_cm"))),
    Feature("obese", cl.obese, ("bmi", "weight_kg", "height_cm"), ("obese",), "0/1", _CLINICAL,
            "+ overweight/obesity in a CART response tree (AUC 0.74, n=73, JAD 2021); single study",
            requires=(("bmi",), ("weight_kg", "height_cm"))),
    _raw("madrs_baseline", "points", _CLINICAL,
         "- higher severity predicted non-response in a CART tree (JAD 2021); uniform response across severity in real-world data (McInnes 2022)"),
    Feature("madrs_severity_band", cl.madrs_severity_band, ("madrs_baseline",), ("madrs_severity_band",),
            "0-3", _CLINICAL, "severity band (Mueller 2003 cut-offs); banded form of the baseline-severity candidate"),
    Feature("maudsley_staging_score", cl.maudsley_staging_score,
            ("n_failed_treatments", "episode_duration_months", "madrs_baseline", "lithium", "prior_ect"),
            ("maudsley_staging_score",), "3-15", _CLINICAL,
            "treatment-resistance stage (Fekadu 2009); number of failed trials moderates ketamine effect in IPD (Price 2022, direction not stated)",
            requires=(("n_failed_treatments", "episode_duration_months", "madrs_baseline"),)),
    _raw("n_failed_treatments", "count", _CLINICAL, "resistance level moderates effect in IPD (Price 2022, S*); direction unconfirmed"),
    Feature("log_episode_duration_months", cl.log_episode_duration_months, ("episode_duration_months",),
            ("log_episode_duration_months",), "ln months", _CLINICAL, "- longer current episode, less response (CART, JAD 2021); single study"),
    _raw("illness_duration_years", "years", _CLINICAL, "chronicity; no consistent association reported"),
    _raw("age", "years", _CLINICAL, "not a moderator (Price 2022 IPD; Freeman 2019): expected null"),
    Feature("sex_female", cl.sex_female, ("sex",), ("sex_female",), "0/1", _CLINICAL,
            "no sex difference (F(1,80)=0.06, Freeman 2019; 89% of 27 reports): expected null"),
    _raw("family_history_aud", "0/1", _CLINICAL,
         "+ first-degree family history of AUD, more improvement (std beta 0.27-0.41, Niciu 2014; Phelps 2009)"),
    _raw("shaps_baseline", "points", _CLINICAL, "ketamine lowers anhedonia (Lally 2014); baseline SHAPS as predictor not found"),
    Feature("anhedonia_shaps_ge3", cl.anhedonia_shaps_ge3, ("shaps_baseline",), ("anhedonia_shaps_ge3",), "0/1",
            _CLINICAL, "clinically significant anhedonia (SHAPS >= 3, Snaith 1995); predictive value unproven"),
    _raw("prior_suicide_attempt", "0/1", _CLINICAL, "+ no prior attempt, better day-7 outcome (std beta 0.28, Niciu 2014); not a moderator vs ECT"),
    _raw("bipolar", "0/1", _CLINICAL, "large effects in bipolar TRD on Li/VPA (d 0.8-0.9, n<20); possibly stronger (Lowe 2020, S*)"),
    _raw("anxious_depression", "0/1", _CLINICAL, "no drug x anxiety interaction (PMC4431955); not a moderator vs ECT (ELEKT-D): expected null"),
    _raw("benzodiazepine", "0/1", _PHARM, "- dose attenuates day-1 response (Feeney 2023; Czech NIMH 2020: >8 mg diazepam-eq.); binary use ns"),
    _raw("lithium", "0/1", _PHARM, "continuation after response gave no benefit (PMID 30858518); moderator role not found"),
    Feature("route_intranasal", ph.route_intranasal, ("route",), ("route_intranasal",), "0/1", _PHARM,
            "the course's route, placebo's included (IV midazolam/saline vs intranasal spray): the placebo arms differ "
            "(24-h response 12-28% IV vs day-28 45% intranasal with an antidepressant; Turkoz 2021)"),
    _raw("dose_mg_per_kg", "mg/kg", _PHARM,
         "IV dose: 0.5 and 1.0 mg/kg beat midazolam, 0.1 mg/kg did not (Fava 2018); BP rise larger with higher dose (China IV, S*)"),
    _raw("dose_mg", "mg", _PHARM, "esketamine 56 or 84 mg twice weekly (TRANSFORM); dose-related dissociation and BP rise (label)"),
    _raw("hypertension", "0/1", _CLINICAL,
         "BP rise after IV ketamine larger with hypertension (China IV, 135 patients, S*); 36% hypertensive at Emory"),
    _raw("prior_ect", "0/1", _PHARM, "- ECT-resistant patients: half the effect size (d 0.50 vs 1.00, PMC3100439)"),
    Feature("treatment_arm", treatment_arm_indicators, ("treatment",), ARM_COLUMNS, "0/1",
            _PHARM, "active drug vs placebo: 24-h response 52% vs 12-28% (Han 2016); esketamine day 28 58.7% vs 45.2%"),
    Feature("log_il6", inf.log_il6, ("il6_pg_ml",), ("log_il6",), "ln pg/mL", "inflammatory",
            "raised in TRD; cytokine changes did not predict response (Kiraly 2017; Park et al.): unreplicated"),
    Feature("log_crp", inf.log_crp, ("crp_mg_l",), ("log_crp",), "ln mg/L", "inflammatory",
            "ketamine beat placebo only without low-grade inflammation (CRP < 3 mg/L; Taiwan, S*)"),
    Feature("log_tnf_alpha", inf.log_tnf_alpha, ("tnf_alpha_pg_ml",), ("log_tnf_alpha",), "ln pg/mL", "inflammatory",
            "TNF-alpha changes not related to response (Park et al., N=80): expected null"),
    _raw("bdnf_serum_ng_ml", "ng/mL", "neurotrophic_genetic",
         "BDNF rise tracks response (Haile 2014); no baseline blood marker consistent (meta-analysis, N=2801)"),
    Feature("bdnf_met_carrier", nt.bdnf_met_carrier, ("bdnf_rs6265",), ("bdnf_met_carrier",), "0/1",
            "neurotrophic_genetic", "- Met carriers respond less (Laje 2012, n=62; Taiwan n=71)"),
    Feature("bdnf_met_alleles", nt.bdnf_met_alleles, ("bdnf_rs6265",), ("bdnf_met_alleles",), "0-2",
            "neurotrophic_genetic", "additive coding of rs6265 Met (Laje 2012); allele-dose effect untested"),
    Feature("kyn_trp_ratio", ky.kyn_trp_ratio, ("kynurenine_umol_l", "tryptophan_umol_l"), ("kyn_trp_ratio",),
            "umol/mmol", "kynurenine", "ketamine lowers IDO and raises KYN (Kadriu 2019); predictive value not shown"),
    Feature("kyna_quin_ratio", ky.kyna_quin_ratio, ("kynurenic_acid_nmol_l", "quinolinic_acid_nmol_l"),
            ("kyna_quin_ratio",), "ratio", "kynurenine", "KynA rises after ketamine, QA unchanged (Kadriu 2019); predictor unproven"),
    _raw("d_serine_umol_l", "umol/L", "glutamatergic",
         "- lower baseline D-serine in responders (Moaddel 2014, n=21): unreplicated"),
    _raw("eeg_gamma_power_db", "dB", "neurophysiology_imaging",
         "gamma/cross-frequency connectivity tied to response (Nugent 2020, n=27): small, unreplicated"),
    _raw("glx_acc_mmol", "mmol", "neurophysiology_imaging",
         "baseline pgACC glutamate did not predict response (Evans 2018, 7T, n=20): expected null"),
    _raw("cadss_40min", "points", "early_course",
         "+ depersonalisation at 40 min linked to response (Niciu 2018, n=126); no CADSS x time effect for esketamine (N=576)"),
)


def early_course_features(timepoints: list[str]) -> tuple[Feature, ...]:
    """MADRS percent change at each outcome timepoint (applies only to later targets)."""
    return tuple(
        Feature(f"madrs_pct_change_{tp}", madrs_pct_change(tp), ("madrs_baseline", f"madrs_{tp}"),
                (f"madrs_pct_change_{tp}",), "%", "early_course",
                "early improvement predicts later response (4-h response: sens 94%, spec 71%, n=24, S*)")
        for tp in timepoints
    )
