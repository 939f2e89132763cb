"""Dock-door portal logic: tag reads in, ``PortalPassage`` records out. Pure (no I/O, no clock).

A door has outside antennas (yard side) and inside antennas (warehouse side) on one reader.
Every time is the reader's (``first_seen``/``last_seen`` of the reads); the caller moves time on
with :meth:`Portal.advance` (for instance the latest reader time seen, or gateway time mapped onto
the reader's clock) so a passage closes even when no read follows it.

Rules, in order, for each read of the door's reader on one of its antennas:

1. **RSSI threshold**: reads weaker than ``rssi_threshold`` are ignored (tags parked a few
   metres away reach the antennas weakly).
2. **Debounce**: a tag that was part of a passage is ignored until ``debounce`` after it was
   last seen; reads meanwhile push that time on (a case lingering at the door edge does not make
   a second passage).
3. **Parked tags**: a tag read without a break longer than ``quiet_gap`` for more than
   ``max_dwell`` is standing near the door, not passing; it never joins a passage and its reads
   do not keep a passage open.
4. **Passage**: strong reads join the open passage; it closes after ``quiet_gap`` without a
   strong read of a passing tag. Tags with fewer than ``min_reads`` reads (sparse strays) are
   left out; a passage with no tag left is not reported.
5. **Direction**: each tag seen on both sides votes *in* when the outside antennas saw it first,
   *out* when the inside ones did; the majority wins, a tie or no vote gives ``unknown``.

The passage id is derived from the door, the start time and the EPCs, so replaying the same
reads gives the same ids.

>>> from datetime import UTC, datetime, timedelta
>>> door = DoorConfig(door_id="dock-1", reader_id="r1", outside_antennas=(1,), inside_antennas=(2,))
>>> portal = Portal(door)
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> def read(antenna, s):
...     t = t0 + timedelta(seconds=s)
...     return TagRead(reader_id="r1", antenna=antenna, epc="3000AAAA", rssi=-50, first_seen=t,
...                    last_seen=t, count=2, received_at=t)
>>> [p for a, s in [(1, 0), (1, 1), (2, 2), (2, 3)] for p in portal.feed(read(a, s))]
[]
>>> [(p.direction.value, p.epcs) for p in portal.advance(t0 + timedelta(seconds=10))]
[('in', ('3000AAAA',))]
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from protocols.records import DeviceId, Direction, PortalPassage, Record, TagRead

_Delta = Annotated[timedelta, Field(gt=timedelta(0))]
_Antenna = Annotated[int, Field(ge=1, le=65535)]


class DoorConfig(BaseModel):
    """One dock door: its reader and antennas, and the thresholds that make a passage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    door_id: DeviceId
    reader_id: DeviceId
    outside_antennas: tuple[_Antenna, ...]
    inside_antennas: tuple[_Antenna, ...]
    rssi_threshold: float = Field(default=-65.0, ge=-128, le=20, description="dBm")
    min_reads: int = Field(default=3, ge=1)
    quiet_gap: _Delta = timedelta(seconds=3)
    max_dwell: _Delta = timedelta(seconds=45)
    debounce: _Delta = timedelta(seconds=20)

    @model_validator(mode="after")
    def _sides(self) -> DoorConfig:
        outside, inside = set(self.outside_antennas), set(self.inside_antennas)
        if not outside or not inside:
            raise ValueError("a door needs at least one outside and one inside antenna")
        if outside & inside:
            raise ValueError(f"antennas {sorted(outside & inside)} are on both sides")
        if self.max_dwell <= self.quiet_gap:
            raise ValueError("max_dwell must be longer than quiet_gap")
        return self


@dataclass(slots=True)
class _Track:
    first: datetime
    last: datetime
    reads: int = 0
    first_outside: datetime | None = None
    first_inside: datetime | None = None


@dataclass(slots=True)
class _Presence:
    first: datetime
    last: datetime


def passage_id(door_id: str, started_at: datetime, epcs: Iterable[str]) -> str:
    """A stable id for a passage.

    >>> from datetime import UTC, datetime
    >>> passage_id("dock-1", datetime(2026, 1, 1, tzinfo=UTC), ["3000AA"])
    'dock-1:20260101T000000.000000Z:2a3bb395161653a6a5c4a577'
    """
    digest = hashlib.sha256("\n".join([door_id, started_at.isoformat(), *epcs]).encode())
    return f"{door_id}:{started_at:%Y%m%dT%H%M%S.%fZ}:{digest.hexdigest()[:24]}"


