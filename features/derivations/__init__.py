"""Pure per-course feature derivations, one module per biomarker domain (registered in features.registry)."""
