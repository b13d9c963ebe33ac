"""Cohort sources (file reader, schema, validator, synthetic generator) and feature builders."""
