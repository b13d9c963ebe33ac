"""Ingest of public datasets into the cohort format (BIDS), with the mappings of known datasets."""
