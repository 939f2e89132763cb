"""Storage of what ingest refuses: scope lookups, refused records as dead letters, counts.

Runs inside the caller's transaction and never commits. A record refused for its scope is
stored in ``dead_letters`` with ``refusal`` set and the record's JSON as ``raw``: it keeps its
sequence number (the stream stays contiguous, the processor rebuilds it as a ``DeadLetter`` and
no step judges it) and an admin can read it (``GET /v1/dead-letters``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.ingest.scope import Subject, Verdict, Writer
from protocols.batch import Sequenced
from protocols.records import DeadLetter

REFUSED_SOURCE = "cloud:scope"
"""``dead_letters.source`` of a record the cloud refused to apply."""

_SUBJECTS_SQL = """
SELECT u.id, lm.site_id, li.site_id, d.gateway_id, og.site_id, g.gateway_id IS NOT NULL
FROM unnest(%s::text[]) AS u(id)
LEFT JOIN sensors s ON s.sensor_id = u.id
LEFT JOIN devices d ON d.device_id = u.id
LEFT JOIN locations lm ON lm.location_id = coalesce(s.location_id, d.location_id)
LEFT JOIN locations li ON li.location_id = u.id
LEFT JOIN gateways og ON og.gateway_id = d.gateway_id
LEFT JOIN gateways g ON g.gateway_id = u.id
"""


async def writer_of(conn: AsyncConnection[TupleRow], gateway_id: str) -> tuple[Writer, datetime]:
    """The gateway and its site as registered now, and the transaction's time (cloud receipt)."""
    cur = await conn.execute(
        "SELECT (SELECT site_id FROM gateways WHERE gateway_id = %s), now()", (gateway_id,)
    )
    row = await cur.fetchone()
    assert row is not None
    return Writer(gateway_id, None if row[0] is None else str(row[0])), row[1]


async def subjects(conn: AsyncConnection[TupleRow], ids: Iterable[str]) -> dict[str, Subject]:
    """What the cloud knows of each id (only ids it knows anything of are returned)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    cur = await conn.execute(_SUBJECTS_SQL, (wanted,))
    found: dict[str, Subject] = {}
    for sid, mounted, located, owner, owner_site, is_gateway in await cur.fetchall():
        subject = Subject(str(sid), mounted, located, owner, owner_site, bool(is_gateway))
        if subject != Subject(str(sid)):
            found[str(sid)] = subject
    return found


@dataclass(frozen=True)
class RefusedRecord:
    item: Sequenced
    verdict: Verdict


async def store_refused(
    conn: AsyncConnection[TupleRow],
    gateway_id: str,
    boot_id: UUID,
    refused: Sequence[RefusedRecord],
    received_at: datetime,
) -> None:
    """Keeps refused records as cloud-made dead letters (their JSON, the reason, the code)."""
    if not refused:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO dead_letters (gateway_id, boot_id, seq, source, reason, raw,"
            " received_at, refusal, record_kind) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT DO NOTHING",
            [
                (
                    gateway_id,
                    boot_id,
                    r.item.seq,
                    REFUSED_SOURCE,
                    r.verdict.reason[:2000],
                    r.item.record.model_dump_json().encode(),
                    getattr(r.item.record, "received_at", received_at),
                    r.verdict.refusal.value,
                    r.item.record.kind,
                )
                for r in refused
            ],
        )


DEAD_LETTER = "dead_letter"
"""``gateway_refusals.reason`` of the dead letters a gateway made itself (its decoders, or
records the cloud answered 422 and the gateway then sent as dead letters)."""


def tally(
    refused: Sequence[RefusedRecord], admitted: Sequence[Sequenced]
) -> tuple[Counter[str], dict[str, str]]:
    """Counts per reason, and the last detail of each, for ``count_refusals``."""
    counts: Counter[str] = Counter()
    details: dict[str, str] = {}
    for r in refused:
        counts[r.verdict.refusal.value] += 1
        details[r.verdict.refusal.value] = r.verdict.reason
    for item in admitted:
        if isinstance(item.record, DeadLetter):
            counts[DEAD_LETTER] += 1
            details[DEAD_LETTER] = item.record.reason
    return counts, details


async def count_refusals(
    conn: AsyncConnection[TupleRow],
    gateway_id: str,
    counts: Counter[str],
    details: dict[str, str],
) -> None:
    """Adds to ``gateway_refusals`` (one row per gateway and reason; unknown gateways ignored)."""
    if not counts:
        return
    reasons = sorted(counts)
    await conn.execute(
        "INSERT INTO gateway_refusals (gateway_id, reason, refused, last_at, last_detail)"
        " SELECT %s, r, n, now(), d FROM unnest(%s::text[], %s::int8[], %s::text[]) AS u(r, n, d)"
        " WHERE EXISTS (SELECT 1 FROM gateways WHERE gateway_id = %s)"
        " ON CONFLICT (gateway_id, reason) DO UPDATE SET"
        " refused = gateway_refusals.refused + EXCLUDED.refused, last_at = EXCLUDED.last_at,"
        " last_detail = EXCLUDED.last_detail",
        (
            gateway_id,
            reasons,
            [counts[r] for r in reasons],
            [details.get(r, "")[:2000] for r in reasons],
            gateway_id,
        ),
    )
