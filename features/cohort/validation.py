"""The one cohort validator: every row-level problem in one vectorised pass.

Training, scoring and ``validate`` all call :func:`load_cohort`, so a cell is
judged the same way everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from ketamine_response.features.cohort.mapping import ColumnMapping, apply_mapping, load_mapping
from ketamine_response.features.cohort.reader import read_cohort_file
from ketamine_response.features.cohort.schema import FOLLOW_UP, KEY, REQUIRED, SPECS, ColumnSpec, spec_for
from ketamine_response.features.errors import CohortFileError

PROBLEM_COLUMNS = ["row", "patient_id", "column", "value", "problem"]
MAX_TEXT_CHARS = 1000  # ids, sites, arms and categories (documented in the README)
SHOWN_CHARS = 200  # a problem quotes at most this much of the offending cell
# Blank cells are missing; so are the spellings of "missing" that R, SPSS and spreadsheets write.
_MISSING_WORDS = ("", "na", "n/a", "nan", "null", "none", ".")
# every capitalisation users write (NA, N/A, NaN, NULL, None): matching them directly avoids a
# lower-casing pass over every text column
MISSING_TOKENS = frozenset({v for w in _MISSING_WORDS for v in (w, w.upper(), w.title())} | {"NaN"})


@dataclass
class ValidatedCohort:
    """A cohort after validation.

    Attributes
    ----------
    source : str
        The file it came from.
    table : pandas.DataFrame
        Canonical columns, typed (numbers and flags as float, text as ``str``),
        indexed by ``row`` (1 = first data row). Invalid cells are NaN.
    problems : pandas.DataFrame
        One line per problem, columns :data:`PROBLEM_COLUMNS`, sorted by row.
    unknown_columns : tuple of str
        Columns kept but not recognised (not used as features).
    extra_features : tuple of str
        Numeric columns the mapping declared as extra candidate features.
    """

    source: str
    table: pd.DataFrame
    problems: pd.DataFrame
    unknown_columns: tuple[str, ...] = ()
    extra_features: tuple[str, ...] = ()
    mapping: ColumnMapping = field(default_factory=ColumnMapping)

    @property
    def invalid_rows(self) -> pd.Index:
        """Row numbers (1-based) that have at least one problem."""
        return pd.Index(sorted(self.problems["row"].unique()), name="row")

    def valid_table(self) -> pd.DataFrame:
        """The rows without any problem."""
        return self.table.drop(index=self.invalid_rows)


def load_cohort(path: str | Path, mapping: ColumnMapping | str | Path | None = None) -> ValidatedCohort:
    """Read, map and validate a cohort file.

    Parameters
    ----------
    path : str or Path
        CSV or Parquet cohort file.
    mapping : ColumnMapping, path or None
        Column mapping (or the YAML file holding it).

    Returns
    -------
    ValidatedCohort
        The typed table and every row-level problem.

    Raises
    ------
    CohortFileError
        For file-level problems (unreadable, empty, required column absent, bad mapping).
    """
    if not isinstance(mapping, ColumnMapping):
        mapping = load_mapping(mapping)
    raw = apply_mapping(read_cohort_file(path), mapping, str(path))
    return validate_table(raw, str(path), mapping)


def validate_table(raw: pd.DataFrame, source: str, mapping: ColumnMapping | None = None,
                   first_row: int = 1, check_duplicates: bool = True) -> ValidatedCohort:
    """Validate a raw cohort table already renamed to canonical columns.

    *first_row* numbers the rows of a chunk within its file; *check_duplicates* False leaves
    duplicate keys to the caller (a streaming reader checks them across the whole file).

    Raises
    ------
    CohortFileError
        If a required column is absent.
    """
    mapping = mapping or ColumnMapping()
    absent = [c for c in REQUIRED if c not in raw.columns]
    if absent:
        raise CohortFileError(
            f"{source}: required column '{absent[0]}' is absent"
            + (f" (also absent: {', '.join(absent[1:])})" if len(absent) > 1 else "")
            + f". Columns found: {', '.join(map(str, raw.columns[:12]))}"
            + ("…" if len(raw.columns) > 12 else "")
            + ". Rename your column to the canonical name or map it in a column mapping file."
        )
    raw = raw.reset_index(drop=True)
    raw.index = pd.RangeIndex(first_row, first_row + len(raw), name="row")
    table: dict[str, pd.Series] = {}
    found: list[pd.DataFrame] = []
    unknown: list[str] = []
    missing = {c: _is_missing(raw[c]) for c in raw.columns}
    for column in raw.columns:
        spec = spec_for(column)
        if spec is None and column in mapping.extra_features:
            spec = ColumnSpec(column, "number")
        if spec is None:
            unknown.append(column)
            continue
        values, column_problems = check_column(raw[column], spec, mapping, missing[column])
        table[column] = values
        found.extend(column_problems)
    found.append(_blank_rows(raw.index, missing))
    found.append(follow_up_problems(raw, missing))
    if check_duplicates:
        found.append(duplicate_keys(table))
    problems = _assemble(found, raw["patient_id"])
    return ValidatedCohort(source, pd.DataFrame(table), problems, tuple(unknown),
                           tuple(mapping.extra_features), mapping)


def _is_missing(raw: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(raw):
        return raw.isna().to_numpy()
    text = raw.astype("str").str.strip()
    return (raw.isna() | text.isin(MISSING_TOKENS)).to_numpy()


def _problem(mask: np.ndarray, column: str, raw: pd.Series, messages: np.ndarray | str) -> pd.DataFrame:
    where = np.flatnonzero(mask)
    text = messages if isinstance(messages, str) else messages[where]
    return pd.DataFrame({"row": raw.index[where], "column": column, "value": _shorten(raw.iloc[where]).to_numpy(),
                         "problem": text})


def _shorten(values: pd.Series) -> pd.Series:
    text = values.astype("str")
    return text.where(text.str.len() <= SHOWN_CHARS, text.str.slice(0, SHOWN_CHARS) + "…")


def check_column(raw: pd.Series, spec: ColumnSpec, mapping: ColumnMapping,
                 missing: np.ndarray | pd.Series | None = None) -> tuple[pd.Series, list[pd.DataFrame]]:
    """Parse one column and list its problems.

    Returns
    -------
    values : pandas.Series
        Parsed values (float for numbers and flags, ``str`` otherwise); NaN where missing or invalid.
    problems : list of pandas.DataFrame
        Frames with columns ``row``, ``column``, ``value``, ``problem``.
    """
    missing = np.asarray(_is_missing(raw) if missing is None else missing)
    problems = []
    if spec.required and missing.any():
        problems.append(_problem(missing, spec.name, raw, f"missing value; '{spec.name}' is required"))
    values: Any
    if spec.kind in ("number", "binary"):
        values, bad, flagged = _parse_numbers(raw, missing, spec, mapping)
    else:
        values, bad, flagged = _parse_text(raw, missing, spec)
    if flagged.any():
        problems.append(_problem(flagged, spec.name, raw, bad))
    return pd.Series(values, index=raw.index, name=spec.name), problems


def _say(bad: np.ndarray, flagged: np.ndarray, mask: np.ndarray, template: str, shown: np.ndarray) -> None:
    # format only the flagged cells: formatting every value would dominate on large files; *flagged* marks
    # the cells that have a message (a boolean array is far cheaper to test than the object array of messages)
    for i in np.flatnonzero(mask):
        value = shown[i]
        bad[i] = template.format(f"{value:g}" if isinstance(value, float) else value)
    flagged |= mask


def _parse_numbers(raw: pd.Series, missing: np.ndarray, spec: ColumnSpec,
                   mapping: ColumnMapping) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
        numbers = raw.to_numpy(dtype="float64", na_value=np.nan, copy=True)
    else:
        text = raw.astype("str").str.strip().where(~missing)
        numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype="float64", na_value=np.nan, copy=True)
    numbers[missing] = np.nan
    bad = np.full(len(raw), None, dtype=object)
    unparseable = ~missing & ~np.isfinite(numbers)
    flagged = unparseable.copy()
    if unparseable.any():
        cells = raw.astype("str").to_numpy()
        for i in np.flatnonzero(unparseable):
            comma = re.fullmatch(r"\s*-?\d+,\d+\s*", cells[i]) is not None
            if np.isinf(numbers[i]):  # 1e400, inf: a number, but not a finite one
                bad[i] = f"value {cells[i]!r} is infinite or too large to store; give a finite value"
            else:
                bad[i] = f"value {cells[i]!r} is not a number" + ("; use '.' as the decimal separator" if comma else "")
        numbers[unparseable] = np.nan
    factor, unit = mapping.unit_factor(spec.name)
    numbers = numbers * factor
    note = f" (converted from {unit})" if unit else ""
    shown = numbers
    with np.errstate(invalid="ignore"):
        if spec.kind == "binary":
            _say(bad, flagged, ~np.isnan(numbers) & (numbers != 0) & (numbers != 1),
                 "value {} is not 0 or 1; write 1 for yes and 0 for no", shown)
        if spec.low is not None:
            _say(bad, flagged, numbers < spec.low,
                 "value {}" + note + f" is below {spec.low:g}; expected ≥ {spec.low:g}", shown)
        if spec.high is not None:
            _say(bad, flagged, numbers > spec.high,
                 "value {}" + note + f" is above {spec.high:g}; expected ≤ {spec.high:g}", shown)
        if spec.integer:
            frac = (numbers != np.floor(numbers)) & ~np.isnan(numbers) & ~flagged
            _say(bad, flagged, frac, "value {} is not a whole number; expected a count", shown)
    numbers[flagged] = np.nan
    return numbers, bad, flagged


def _parse_text(raw: pd.Series, missing: np.ndarray, spec: ColumnSpec) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    text = raw.astype("str").str.strip().where(~missing)
    bad = np.full(len(raw), None, dtype=object)
    # an id is a short label; a megabyte cell is a broken export, and copies of it exhaust memory later
    long = (text.str.len() > MAX_TEXT_CHARS).fillna(False).to_numpy()
    for i in np.flatnonzero(long):
        bad[i] = f"value is {len(text.iloc[i]):,} characters long; at most {MAX_TEXT_CHARS:,} are allowed here"
    flagged = long.copy()
    text = text.where(~long)
    if spec.kind == "category":
        lookup = {c.lower(): c for c in spec.categories} | dict(spec.aliases)
        mapped = _look_up(text.str.lower(), lookup)
        unknown = (text.notna() & mapped.isna()).to_numpy()
        shown = text.to_numpy()
        _say(bad, flagged, unknown, "unknown category {!r}; expected one of " + ", ".join(spec.categories), shown)
        text = mapped
    return text.astype("str"), bad, flagged


def _look_up(text: pd.Series, lookup: dict[str, str]) -> pd.Series:
    """``text.map(lookup)`` (None where a value is not in *lookup* or missing), looking up each distinct value
    once: a column of categories holds a handful of values, and Series.map looks up every cell in Python."""
    codes, uniques = pd.factorize(text)  # a missing value is code -1, the last entry below
    found = np.array([lookup.get(u) for u in uniques] + [None], dtype=object)
    return pd.Series(found[codes], index=text.index, dtype=object)


def _blank_rows(index: pd.Index, missing: dict[str, np.ndarray]) -> pd.DataFrame:
    blank = np.logical_and.reduce(list(missing.values()))
    return pd.DataFrame({"row": index[blank], "column": "(all)", "value": "",
                         "problem": "the row is blank; delete it"})


def follow_up_problems(raw: pd.DataFrame, missing: dict[str, np.ndarray]) -> pd.DataFrame:
    """One problem per row whose follow-up pair is half filled (an event flag without a time, or a time without
    an event flag), judged on the raw cells so that a time rejected for its value is not reported twice."""
    time, event = FOLLOW_UP
    blank, none = pd.Series("", index=raw.index), np.ones(len(raw), dtype=bool)
    has_time, has_event = ~missing.get(time, none), ~missing.get(event, none)
    both = "or leave both empty for a course not followed up"
    return pd.concat([
        _problem(has_event & ~has_time, event, raw.get(event, blank), f"'{event}' is filled but '{time}' is empty; give "
                 f"the days from the response to the relapse (or to the last relapse-free contact), {both}"),
        _problem(has_time & ~has_event, time, raw.get(time, blank), f"'{time}' is filled but '{event}' is empty; write 1 "
                 f"if the course relapsed on that day, 0 if it was last seen relapse-free then, {both}"),
    ], ignore_index=True)


def key_problems(raw_keys: pd.DataFrame, first_row: int = 1) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Normalised keys of a raw (renamed) key table, and the duplicate-key problems among them."""
    raw_keys = raw_keys.reset_index(drop=True)
    raw_keys.index = pd.RangeIndex(first_row, first_row + len(raw_keys), name="row")
    table = {k: check_column(raw_keys[k], SPECS[k], ColumnMapping())[0] for k in KEY}
    return pd.DataFrame(table), duplicate_keys(table)


