"""The project's one error hierarchy. Each class carries the exit code the CLI returns for it; all but
:class:`Terminated` (the SIGTERM stop, a ``KeyboardInterrupt``: why in its docstring) derive from
:class:`KetamineResponseError`.

Messages are one paragraph that name the file (and the row or column, where there is one) and
say how to fix it. Library modules describe the problem in the library's terms (a config key, a
file), never in terms of a command-line flag; only the command modules (``pipelines/flows``,
``pipelines/cli.py``) speak of flags.

Exit codes (documented in the README): 0 success, 1 row-level problems, 2 file, config or usage
problems, 3 rows rejected in strict scoring, 70 internal error (a bug), 130 interrupted (Ctrl-C),
143 stopped by SIGTERM.
"""

from __future__ import annotations

EXIT_OK, EXIT_ROWS, EXIT_FILE, EXIT_STRICT, EXIT_INTERNAL = 0, 1, 2, 3, 70


class KetamineResponseError(Exception):
    """Base of every error a user can cause; ``exit_code`` is what the CLI returns."""

    exit_code: int = EXIT_FILE


class UsageError(KetamineResponseError):
    """Arguments that do not fit together or are out of range."""


class CohortFileError(KetamineResponseError):
    """A file-level problem with a cohort, mapping or dataset file."""


class CohortRowsError(KetamineResponseError):
    """A cohort has row-level problems and the caller did not allow dropping them."""

    exit_code = EXIT_ROWS


class ConfigError(KetamineResponseError):
    """An unreadable training config, an unknown key or an impossible value."""


class TrainingDataError(KetamineResponseError):
    """The cohort cannot support the requested validation design."""


class Terminated(KeyboardInterrupt):
    """The process was told to stop (SIGTERM): outputs are cleaned up and a training run ends FAILED.

    A ``KeyboardInterrupt``, not a :class:`KetamineResponseError`: the handler raises it wherever the process is, so
    a library's ``except Exception`` must not swallow it (MLflow's model logging wraps its serving-input check,
    seconds of loading and predicting, in one: a stop there let ``train`` finish and exit 0), and a library that
    cleans up after an interrupt does so for it too (py4j closes the Spark call's connection, joblib stops its
    workers). The CLI tells it from Ctrl-C by its class: exit 143, not 130.
    """

    exit_code = 143


def termination_in(exc: BaseException) -> Terminated | None:
    """The :class:`Terminated` that ``exc`` is, or that a library re-raised as its own error; else None.

    The SIGTERM handler raises wherever the process is. Inside an HTTP call to a tracking server, MLflow's
    REST client re-raises every exception as its own ``MlflowException`` ("API request ... failed with
    exception <ours>", ours kept as ``__context__``), which would turn a clean stop into an internal error
    (exit 70). A wrapper repeats our message; an error raised by a cleanup while ours was handled does not,
    and is not a clean stop (its outputs may remain), so it is not unwrapped.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, Terminated):
            return cause if str(cause) in str(exc) else None
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


class TrackingError(KetamineResponseError):
    """The tracking store, a run or a model cannot be opened or written."""
