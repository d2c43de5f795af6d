"""The one guard every destructive load goes through (pure: no Airflow, no AWS).

Two questions, asked before a load writes anything:

1. **Does the plan remove too much?** Each pipeline counts, in its own unit (covid: rows,
   market: types of a region, directory: employees), how much of what is stored the plan
   would remove or lower, and :func:`enforce_removal_limit` refuses it when that is more
   than ``max_removal_share`` of what is stored, with an absolute floor (``floor``
   removals are always allowed, so a small table is not blocked by one stale row). A
   source that shrinks or empties is suspect, not a reason to delete. The override is the
   same param in every DAG: ``allow_large_removal``; a run that uses it says so in its log
   and in its summary.

2. **Is the plan stale?** A plan (or aggregate) records what it was computed against: the
   :class:`LoadMark` of the last load of the table (or the region), and its own run.
   Each load leaves a new mark. :func:`refuse_stale_plan` refuses a plan whose table was
   loaded again since it was computed, and :func:`refuse_older_data` a snapshot older
   than the one already loaded, naming the run that loaded the newer data. That is what
   happens when a failed ``load`` of an older run is cleared after a newer run loaded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from pipelines.errors import BadInput

OVERRIDE_PARAM = "allow_large_removal"
SHARE_PARAM = "max_removal_share"
MAX_EXAMPLES = 5
# How a stale-plan refusal starts (a failure message recognises it after Airflow wraps it).
STALE_PLAN = "refusing a stale plan"


class LargeRemovalRefused(BadInput):
    """The plan would remove or lower more than a run may without ``allow_large_removal``."""


class StalePlanRefused(BadInput):
    """The plan was computed against older data than the table now holds."""


@dataclass(frozen=True)
class RemovalLimit:
    """At most ``max_share`` of what is stored, but ``floor`` removals are always allowed."""

    max_share: float
    floor: int

    def allowed(self, stored: int) -> int:
        return max(self.floor, math.floor(self.max_share * stored))


@dataclass(frozen=True)
class Removal:
    """What one plan would remove or lower, in one unit, out of how much is stored.

    ``parts`` breaks ``removed`` down for the message (``{"deleted": 3, "lowered": 29}``);
    ``examples`` names a few of them (dates, type ids, employees).
    """

    subject: str
    unit: str
    stored: int
    removed: int
    parts: dict[str, int]
    examples: Sequence[str] = ()


def removal_problem(removal: Removal, limit: RemovalLimit) -> str | None:
    """Why ``removal`` exceeds ``limit``, with the counts and the threshold; None when it does not."""
    allowed = limit.allowed(removal.stored)
    if removal.removed <= allowed:
        return None
    share = removal.removed / removal.stored if removal.stored else 1.0
    parts = ", ".join(f"{count:,} {name}" for name, count in removal.parts.items() if count)
    shown = list(removal.examples)[:MAX_EXAMPLES]
    examples = ""
    if shown:
        more = removal.removed - len(shown)
        examples = f"; e.g. {', '.join(shown)}" + (f" and {more:,} more" if more > 0 else "")
    return (
        f"{removal.subject}: this run would remove or lower {removal.removed:,} of the "
        f"{removal.stored:,} stored {removal.unit} ({share:.1%}: {parts}{examples}); the limit is "
        f"{allowed:,} {removal.unit} ({SHARE_PARAM} {limit.max_share:.1%} of {removal.stored:,}, "
        f"and at least {limit.floor:,})"
    )


def enforce_removal_limit(problems: list[str], allow_large_removal: bool) -> list[str]:
    """Raise LargeRemovalRefused naming ``problems``, unless overridden; returns what was let through.

    Called before the load writes anything, so a refused run leaves the table as it was.
    """
    problems = [problem for problem in problems if problem]
    if not problems or allow_large_removal:
        return problems
    raise LargeRemovalRefused(
        "refusing the load: "
        + "; and ".join(problems)
        + ". A source that shrinks this much is suspect, so nothing was written. If the data "
        f'really shrank, trigger the run again with {{"{OVERRIDE_PARAM}": true}} (or a larger '
        f'"{SHARE_PARAM}").'
    )


def override_note(let_through: list[str]) -> str:
    """The sentence a run's log and summary carry when ``allow_large_removal`` let a plan through."""
    return f"{OVERRIDE_PARAM}=true let this run through: " + "; and ".join(let_through)


@dataclass(frozen=True)
class LoadMark:
    """Who loaded a table (or a region of it) last, and of what data.

    ``data_as_of`` is the source's own time where it has one (market: the ESI snapshot's
    Last-Modified, as an ISO 8601 instant); ``run_after`` the run's own time.
    """

    run_id: str
    run_after: str
    loaded_at: str
    data_as_of: str | None = None

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes | str | dict[str, Any] | None) -> LoadMark | None:
        if data is None:
            return None
        value = data if isinstance(data, dict) else json.loads(data)
        return cls(**{name: value.get(name) for name in ("run_id", "run_after", "loaded_at", "data_as_of")})

    def describe(self) -> str:
        as_of = f" of data as of {self.data_as_of}" if self.data_as_of else ""
        return f"run {self.run_id!r} (run_after {self.run_after}), loaded at {self.loaded_at}{as_of}"


def refuse_stale_plan(
    subject: str, run_id: str, planned_against: LoadMark | None, current: LoadMark | None
) -> None:
    """A plan is a diff against the table as it was: refuse it once another run has loaded since.

    The plan's own run having loaded since (a retry, or a cleared load of a run that already
    succeeded) is fine: applying the same plan again writes the same values.
    """
    if current is None or current == planned_against or current.run_id == run_id:
        return
    against = planned_against.describe() if planned_against else "the table before any marked load"
    raise StalePlanRefused(
        f"{STALE_PLAN}: {subject} was loaded by the newer {current.describe()}, after run "
        f"{run_id!r} computed this plan against {against}. Applying it would overwrite newer data, "
        "so nothing was written. Trigger a new run to load the current sources."
    )


def refuse_older_data(subject: str, run_id: str, data_as_of: datetime, current: LoadMark | None) -> None:
    """Refuse to load data older than what ``current`` loaded (same or newer data is fine)."""
    if current is None or current.data_as_of is None or current.run_id == run_id:
        return
    loaded = datetime.fromisoformat(current.data_as_of)
    if data_as_of < loaded:
        raise StalePlanRefused(
            f"{STALE_PLAN}: {subject} already holds data as of {loaded.isoformat()}, loaded "
            f"by the newer {current.describe()}; run {run_id!r} has data as of "
            f"{data_as_of.isoformat()}. Applying it would overwrite newer data, so nothing was "
            "written. Trigger a new run to load the current data."
        )