def duplicate_keys(table: dict[str, pd.Series]) -> pd.DataFrame:
    """The duplicate-key problems of normalised keys (``patient_id``, ``treatment`` Series indexed by row):
    every row of a key that appears more than once, naming the others; rows with a missing key are skipped.
    The Spark engine gives it the keys it gathered across the whole file."""
    keys = pd.DataFrame({k: table[k] for k in KEY})
    complete = keys.notna().all(axis=1)
    dup = keys.duplicated(keep=False) & complete
    if not dup.any():
        return pd.DataFrame(columns=["row", "column", "value", "problem"])
    groups = keys[dup].reset_index().groupby(list(KEY))["row"].agg(list)
    messages = {}
    for key, rows in groups.items():
        pid, arm = cast(tuple[str, str], key)  # a two-level group key
        for r in rows:
            others = ", ".join(str(o) for o in rows if o != r)
            messages[r] = f"duplicate key (patient_id {pid!r}, treatment {arm!r}); also at row {others}"
    rows = list(messages)
    return pd.DataFrame({"row": rows, "column": "patient_id, treatment",
                         "value": [f"{keys.at[r, 'patient_id']!s}, {keys.at[r, 'treatment']!s}" for r in rows],
                         "problem": [messages[r] for r in rows]})


def _assemble(found: list[pd.DataFrame], raw_ids: pd.Series) -> pd.DataFrame:
    frames = [f for f in found if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "row" else "str") for c in PROBLEM_COLUMNS})
    problems = pd.concat(frames, ignore_index=True)
    problems["row"] = problems["row"].astype("int64")
    raw_ids = raw_ids.loc[problems["row"]]  # only the rows with problems: most chunks have few
    ids = raw_ids.astype("str").str.strip().where(raw_ids.notna(), "")
    problems["patient_id"] = _shorten(ids).to_numpy()
    problems = problems[PROBLEM_COLUMNS].sort_values(["row", "column"], kind="stable")
    return problems.reset_index(drop=True)


def format_problem(problem: pd.Series) -> str:
    """One problem as the sentence shown to users: ``column 'x', row 17: value … ; expected …``."""
    return f"column '{problem['column']}', row {problem['row']}: {problem['problem']}"
