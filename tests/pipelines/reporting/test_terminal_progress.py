"""The progress bar shows the time left only once it rests on enough fits and seconds."""

from __future__ import annotations

import time

from ketamine_response.pipelines.reporting.terminal import TerminalProgress


def test_eta_waits_for_enough_fits_and_seconds(capsys):
    progress = TerminalProgress(bar=True, eta_after_fits=3, eta_after_seconds=0.3)
    progress.stage("nested cross-validation", 10)
    progress.advance(2)
    assert str(progress.bar).endswith("2/10 [00:00, estimating time left]")  # two fits: no guess yet
    progress.advance()
    assert "estimating time left" in str(progress.bar)  # three fits, but too soon
    time.sleep(0.35)
    progress.advance()
    shown = str(progress.bar)
    assert "4/10 [00:00<" in shown and "fit/s]" in shown and "estimating" not in shown
    progress.stage("permutation re-runs", 5)  # a new stage starts without a guess again
    assert "estimating time left" in str(progress.bar)
    progress.close()
    assert "... nested cross-validation" in capsys.readouterr().err


def test_no_bar_in_a_pipe(capsys):
    progress = TerminalProgress()  # pytest's captured stdout is not a terminal
    progress.stage("refitting", 4)
    progress.advance()
    progress.close()
    assert progress.bar is None and capsys.readouterr().err == "... refitting\n"
