"""Rendering: plots, SHAP plots, the terminal table and the HTML report."""
