"""Which records a gateway may write: those of its own site, and devices no other gateway owns.

A gateway is registered to one site (``gateways.site_id``). Every record names a device or a
place (a reading its sensor, a tag read its reader, a passage its door and reader, a status its
device), and the cloud knows where that subject belongs:

- **mounted**: a sensor or reader mounted at a location (``sensors``/``devices.location_id``), or
  a door that is itself a location, belongs to that location's site;
- **not mounted**: a device belongs to the site of the gateway that reported it first
  (``devices.gateway_id``, set once by the processor); a device nobody has reported yet is free,
  and the writing gateway becomes its first reporter;
- **device status** is stricter: only the device's own gateway may report it (a status changes
  the device's state, which is its gateway's to say), and no gateway may report another gateway.

A record whose subject belongs elsewhere is refused (``Verdict``); ingest stores it as a dead
letter made by the cloud, never in the record's table, so it is never judged. A gateway without
a site (registered before sites were required) may only write for subjects bound to no site.

>>> w = Writer("gw-1", "site-1")
>>> fridge = Subject("fridge/t", mounted_site="site-2")
>>> judge(w, _reading("fridge/t"), {"fridge/t": fridge}).refusal
<Refusal.FOREIGN_SITE: 'foreign_site'>
>>> judge(w, _reading("new/t"), {}) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from protocols.records import (
    DeadLetter,
    DeviceState,
    DeviceStatus,
    PortalPassage,
    Reading,
    Record,
    TagRead,
)


class Refusal(StrEnum):
    """Why the cloud refused to apply a record (``dead_letters.refusal``)."""

    FOREIGN_SITE = "foreign_site"
    """The subject belongs to another site."""
    FOREIGN_DEVICE = "foreign_device"
    """A status of a device another gateway owns, or of another gateway."""
    NO_SITE = "no_site"
    """The gateway has no site and the subject belongs to one."""


@dataclass(frozen=True)
class Writer:
    """The authenticated gateway and the site it is registered to."""

    gateway_id: str
    site_id: str | None


@dataclass(frozen=True)
class Subject:
    """What the cloud knows of an id a record names (all None: never seen, bound nowhere)."""

    subject_id: str
    mounted_site: str | None = None
    """Site of the location the device is mounted at."""
    location_site: str | None = None
    """Site of the location of that id, when the id is a location (a dock door)."""
    owner: str | None = None
    """The gateway that reported the device first."""
    owner_site: str | None = None
    is_gateway: bool = False
    """The id is a registered gateway."""


@dataclass(frozen=True)
class Verdict:
    refusal: Refusal
    reason: str


def subject_ids(records: Iterable[Record]) -> set[str]:
    """Every id the scope rules look up for ``records``.

    >>> sorted(subject_ids([_reading("a"), _reading("b"), _reading("a")]))
    ['a', 'b']
    """
    ids: set[str] = set()
    for record in records:
        if isinstance(record, Reading):
            ids.add(record.sensor_id)
        elif isinstance(record, TagRead):
            ids.add(record.reader_id)
        elif isinstance(record, PortalPassage):
            ids.update((record.door_id, record.reader_id))
        elif isinstance(record, DeviceStatus):
            ids.add(record.device_id)
    return ids


def scope_key(record: Record) -> tuple[str, ...]:
    """What ``judge`` depends on in ``record``: records with one key get one verdict, so a
    batch is judged once per subject, not once per record.

    >>> scope_key(_reading("a")), scope_key(_status("a"))
    (('reading', 'a'), ('device_status', 'a'))
    """
    if isinstance(record, Reading):
        return (record.kind, record.sensor_id)
    if isinstance(record, TagRead):
        return (record.kind, record.reader_id)
    if isinstance(record, PortalPassage):
        return (record.kind, record.door_id, record.reader_id)
    if isinstance(record, DeviceStatus):
        return (record.kind, record.device_id)
    return (record.kind,)


def judge(writer: Writer, record: Record, known: Mapping[str, Subject]) -> Verdict | None:
    """None when ``writer`` may write ``record``, else why not.

    >>> w = Writer("gw-1", "site-1")
    >>> theirs = Subject("probe", owner="gw-2", owner_site="site-1")
    >>> judge(w, _reading("probe"), {"probe": theirs}) is None  # same site: shared loggers
    True
    >>> judge(w, _status("probe"), {"probe": theirs}).refusal
    <Refusal.FOREIGN_DEVICE: 'foreign_device'>
    """
    if isinstance(record, DeadLetter):
        return None  # the gateway's own account of input it could not read
    if isinstance(record, Reading):
        return _device(writer, "sensor", _get(known, record.sensor_id))
    if isinstance(record, TagRead):
        return _device(writer, "reader", _get(known, record.reader_id))
    if isinstance(record, PortalPassage):
        door = _get(known, record.door_id)
        return _place(writer, "door", door.subject_id, door.location_site or door.mounted_site) or (
            _device(writer, "reader", _get(known, record.reader_id))
        )
    return _status_of(writer, record, _get(known, record.device_id))


def _get(known: Mapping[str, Subject], subject_id: str) -> Subject:
    return known.get(subject_id) or Subject(subject_id)


def _place(writer: Writer, what: str, subject_id: str, site: str | None) -> Verdict | None:
    if site is None or site == writer.site_id:
        return None
    if writer.site_id is None:
        return Verdict(
            Refusal.NO_SITE,
            f"{what} {subject_id!r} belongs to site {site!r} and gateway {writer.gateway_id!r}"
            " is registered to no site",
        )
    return Verdict(
        Refusal.FOREIGN_SITE,
        f"{what} {subject_id!r} belongs to site {site!r}, not to site {writer.site_id!r} of"
        f" gateway {writer.gateway_id!r}",
    )


def _other_gateway(writer: Writer, what: str, s: Subject) -> Verdict | None:
    if s.is_gateway and s.subject_id != writer.gateway_id:
        return Verdict(
            Refusal.FOREIGN_DEVICE,
            f"{what} {s.subject_id!r} is another gateway; only it reports for itself",
        )
    return None


def _device(writer: Writer, what: str, s: Subject) -> Verdict | None:
    foreign = _other_gateway(writer, what, s)
    if foreign is not None:
        return foreign
    if s.mounted_site is not None:
        return _place(writer, what, s.subject_id, s.mounted_site)
    if s.owner is None or s.owner == writer.gateway_id:
        return None
    if s.owner_site is not None and s.owner_site == writer.site_id:
        return None  # another gateway of the same site: two gateways hearing one logger
    return Verdict(
        Refusal.NO_SITE if writer.site_id is None else Refusal.FOREIGN_SITE,
        f"{what} {s.subject_id!r} is mounted nowhere and was first reported by gateway"
        f" {s.owner!r} of site {s.owner_site!r}; gateway {writer.gateway_id!r} writes for site"
        f" {writer.site_id!r}",
    )


def _status_of(writer: Writer, status: DeviceStatus, s: Subject) -> Verdict | None:
    if s.subject_id == writer.gateway_id:
        return None
    foreign = _other_gateway(writer, "device", s)
    if foreign is not None:
        return foreign
    site = s.mounted_site or s.location_site
    placed = _place(writer, "device", s.subject_id, site)
    if placed is not None:
        return placed
    if s.owner is None or s.owner == writer.gateway_id:
        return None
    if site is not None and s.owner_site != site:
        # Mounted at the writer's site but first reported from elsewhere (before it was
        # mounted): the mount decides, and the processor hands the device to this gateway.
        return None
    return Verdict(
        Refusal.FOREIGN_DEVICE,
        f"device {s.subject_id!r} belongs to gateway {s.owner!r}; only it reports the"
        " device's status",
    )


_T = datetime(2026, 1, 1, tzinfo=UTC)


def _reading(sensor_id: str) -> Reading:
    return Reading(sensor_id=sensor_id, time=_T, value=5.0, received_at=_T)


def _status(device_id: str) -> DeviceStatus:
    return DeviceStatus(
        device_id=device_id, device_type="sensor", state=DeviceState.ONLINE, time=_T
    )
