"""The commands people run (flows/) and the machinery behind them: training, evaluation, reporting,
configuration and MLflow tracking; plus the thin CLI.
"""