class Portal:
    """The passage detector of one door; see the module docstring for the rules."""

    def __init__(self, config: DoorConfig) -> None:
        self.config = config
        self._outside = frozenset(config.outside_antennas)
        self._inside = frozenset(config.inside_antennas)
        self._tracks: dict[str, _Track] = {}
        self._activity: datetime | None = None
        self._presence: dict[str, _Presence] = {}
        self._debounced: dict[str, datetime] = {}
        self._pruned: datetime | None = None

    def accepts(self, read: TagRead) -> bool:
        """Whether ``read`` comes from this door's reader and antennas."""
        return read.reader_id == self.config.reader_id and (
            read.antenna in self._outside or read.antenna in self._inside
        )

    def feed(self, read: TagRead) -> list[PortalPassage]:
        """Take one read; returns the passages it closed (those quiet before it started)."""
        if not self.accepts(read):
            return []
        out = self.advance(read.first_seen)
        cfg = self.config
        if read.rssi is not None and read.rssi < cfg.rssi_threshold:
            return out
        epc = read.epc
        until = self._debounced.get(epc)
        if until is not None and read.first_seen <= until:
            self._debounced[epc] = max(until, read.last_seen + cfg.debounce)
            return out
        if self._is_parked(epc, read):
            return out
        track = self._tracks.get(epc)
        if track is None:
            track = self._tracks[epc] = _Track(read.first_seen, read.last_seen)
        track.first = min(track.first, read.first_seen)
        track.last = max(track.last, read.last_seen)
        track.reads += read.count
        if read.antenna in self._outside:
            track.first_outside = _earliest(track.first_outside, read.first_seen)
        else:
            track.first_inside = _earliest(track.first_inside, read.first_seen)
        self._activity = max(self._activity or read.last_seen, read.last_seen)
        return out

    def _is_parked(self, epc: str, read: TagRead) -> bool:
        """Update the tag's presence; True when it has stood at the door beyond max_dwell."""
        p = self._presence.get(epc)
        if p is None or read.first_seen - p.last > self.config.quiet_gap:
            p = self._presence[epc] = _Presence(read.first_seen, read.last_seen)
        p.last = max(p.last, read.last_seen)
        return p.last - p.first > self.config.max_dwell

    def advance(self, now: datetime) -> list[PortalPassage]:
        """Close the open passage if it has been quiet for ``quiet_gap`` at reader time ``now``."""
        cfg = self.config
        out: list[PortalPassage] = []
        if self._activity is not None and now - self._activity > cfg.quiet_gap:
            out = self.flush()
        if self._pruned is None or now - self._pruned > cfg.quiet_gap:
            # Forget tags gone for a quiet gap; at most once per gap, not on every read.
            self._pruned = now
            horizon = now - cfg.quiet_gap
            self._presence = {e: p for e, p in self._presence.items() if p.last >= horizon}
            self._debounced = {e: u for e, u in self._debounced.items() if u >= now}
        return out

    def flush(self) -> list[PortalPassage]:
        """Close the open passage now (at shutdown, or when time moved on)."""
        tracks, self._tracks, self._activity = self._tracks, {}, None
        members = {
            epc: t
            for epc, t in tracks.items()
            if t.reads >= self.config.min_reads and not self._parked_now(epc)
        }
        if not members:
            return []
        for epc, t in members.items():
            self._debounced[epc] = t.last + self.config.debounce
        started = min(t.first for t in members.values())
        epcs = tuple(sorted(members))
        return [
            PortalPassage(
                passage_id=passage_id(self.config.door_id, started, epcs),
                door_id=self.config.door_id,
                reader_id=self.config.reader_id,
                direction=_direction(members.values()),
                started_at=started,
                ended_at=max(t.last for t in members.values()),
                epcs=epcs,
            )
        ]

    def _parked_now(self, epc: str) -> bool:
        p = self._presence.get(epc)
        return p is not None and p.last - p.first > self.config.max_dwell


def _earliest(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b < a else a


def _direction(tracks: Iterable[_Track]) -> Direction:
    inbound = outbound = 0
    for t in tracks:
        if t.first_outside is None or t.first_inside is None:
            continue
        if t.first_outside < t.first_inside:
            inbound += 1
        elif t.first_inside < t.first_outside:
            outbound += 1
    if inbound > outbound:
        return Direction.INBOUND
    if outbound > inbound:
        return Direction.OUTBOUND
    return Direction.UNKNOWN


class Portals:
    """Every door of a gateway: routes each TagRead to the door(s) of its reader and antenna."""

    def __init__(self, doors: Iterable[DoorConfig]) -> None:
        self.portals = [Portal(d) for d in doors]
        ids = [p.config.door_id for p in self.portals]
        if len(set(ids)) != len(ids):
            raise ValueError("door ids must be unique")

    def feed(self, records: Iterable[Record]) -> list[PortalPassage]:
        """Take a source's records (anything but TagReads is ignored); returns closed passages."""
        out: list[PortalPassage] = []
        for record in records:
            if isinstance(record, TagRead):
                for portal in self.portals:
                    out += portal.feed(record)
        return out

    def advance(self, now: datetime) -> list[PortalPassage]:
        return [p for portal in self.portals for p in portal.advance(now)]

    def flush(self) -> list[PortalPassage]:
        return [p for portal in self.portals for p in portal.flush()]
