"""What a logged model needs: the model-family registry, exact SHAP explanations and the MLflow model wrapper.

Calibration and model selection are training steps: they live in pipelines.training.
"""
