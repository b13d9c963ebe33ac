"""Where a long training is, for whoever watches it.

The training code reports stages and finished fits here; it never prints. The command line draws a
progress bar (:mod:`ketamine_response.pipelines.reporting.terminal`), and the train flow mirrors stages into the
MLflow run, so the UI shows what a RUNNING run is doing.
"""

from __future__ import annotations

import time
from collections.abc import Callable


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


class Publishing(Relay):
    """Passes progress on, and publishes the stage with its fit count (at most every few seconds) through
    *publish*: the train flow hands it the tracking store's progress tag, so training never calls tracking."""

    def __init__(self, inner: Progress, publish: Callable[[str], None], every_s: float = 5.0) -> None:
        super().__init__(inner)
        self.publish, self.every_s = publish, every_s
        self.message, self.total, self.done, self.shown = "", 0, 0, 0.0

    def stage(self, message: str, total: int = 0) -> None:
        super().stage(message, total)
        self.message, self.total, self.done = message, total, 0
        self._show(force=True)

    def advance(self, n: int = 1) -> None:
        super().advance(n)
        self.done += n
        self._show()

    def _show(self, force: bool = False) -> None:
        if force or time.monotonic() - self.shown > self.every_s:
            self.shown = time.monotonic()
            self.publish(self.message + (f" ({self.done}/{self.total} fits)" if self.total else ""))
