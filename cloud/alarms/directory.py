"""A site's alarm directory (channels, contacts, groups, rotas, policies) and the resolution of a
step's targets into the channels to send on (pure).

>>> from datetime import UTC, date, datetime
>>> d = Directory(channels={"ana-mail", "ops-chat"},
...     contacts={"ana": Contact(display_name="Ana", channels=["ana-mail"])},
...     rotas={"night": Rota(members=["ana"], start_date=date(2026, 1, 1))})
>>> resolve(d, [Target(type="rota", name="night"), Target(type="channel", name="ops-chat")],
...         datetime(2026, 1, 5, tzinfo=UTC), ZoneInfo("UTC"))
([Recipient(channel='ana-mail', contact='ana'), Recipient(channel='ops-chat', contact=None)], [])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from cloud.alarms import ConfigError
from cloud.alarms.policy import Contact, Group, Policy, Target
from cloud.alarms.rota import Rota, on_call


@dataclass(frozen=True)
class Recipient:
    channel: str
    contact: str | None


@dataclass(frozen=True)
class Directory:
    channels: set[str] = field(default_factory=set)
    """Names of the site's enabled channels."""
    contacts: dict[str, Contact] = field(default_factory=dict)
    groups: dict[str, Group] = field(default_factory=dict)
    rotas: dict[str, Rota] = field(default_factory=dict)
    policies: dict[str, Policy] = field(default_factory=dict)


def _contacts_of(d: Directory, target: Target, at: datetime, tz: ZoneInfo) -> list[str]:
    if target.type == "contact":
        return [target.name]
    if target.type == "group":
        group = d.groups.get(target.name)
        return [] if group is None else list(group.members)
    rota = d.rotas.get(target.name)
    return [] if rota is None else [on_call(rota, at, tz)]


def resolve(
    d: Directory, targets: list[Target], at: datetime, tz: ZoneInfo
) -> tuple[list[Recipient], list[str]]:
    """The channels to notify for ``targets`` at ``at``, each once, and what could not be
    resolved (a contact, group or channel removed since the policy was written)."""
    out: dict[tuple[str, str | None], Recipient] = {}
    problems: list[str] = []
    for target in targets:
        if target.type == "channel":
            if target.name in d.channels:
                out.setdefault((target.name, None), Recipient(target.name, None))
            else:
                problems.append(f"channel {target.name!r} is missing or disabled")
            continue
        if target.type != "contact" and target.name not in (
            d.groups if target.type == "group" else d.rotas
        ):
            problems.append(f"{target.type} {target.name!r} does not exist")
            continue
        for name in _contacts_of(d, target, at, tz):
            contact = d.contacts.get(name)
            if contact is None:
                problems.append(f"contact {name!r} does not exist")
                continue
            usable = [c for c in contact.channels if c in d.channels]
            if not usable:
                problems.append(f"contact {name!r} has no enabled channel")
            for channel in usable:
                out.setdefault((channel, name), Recipient(channel, name))
    return list(out.values()), problems


def check_references(d: Directory, kind: str, name: str, spec: object) -> None:
    """Refuses a document that names channels, contacts, groups or rotas the site lacks."""
    missing: list[str] = []
    if isinstance(spec, Contact):
        missing += [f"channel {c!r}" for c in spec.channels if c not in d.channels]
    elif isinstance(spec, Group | Rota):
        members = spec.members + (
            [o.contact for o in spec.overrides] if isinstance(spec, Rota) else []
        )
        missing += [f"contact {m!r}" for m in members if m not in d.contacts]
    elif isinstance(spec, Policy):
        known: dict[str, set[str]] = {
            "contact": set(d.contacts), "group": set(d.groups), "rota": set(d.rotas),
            "channel": d.channels,
        }  # fmt: skip
        for step in spec.steps:
            for t in step.notify:
                if t.name not in known[t.type]:
                    missing.append(f"{t.type} {t.name!r}")
    if missing:
        raise ConfigError(f"{kind} {name!r} names what this site does not have: "
                          + ", ".join(sorted(set(missing))))  # fmt: skip


def referenced_by(d: Directory, kind: str, name: str) -> list[str]:
    """Documents that name ``kind``/``name`` (so it cannot be deleted while they do)."""
    users: list[str] = []
    if kind == "channel":
        users += [f"contact {n!r}" for n, c in d.contacts.items() if name in c.channels]
    if kind == "contact":
        users += [f"group {n!r}" for n, g in d.groups.items() if name in g.members]
        users += [f"rota {n!r}" for n, r in d.rotas.items()
                  if name in r.members or any(o.contact == name for o in r.overrides)]  # fmt: skip
    target_type = {"channel": "channel", "contact": "contact", "group": "group", "rota": "rota"}
    if kind in target_type:
        users += [
            f"policy {n!r}"
            for n, p in d.policies.items()
            if any(t.type == kind and t.name == name for s in p.steps for t in s.notify)
        ]
    return users
