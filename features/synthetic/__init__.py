"""The synthetic cohort generator: planted scenarios, covariates, outcomes and assembly."""
