"""User mapping files: rename columns to canonical names, declare extra features, convert units.

Example ``mapping.yaml``::

    columns:            # your column name: canonical name
      PatientID: patient_id
      CRP: crp_mg_l
      Weight: weight_kg
    units:              # canonical column: the unit your file uses
      crp_mg_l: mg/dL
      weight_kg: lb
    extra_features:     # your own numeric columns to use as candidate features
      - hair_cortisol
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ketamine_response.features.cohort.schema import spec_for
from ketamine_response.features.errors import CohortFileError

# canonical column -> {source unit: factor to multiply by}
UNIT_FACTORS: dict[str, dict[str, float]] = {
    "crp_mg_l": {"mg/L": 1.0, "mg/dL": 10.0, "nmol/L": 0.105},
    "weight_kg": {"kg": 1.0, "lb": 0.45359237, "g": 0.001},
    "height_cm": {"cm": 1.0, "in": 2.54, "m": 100.0},
    "bdnf_serum_ng_ml": {"ng/mL": 1.0, "pg/mL": 0.001},
    "glx_acc_mmol": {"mmol": 1.0, "umol": 0.001},
}
_KEYS = {"columns", "units", "extra_features"}


@dataclass(frozen=True)
class ColumnMapping:
    """A parsed mapping file. The empty mapping changes nothing."""

    columns: dict[str, str] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    extra_features: tuple[str, ...] = ()
    source: str = "(no mapping)"

    def unit_factor(self, column: str) -> tuple[float, str]:
        """Factor converting *column* to its canonical unit, and the source unit ('' if none)."""
        unit = self.units.get(column)
        return (1.0, "") if unit is None else (UNIT_FACTORS[column][unit], unit)


def load_mapping(path: str | Path | None) -> ColumnMapping:
    """Parse and check a mapping YAML file; ``None`` gives the empty mapping.

    Raises
    ------
    CohortFileError
        If the file is missing, not YAML, has unknown keys, maps to an unknown
        canonical name, or names a unit conversion that is not supported.
    """
    if path is None:
        return ColumnMapping()
    from ketamine_response.features.yaml_file import read_yaml

    path = Path(path)
    raw = read_yaml(path, "mapping file") or {}
    if not isinstance(raw, dict):
        raise CohortFileError(f"{path}: the mapping file must be a YAML mapping with keys {sorted(_KEYS)}.")
    unknown = sorted(map(str, set(raw) - _KEYS))
    if unknown:
        raise CohortFileError(
            f"{path}: unknown key '{unknown[0]}' in the mapping file; allowed keys are {sorted(_KEYS)}."
        )
    columns = _str_dict(path, raw.get("columns") or {}, "columns")
    units = _str_dict(path, raw.get("units") or {}, "units")
    extras = raw.get("extra_features") or []
    if not isinstance(extras, list) or not all(isinstance(e, str) for e in extras):
        raise CohortFileError(f"{path}: 'extra_features' must be a list of column names.")
    _check_targets(path, columns, units, extras)
    return ColumnMapping(columns, units, tuple(extras), str(path))


def _str_dict(path: Path, value: Any, key: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise CohortFileError(f"{path}: '{key}' must be a mapping of 'name: value' lines.")
    return {str(k): str(v) for k, v in value.items()}


def _check_targets(path: Path, columns: dict[str, str], units: dict[str, str], extras: list[str]) -> None:
    for source, target in columns.items():
        if spec_for(target) is None:
            raise CohortFileError(
                f"{path}: column '{source}' is mapped to '{target}', which is not a canonical column "
                "name (see the README's cohort format); declare it under extra_features instead."
            )
    for column, unit in units.items():
        known = UNIT_FACTORS.get(column, {})
        if unit not in known:
            choices = ", ".join(known) if known else "none: this column has no conversions"
            raise CohortFileError(
                f"{path}: cannot convert column '{column}' from unit '{unit}'; supported units: {choices}."
            )
    clash = [e for e in extras if spec_for(e) is not None]
    if clash:
        raise CohortFileError(
            f"{path}: extra feature '{clash[0]}' is already a canonical column; remove it from extra_features."
        )


def apply_mapping(table: pd.DataFrame, mapping: ColumnMapping, file: str) -> pd.DataFrame:
    """Rename the columns of a raw cohort table as the mapping says.

    Raises
    ------
    CohortFileError
        If the mapping names a column that the file does not have, or the
        renaming would give two columns the same name.
    """
    present = set(table.columns)
    for source in mapping.columns:
        if source not in present:
            raise CohortFileError(
                f"{file}: the mapping {mapping.source} renames column '{source}', which the file does not "
                f"have. Columns in the file: {', '.join(map(str, table.columns))}."
            )
    renamed = table.rename(columns=mapping.columns)
    dupes = renamed.columns[renamed.columns.duplicated()].tolist()
    if dupes:
        raise CohortFileError(
            f"{file}: after applying the mapping {mapping.source}, column '{dupes[0]}' appears twice; "
            "map only one of them to it."
        )
    for name in [*mapping.extra_features, *mapping.units]:
        if name not in renamed.columns:
            raise CohortFileError(
                f"{file}: the mapping {mapping.source} names column '{name}', which the file does not have."
            )
    return renamed
