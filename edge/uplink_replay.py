"""Refilling a cloud restored to an earlier point from the outbox's replay window.

A cloud database restored from a backup has forgotten the records it stored after the backup,
although it acknowledged them. The next batch then skips ahead of its high-water mark and the
cloud answers 409 with ``expected_seq``, the first number it lacks. The uplink does not stop:

- the records from ``expected_seq`` on are still kept (``edge.outbox_replay``): they become
  pending again and are resent, same boot, same numbers. Nothing is lost; the warning alarm
  ``uplink/replayed`` says how many went again and is cleared by the next acknowledgement.
- some of them were already evicted (older than the replay window, or pushed out by disk): the
  ones still kept are resent and the rest of the outbox follows under a new boot id
  (``Outbox.rebase``, the cloud's mark of the old boot cannot be passed), and the alarm
  ``uplink/replay_gap`` names the lost range. It stays raised until an operator has looked
  (it is cleared only by a restart of the agent), because those records are gone.

A 409 that does not ask for an earlier number is not a restore; the uplink treats it as before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from edge.alarms import AlarmSink
from edge.outbox import Outbox, Peeked
from protocols.batch import BatchError

log = logging.getLogger(__name__)

REPLAYED_ALARM = "uplink/replayed"
GAP_ALARM = "uplink/replay_gap"


@dataclass(frozen=True)
class Refill:
    kind: str
    """``replayed`` (nothing lost) or ``replay_gap`` (the range in the alarm is lost)."""
    resent: int
    resent_through: int
    """The last sequence number resent under the old boot (0 when rebased)."""
    lost: tuple[int, int] | None
    """First and last sequence number the cloud lost and the gateway no longer had."""


def expected_seq(error: BatchError) -> int | None:
    """The first sequence number a 409 asks for, if it names one.

    >>> expected_seq(BatchError(error="gap", detail=[{"expected_seq": 41, "first_seq": 90}]))
    41
    >>> expected_seq(BatchError(error="gap", detail="no detail")) is None
    True
    """
    if not isinstance(error.detail, list):
        return None
    for item in error.detail:
        value = item.get("expected_seq")
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    return None


async def refill(
    outbox: Outbox, alarms: AlarmSink, peeked: Peeked, error: BatchError
) -> Refill | None:
    """Makes the outbox resend what a restored cloud lost; None when the 409 is something else."""
    asked = expected_seq(error)
    first_sent = peeked.records[0].seq
    if asked is None or asked >= first_sent:
        return None
    reopened = await outbox.replay(peeked.boot_id, asked)
    if reopened.first_seq == asked:
        message = (
            f"the cloud's mark of boot {peeked.boot_id} is behind what it acknowledged (restored "
            f"from a backup?): it expects seq {asked}, {reopened.count} acknowledged record(s) "
            "are sent again from the replay window; nothing is lost"
        )
        log.warning("uplink: %s", message)
        await alarms.raise_alarm(REPLAYED_ALARM, message)
        return Refill("replayed", reopened.count, reopened.first_seq + reopened.count - 1, None)
    lost = (asked, reopened.first_seq - 1)
    new_boot = await outbox.rebase()
    message = (
        f"the cloud lost records {lost[0]}-{lost[1]} of boot {peeked.boot_id} (restored from a "
        "backup older than this gateway's replay window?) and they are no longer kept here: "
        f"they are LOST. The {reopened.count} acknowledged record(s) still kept and everything "
        f"after them are sent again under boot {new_boot}"
    )
    log.critical("uplink: %s", message)
    await alarms.raise_alarm(GAP_ALARM, message)
    return Refill("replay_gap", reopened.count, 0, lost)
