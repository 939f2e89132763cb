"""How far behind the cloud is: what arms the local alarms.

The cloud judges a sensor only on readings it has acknowledged. It is *behind* on a sensor by
the larger of two ages, both measured on the monotonic clock (an NTP step changes neither):

- the age of the oldest record the outbox still holds (every record committed before it is
  acknowledged, so the cloud lacks everything since): a flaky link that succeeds now and then,
  or a catch-up after an outage with fresh data behind a backlog, keeps this age large;
- the age of the freshest acknowledged reading of that sensor (a sensor whose readings never
  reached the cloud since the agent started counts from the start).

Neither depends on an unbroken run of failed requests. The acknowledged position is read from
the outbox itself: it holds exactly the sequence numbers after the last acknowledged one, so
``acknowledged through = last_seq - records``.

Memory is bounded: the outbox as a whole and each sensor keep at most ``_MAX_MARKS``
(sequence, commit time) marks of unacknowledged commits. Beyond that, the two neighbouring marks
covering the fewest sequence numbers merge into one with the later number and the *earlier*
time, so the error (about 1/``_MAX_MARKS`` of the backlog) always makes the cloud look further
behind (local alarms armed), never less.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from datetime import timedelta

from edge.clock import Clock
from edge.outbox import OutboxStats
from protocols.records import Reading, Record

_MAX_MARKS = 64


class _Marks:
    """(seq, monotonic commit time) of unacknowledged commits, oldest first, thinned when long."""

    def __init__(self) -> None:
        self.marks: deque[tuple[int, float]] = deque()
        self.acked_at: float | None = None
        """Commit time of the freshest acknowledged mark."""
        self.floor = 0
        """The sequence number acknowledged last (the first mark covers what follows it)."""

    def add(self, seq: int, at: float) -> None:
        if self.marks and self.marks[-1][0] == seq:
            return
        self.marks.append((seq, at))
        if len(self.marks) > _MAX_MARKS:
            self._merge_narrowest()

    def _merge_narrowest(self) -> None:
        """Merges the adjacent pair covering the fewest sequence numbers (spans stay even);
        the merged mark keeps the later number and the earlier time. The newest stays exact."""
        marks = self.marks
        best, width = 0, None
        for i in range(len(marks) - 2):
            before = marks[i - 1][0] if i else self.floor
            span = marks[i + 1][0] - before
            if width is None or span < width:
                best, width = i, span
        merged = (marks[best + 1][0], marks[best][1])
        del marks[best]
        marks[best] = merged

    def ack(self, through: int) -> None:
        self.floor = max(self.floor, through)
        while self.marks and self.marks[0][0] <= through:
            self.acked_at = self.marks.popleft()[1]


class CloudLag:
    """Tracks commits and acknowledgements; ``behind(sensor)`` is what arms local alarms."""

    def __init__(self, clock: Clock, stats: Callable[[], OutboxStats]) -> None:
        self._clock = clock
        self._stats = stats
        self._started = clock.monotonic()
        self._all = _Marks()
        self._sensors: dict[str, _Marks] = {}
        start = stats()
        self._boot_id = start.boot_id
        if start.records:
            # Records inherited from the file: their wall-clock age is the best estimate there is.
            age = 0.0
            if start.oldest_appended_at is not None:
                age = max(0.0, (clock.now() - start.oldest_appended_at).total_seconds())
            self._all.add(start.last_seq, self._started - age)

    def committed(self, last_seq: int, records: Iterable[Record]) -> None:
        """Records of one append, whose last sequence number is ``last_seq``."""
        now = self._clock.monotonic()
        self._all.add(last_seq, now)
        for record in records:
            if isinstance(record, Reading):
                self._sensors.setdefault(record.sensor_id, _Marks()).add(last_seq, now)

    def _acknowledged_through(self) -> int:
        stats = self._stats()
        if stats.boot_id != self._boot_id:
            self._renumbered(stats.last_seq)
            self._boot_id = stats.boot_id
        through = stats.last_seq - stats.records
        self._all.ack(through)
        return through

    def _renumbered(self, last_seq: int) -> None:
        """The outbox moved to a new boot (rebased): what waits keeps its oldest commit time."""
        for marks in (self._all, *self._sensors.values()):
            if marks.marks:
                marks.marks = deque([(last_seq, marks.marks[0][1])])

    def oldest_unacknowledged(self) -> timedelta:
        """Age of the oldest record the cloud has not acknowledged (zero when none)."""
        self._acknowledged_through()
        if not self._stats().records:
            return timedelta(0)
        # The first mark left covers the oldest waiting record, at (or before) its commit time.
        since = self._all.marks[0][1] if self._all.marks else self._started
        return timedelta(seconds=max(0.0, self._clock.monotonic() - since))

    def sensor_stale(self, sensor_id: str) -> timedelta:
        """Age of the freshest reading of ``sensor_id`` the cloud acknowledged."""
        through = self._acknowledged_through()
        marks = self._sensors.get(sensor_id)
        if marks is None:
            return timedelta(seconds=self._clock.monotonic() - self._started)
        marks.ack(through)
        since = marks.acked_at if marks.acked_at is not None else self._started
        return timedelta(seconds=max(0.0, self._clock.monotonic() - since))

    def behind(self, sensor_id: str) -> timedelta:
        """How far behind the cloud is on ``sensor_id``: the larger of the two ages."""
        return max(self.oldest_unacknowledged(), self.sensor_stale(sensor_id))
