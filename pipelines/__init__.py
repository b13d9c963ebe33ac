"""The flows people run (validate, synth, train, evaluate, report, score) and the CLI."""
