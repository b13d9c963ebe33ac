"""The cohort boundary, data sources, the synthetic generator and the candidate-biomarker features.

Subpackages: cohort (format, reading, mapping, validation, targets), sources (public dataset ingest),
synthetic (cohorts with known truth), derivations (one module per biomarker domain). Here: the feature
registry, the feature table builder, the fitted transformers, and the project-wide errors.
"""
