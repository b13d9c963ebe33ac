"""Where a long training is, for whoever watches it.

The training code reports stages and finished fits here; it never prints. The command line draws a
progress bar (:mod:`ketamine_response.pipelines.reporting.terminal`), and the train flow mirrors stages into the
MLflow run, so the UI shows what a RUNNING run is doing.
"""

from __future__ import annotations


class Progress:
    """Silent by default: subclasses show it somewhere."""

    def stage(self, message: str, total: int = 0) -> None:
        """A new stage begins; *total* fits are expected in it (0: not counted)."""

    def advance(self, n: int = 1) -> None:
        """*n* more fits of the current stage are done."""

    def close(self) -> None:
        """Training ended (finished or failed)."""


class Relay(Progress):
    """Passes everything on to *inner*; subclasses add a second destination."""

    def __init__(self, inner: Progress) -> None:
        self.inner = inner

    def stage(self, message: str, total: int = 0) -> None:
        self.inner.stage(message, total)

    def advance(self, n: int = 1) -> None:
        self.inner.advance(n)

    def close(self) -> None:
        self.inner.close()
