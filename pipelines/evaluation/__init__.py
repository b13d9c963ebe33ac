"""Metrics with confidence intervals, out-of-fold evaluation, SHAP importance."""
