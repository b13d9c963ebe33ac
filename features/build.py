"""Build the candidate-biomarker table for one target from a validated cohort (tier 1 only)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ketamine_response.features.cohort.schema import REMISSION_THRESHOLD, outcome_timepoints
from ketamine_response.features.cohort.targets import Target
from ketamine_response.features.registry import STATIC_FEATURES, Feature, early_course_features, identity
from ketamine_response.features.tasks import build_target

DESIGN_COLUMNS = ("patient_id", "treatment", "site", "period")
DICTIONARY_COLUMNS = ["feature", "derivation", "domain", "inputs", "unit", "rationale"]


@dataclass(frozen=True)
class FeatureTable:
    """The derived table and what it is made of.

    Attributes
    ----------
    frame : pandas.DataFrame
        Design columns (``patient_id``, ``treatment``, ``site``, ``period`` where present), the
        features, then the target (and a time to event's event flag); one row per input row, same index.
    features : tuple of str
        The feature columns, in order.
    dictionary : pandas.DataFrame
        One row per feature: :data:`DICTIONARY_COLUMNS`.
    notes : tuple of str
        What must be said about the target (:func:`target_notes`), then the derivations skipped because
        their inputs are absent, all in one note.
    """

    frame: pd.DataFrame
    features: tuple[str, ...]
    dictionary: pd.DataFrame
    notes: tuple[str, ...]
    target: str


def registry_for(columns: list[str], extra_features: tuple[str, ...] = ()) -> tuple[Feature, ...]:
    """Every derivation that could apply to a cohort with these columns (before the leakage filter)."""
    user = tuple(Feature(c, identity(c), (c,), (c,), "as supplied", "user", "declared in the mapping file")
                 for c in extra_features)
    return STATIC_FEATURES + early_course_features(outcome_timepoints(columns)) + user


def select_features(columns: list[str], target: Target,
                    extra_features: tuple[str, ...] = ()) -> tuple[list[Feature], list[str]]:
    """Derivations allowed for *target* whose inputs the cohort has, and notes on those skipped."""
    present = set(columns)
    chosen, skipped = [], []
    for feature in registry_for(columns, extra_features):
        if not feature.allowed_for(target.minutes):
            continue
        if feature.available(present):
            chosen.append(feature)
        else:
            skipped.append(f"{feature.name} (needs {' + '.join(feature.requires[0] if feature.requires else feature.inputs)})")
    # one note for all of them: a cohort with few columns (ds005917) skips dozens, one line each buried the rest
    notes = [f"skipped {len(skipped)} feature{'s' * (len(skipped) > 1)} whose inputs are absent from the cohort: "
             + ", ".join(skipped)] if skipped else []
    return chosen, notes


# Said wherever a percentage change is the target (the features and train output, the run's notes and report)
PCT_CHANGE_CAVEAT = ("{target} is a percentage change from baseline: it depends on the baseline MADRS (the same "
                     "drop in points is a larger percentage from a lower baseline) and carries regression to the "
                     "mean (high scores tend to fall on re-measurement, with or without the drug), so part of what "
                     "a model predicts is the baseline itself, not response to treatment; compare the drug arm "
                     "with placebo, and prefer the follow-up score adjusted for baseline where the question allows "
                     "(Vickers 2001, BMC Med Res Methodol 1:6)")


def target_notes(target: Target) -> list[str]:
    """What must be said about the target itself: the percentage-change caveat (none for other targets)."""
    return [PCT_CHANGE_CAVEAT.format(target=target.name)] if target.kind == "pct_change" else []


def feature_dictionary(features: list[Feature] | tuple[Feature, ...]) -> pd.DataFrame:
    """One row per output column: feature, derivation, domain, inputs, unit, rationale."""
    rows = [(out, f.name, f.domain, ";".join(f.inputs), f.unit, f.rationale) for f in features for out in f.outputs]
    return pd.DataFrame(rows, columns=DICTIONARY_COLUMNS)


def build_feature_table(table: pd.DataFrame, target: Target, extra_features: tuple[str, ...] = (),
                        remission_threshold: float = REMISSION_THRESHOLD,
                        source: str = "cohort") -> FeatureTable:
    """Apply every allowed, available derivation to a validated cohort table.

    Parameters
    ----------
    table : pandas.DataFrame
        ``ValidatedCohort.table`` (typed canonical columns).
    target : Target
        The outcome the table is for; decides which early-course features are allowed.
    extra_features : tuple of str
        Numeric columns declared in the mapping file.
    """
    chosen, skipped = select_features(list(table.columns), target, extra_features)
    notes = target_notes(target) + skipped
    design = [c for c in DESIGN_COLUMNS if c in table.columns]
    parts = [table[design]] + [f.func(table) for f in chosen]
    parts.append(build_target(table, target, source, remission_threshold))
    frame = pd.concat(parts, axis=1)
    names = tuple(out for f in chosen for out in f.outputs)
    return FeatureTable(frame, names, feature_dictionary(chosen), tuple(notes), target.name)
