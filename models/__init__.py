"""Estimator families, search spaces and calibration. Trained models live only in the MLflow store."""
