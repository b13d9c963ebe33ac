"""Cross-validation designs, nested search with calibration, and the permutation test."""
