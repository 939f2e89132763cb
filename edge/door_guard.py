"""The outbound door's local alarm: a passage carrying what must not leave sounds it at once.

The guard holds the site's latest ``DoorList`` (what its open transfers order, which units on
hand may not leave) and judges each outbound ``PortalPassage`` as it closes, without waiting for
the cloud: a blocked or unordered unit raises the door's alarm (key ``door:<door id>``) on the
gateway's alarm sink (MQTT to the door's beacon, see ``edge.alarms``); the next clean outbound
passage through that door clears it. The cloud still decides what the ledger does and records
the attempt; without a door list (none received yet, or the site loads no transfer) the guard
stays silent rather than guess.

>>> import asyncio
>>> from datetime import UTC, datetime
>>> from protocols.door_list import DoorList
>>> from protocols.records import Direction, PortalPassage
>>> class Beacon:
...     async def raise_alarm(self, key, message): print("RAISE", key, message)
...     async def clear_alarm(self, key, message): print("CLEAR", key)
>>> guard = DoorGuard(Beacon())
>>> guard.update(DoorList(site_id="s1", generated_at=datetime(2026, 3, 1, tzinfo=UTC),
...     ordered_gtins=["00614141123452"], blocked={"(01)00614141123452(21)7": "lot recalled"}))
>>> t = datetime(2026, 3, 1, 8, tzinfo=UTC)
>>> p = PortalPassage(passage_id="p1", door_id="dock-1", reader_id="r1",
...     direction=Direction.OUTBOUND, started_at=t, ended_at=t,
...     epcs=("3034257BF40C0E4000000007",))
>>> blocked = asyncio.run(guard.judge(p))
RAISE door:dock-1 blocked at door dock-1: (01)00614141123452(21)7 (lot recalled)
"""

from __future__ import annotations

from edge.alarms import AlarmSink
from protocols.door_list import DoorList, door_problems
from protocols.records import Direction, PortalPassage


class DoorGuard:
    """Judges outbound passages against the site's door list and drives the door alarms."""

    def __init__(self, sink: AlarmSink) -> None:
        self._sink = sink
        self._list: DoorList | None = None
        self._raised: set[str] = set()

    def update(self, door_list: DoorList | None) -> None:
        """The latest list from the cloud (None: the site loads no transfer now)."""
        self._list = door_list

    async def judge(self, passage: PortalPassage) -> list[tuple[str, str]]:
        """Raises or clears the door's alarm for one passage; returns what was blocked."""
        if passage.direction is not Direction.OUTBOUND or self._list is None:
            return []
        key = f"door:{passage.door_id}"
        problems = door_problems(self._list, passage.epcs)
        if problems:
            listed = ", ".join(f"{unit} ({why})" for unit, why in problems)
            await self._sink.raise_alarm(key, f"blocked at door {passage.door_id}: {listed}")
            self._raised.add(key)
        elif key in self._raised:
            self._raised.discard(key)
            await self._sink.clear_alarm(key, f"door {passage.door_id}: clean passage")
        return problems
