"""The ``promote`` flow: make a registered version the champion, refusing one the evidence does not back
unless the user says why.

``train`` gives no alias to a version trained below the minimum sample size or whose permutation p is
above alpha, and records both facts as version tags (``below_minimum_sample``, ``beats_permuted_labels``).
Promoting such a version by hand is allowed, but only with ``--reason``: the reason, the user and the
UTC date become version tags, so the registry says who overrode the policy, when and why.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import UTC, datetime

from ketamine_response.features.errors import UsageError
from ketamine_response.pipelines import registry

# what train wrote (see flows/train.py), and what versions logged before those tags still say in their description
_CAVEATS = (("below_minimum_sample", "true", "below the minimum sample size",
             "it was trained below the minimum sample size"),
            ("beats_permuted_labels", "false", "did not beat permuted labels",
             "its permutation p is above alpha (no evidence it beats permuted labels)"))


@dataclass(frozen=True)
class Promotion:
    """What ``promote`` did: the version that lost champion, and the caveats overridden (with the reason)."""

    previous: str | None
    caveats: tuple[str, ...]
    reason: str


def caveats(tags: dict[str, str], description: str) -> tuple[str, ...]:
    """Why the evidence does not back this version, from its tags (or, for an older version, its description)."""
    found = []
    for tag, flagged, described, words in _CAVEATS:
        if tags.get(tag) == flagged or (tag not in tags and described in description):
            found.append(words)
    return tuple(found)


def run_promote(name: str, version: int, reason: str | None) -> Promotion:
    """Move champion to *version*; a usage error (exit 2) for a version with caveats and no *reason*."""
    tags, description = registry.version_record(name, version)
    found = caveats(tags, description)
    if found and not (reason and reason.strip()):
        raise UsageError(f"{name} version {version} is not promoted: {'; '.join(found)}. If you must score with "
                         "it anyway, say why with --reason TEXT (recorded on the version with your user name "
                         "and the date).")
    record: dict[str, str] = {}
    why = "champion: promoted by hand"
    if reason and reason.strip():
        user, day = getpass.getuser(), datetime.now(UTC).strftime("%Y-%m-%d")
        record = {"promoted_reason": reason.strip(), "promoted_by": user, "promoted_on": f"{day} (UTC)"}
        why = f"champion: promoted by {user} on {day}" + (f" despite: {'; '.join(found)}" if found else "") + \
              f"; reason: {reason.strip()}"
    previous = registry.promote(name, version, why, record)
    return Promotion(previous, found, (reason or "").strip())
