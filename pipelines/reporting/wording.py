"""What a run's outcome is called, by task: a response, a relapse or a harm.

One place for the words, so the report, the terminal and the run description never call a harm a response
(or its courses responders). The task registry (``features/tasks.py``) holds the definitions; these are the
nouns and the clinical question the reporting layer needs beside them.
"""

from __future__ import annotations

from ketamine_response.features.cohort.targets import Target
from ketamine_response.features.tasks import HORIZONS, Task, TaskKind

RELAPSE_QUESTION = f"If this course responds, how likely is relapse within {HORIZONS[0]} days?"


def outcome_word(task: Task) -> str:
    """The outcome as a noun phrase: "response" (also a % change of MADRS), "relapse", "the harm"."""
    return {TaskKind.SURVIVAL: "relapse", TaskKind.HARM: "the harm"}.get(task.kind, "response")


def event_words(task: Task) -> tuple[str, str]:
    """The courses with and without the event (withheld-count sentences)."""
    if task.kind is TaskKind.HARM:
        return "courses with the harm", "courses without it"
    if task.kind is TaskKind.SURVIVAL:
        return "relapses", "courses still relapse-free at last contact"
    return "responders", "non-responders"


def events_heading(task: Task) -> str:
    """The summary's heading for the outcome count (the registry's, except that harms are named harms)."""
    return "Harms" if task.kind is TaskKind.HARM else task.outcome_heading


def harm_phrase(target: Target) -> str:
    """A harm target in words: ``sbp_change_mmhg >= 40``."""
    return f"{target.column} >= {target.threshold:g}"


def first_question(task: Task, target: Target | None = None) -> str:
    """The clinical question a run of *task* answers first (*target* names a harm's column and threshold)."""
    if task.kind is TaskKind.SURVIVAL:
        return RELAPSE_QUESTION
    if task.kind is TaskKind.HARM:
        what = f"the harm {harm_phrase(target)}" if target is not None else "this harm"
        return f"How likely is {what} if given the drug?"
    if not task.probabilities:
        return (f"What will {task.estimates(target)} be if given the drug?" if target is not None
                else "What will the percentage change in MADRS be if given the drug?")
    return f"How likely is {target.kind if target is not None else 'the event'} if given the drug?"
