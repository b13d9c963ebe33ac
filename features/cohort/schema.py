"""The cohort file format: one declarative table of every canonical column.

The validator, the README's format section and the synthetic generator all read
this table, so a column's name, kind and valid range are stated once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Kind = Literal["id", "string", "category", "binary", "number"]

# MADRS at or below this is remission (the convention of the ketamine and esketamine trials)
REMISSION_THRESHOLD = 10.0
ACTIVE_ARMS: tuple[str, ...] = ("ketamine_iv", "esketamine_in")
TREATMENTS: tuple[str, ...] = (*ACTIVE_ARMS, "placebo")
# the 0/1 indicator column of each active arm in the feature table (placebo is all zeros)
ARM_COLUMNS: tuple[str, ...] = tuple(f"arm_{a}" for a in ACTIVE_ARMS)
# what changes with the arm besides its indicator, for a course seen "as if given" another arm: each drug's route
# (1 = intranasal) and its dose column at the standard dose (0.5 mg/kg IV, Murrough 2013 and Fava 2018; 56 mg
# intranasal, the TRANSFORM starting dose); placebo keeps the course's route and has no dose
ARM_ROUTE: dict[str, float] = {"ketamine_iv": 0.0, "esketamine_in": 1.0}
ARM_DOSE: dict[str, tuple[str, float]] = {"ketamine_iv": ("dose_mg_per_kg", 0.5), "esketamine_in": ("dose_mg", 56.0)}
KEY: tuple[str, str] = ("patient_id", "treatment")


@dataclass(frozen=True)
class ColumnSpec:
    """One canonical cohort column.

    Parameters
    ----------
    name : str
        Canonical column name.
    kind : {"id", "string", "category", "binary", "number"}
        How cells are parsed.
    required : bool
        Whether the column must be present and every cell filled.
    low, high : float or None
        Inclusive valid range for numbers.
    categories : tuple of str
        Allowed values for categories, canonical spelling first.
    aliases : dict
        Accepted alternative spellings (case-insensitive) mapped to canonical values.
    integer : bool
        Whether a number must be whole (counts).
    unit : str
        Unit of a number, for documentation.
    role : {"key", "design", "provenance", "outcome", "predictor", "safety"}
        What the pipeline may use the column for; only predictors become features.
    timepoint : str
        When after dosing the value is measured ('' for baseline); a feature may only read it
        for targets strictly later.
    """

    name: str
    kind: Kind
    required: bool = False
    low: float | None = None
    high: float | None = None
    categories: tuple[str, ...] = ()
    aliases: tuple[tuple[str, str], ...] = ()
    integer: bool = False
    unit: str = ""
    role: str = "predictor"
    timepoint: str = ""


def _num(name: str, low: float | None, high: float | None, unit: str = "", **kw: object) -> ColumnSpec:
    return ColumnSpec(name, "number", low=low, high=high, unit=unit, **kw)  # type: ignore[arg-type]


def _flag(name: str) -> ColumnSpec:
    return ColumnSpec(name, "binary", categories=("0", "1"))


_GENOTYPE_ALIASES = (
    ("val/val", "GG"), ("val/met", "GA"), ("met/val", "GA"), ("met/met", "AA"), ("ag", "GA"),
)

COLUMNS: tuple[ColumnSpec, ...] = (
    ColumnSpec("patient_id", "id", required=True, role="key"),
    ColumnSpec("site", "string", required=True, role="design"),
    ColumnSpec("treatment", "category", required=True, categories=TREATMENTS, role="key"),
    _num("period", 1, 10, "order", integer=True, role="design"),
    # the course: doses given (6 IV infusions over ~2 weeks; esketamine twice weekly), and the dose of each
    _num("n_doses", 1, 40, "doses", integer=True, role="design"),
    ColumnSpec("route", "category", categories=("iv", "intranasal"),
               aliases=(("intravenous", "iv"), ("in", "intranasal"), ("nasal", "intranasal"))),
    _num("dose_mg_per_kg", 0.05, 2.0, "mg/kg per IV infusion"),
    _num("dose_mg", 14, 112, "mg per intranasal session"),
    # written by `synth` (scenario and seed), so a report says when its data are not patients'
    ColumnSpec("synthetic", "string", role="provenance"),
    _num("madrs_baseline", 0, 60, "points", required=True),
    _num("age", 18, 100, "years"),
    ColumnSpec("sex", "category", categories=("F", "M")),
    _num("weight_kg", 30, 300, "kg"),
    _num("height_cm", 120, 230, "cm"),
    _num("bmi", 12, 80, "kg/m2"),
    _num("n_failed_treatments", 0, 40, "count", integer=True),
    _num("illness_duration_years", 0, 80, "years"),
    _num("episode_duration_months", 0, 600, "months"),
    _flag("family_history_aud"),
    _flag("bipolar"),
    _flag("anxious_depression"),
    _flag("prior_ect"),
    _flag("benzodiazepine"),
    _flag("lithium"),
    _flag("prior_suicide_attempt"),
    _flag("hypertension"),
    _num("shaps_baseline", 0, 14, "points"),
    _num("cadss_40min", 0, 92, "points", timepoint="40min"),
    _num("il6_pg_ml", 0, None, "pg/mL"),
    _num("crp_mg_l", 0, None, "mg/L"),
    _num("tnf_alpha_pg_ml", 0, None, "pg/mL"),
    _num("bdnf_serum_ng_ml", 0, None, "ng/mL"),
    _num("kynurenine_umol_l", 0, None, "umol/L"),
    _num("tryptophan_umol_l", 0, None, "umol/L"),
    _num("kynurenic_acid_nmol_l", 0, None, "nmol/L"),
    _num("quinolinic_acid_nmol_l", 0, None, "nmol/L"),
    _num("d_serine_umol_l", 0, None, "umol/L"),
    ColumnSpec("bdnf_rs6265", "category", categories=("GG", "GA", "AA"), aliases=_GENOTYPE_ALIASES),
    _num("eeg_gamma_power_db", None, None, "dB"),
    _num("glx_acc_mmol", 0, None, "mmol"),
    _num("sbp_change_mmhg", -60, 120, "mmHg", role="safety"),
    ColumnSpec("nausea", "binary", categories=("0", "1"), role="safety"),
    # follow-up after a response: days from the response to relapse (relapse_observed 1) or to the last
    # relapse-free contact (0); both empty for courses that did not respond or were not followed
    _num("days_to_relapse", 0, 3650, "days", integer=True, role="outcome"),
    ColumnSpec("relapse_observed", "binary", categories=("0", "1"), role="outcome"),
)
# what a harm target (<column>_ge<threshold>) may be built from: the safety columns and dissociation at 40 min
HARM_COLUMNS: tuple[str, ...] = ("sbp_change_mmhg", "cadss_40min", "nausea")
# the follow-up pair: a course is in the durability analysis when both are filled
FOLLOW_UP: tuple[str, str] = ("days_to_relapse", "relapse_observed")

SPECS: dict[str, ColumnSpec] = {c.name: c for c in COLUMNS}
REQUIRED: tuple[str, ...] = tuple(c.name for c in COLUMNS if c.required)

# a timepoint label (40min, 4h, day7); outcome columns are madrs_<label>, targets <kind>_<label>
TIMEPOINT_PATTERN = r"(?P<tp>(?P<n>\d+)(?P<unit>min|h)|day(?P<d>\d+))"
_TIMEPOINT = re.compile(rf"^madrs_{TIMEPOINT_PATTERN}$")


def timepoint_minutes(timepoint: str) -> int:
    """Minutes after dosing for a timepoint label such as ``40min``, ``4h`` or ``day7``.

    Parameters
    ----------
    timepoint : str
        A label of the form ``<n>min``, ``<n>h`` or ``day<n>``.

    Returns
    -------
    int
        Minutes after the dose, used to order timepoints.

    Raises
    ------
    ValueError
        If the label does not follow the pattern.
    """
    m = _TIMEPOINT.match(f"madrs_{timepoint}")
    if m is None:
        raise ValueError(f"timepoint '{timepoint}' does not match <n>min, <n>h or day<n>")
    if m["d"] is not None:
        return int(m["d"]) * 24 * 60
    return int(m["n"]) * (60 if m["unit"] == "h" else 1)


def outcome_spec(column: str) -> ColumnSpec | None:
    """The spec of a ``madrs_<timepoint>`` outcome column, or None if *column* is not one."""
    if _TIMEPOINT.match(column) is None:
        return None
    return ColumnSpec(column, "number", low=0, high=60, unit="points", role="outcome",
                      timepoint=column.removeprefix("madrs_"))


def spec_for(column: str) -> ColumnSpec | None:
    """The spec of any canonical column (fixed or outcome), or None if unknown."""
    return SPECS.get(column) or outcome_spec(column)


def outcome_timepoints(columns: list[str]) -> list[str]:
    """Timepoint labels of the outcome columns present, earliest first."""
    tps = [c.removeprefix("madrs_") for c in columns if outcome_spec(c) is not None]
    return sorted(tps, key=timepoint_minutes)
