"""Domain errors that the CLI maps to documented exit codes."""

from __future__ import annotations


class CohortFileError(Exception):
    """A file-level problem with a cohort or mapping file (CLI exit code 2).

    The message is one paragraph that names the file (and the column, where
    there is one) and says how to fix it.
    """


class CohortRowsError(Exception):
    """A cohort has row-level problems and the caller did not allow dropping them (exit code 1)."""
