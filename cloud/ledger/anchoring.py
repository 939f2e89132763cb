"""Exporting the chain head at intervals, signed, for anchoring outside the database.

Signatures stop a forger who lacks the key; an anchor kept elsewhere also stops someone who
removes the last entries (or the whole chain after a point) and fixes the head. Every interval,
when the head has moved, the service writes one signed record to three places: a log line, a
JSON-lines file (fsynced; ship it to write-once storage) and an optional webhook (a time-stamping
or archive service). ``coldtrace ledger verify --anchors-file`` reads the file back.

A record: ``{"entry_id": 42, "entry_hash": "<hex>", "at": "<RFC 3339>", "key_id": "<hex>",
"signature": "<hex>"}``, the signature over (entry id, hash) by the ledger key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated

import httpx
import psycopg
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from cloud.ledger.signing import LedgerSigner, TrustedKeys

log = logging.getLogger(__name__)


class AnchorSettings(BaseModel):
    """Where and how often the signed chain head is exported."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval: Annotated[timedelta, Field(gt=timedelta(0))] = timedelta(minutes=15)
    """Time between exports (an export happens only when the head moved)."""
    file: Path | None = None
    """JSON-lines file the records are appended to."""
    webhook_url: HttpUrl | None = None
    """Each record is POSTed here as JSON. A failure is logged; the next export, of a later
    head, covers the entries of the one that failed."""


@dataclass(frozen=True)
class Anchor:
    entry_id: int
    entry_hash: bytes
    at: datetime
    key_id: str | None
    signature: bytes | None

    def to_json(self) -> str:
        return json.dumps(
            {
                "entry_id": self.entry_id,
                "entry_hash": self.entry_hash.hex(),
                "at": self.at.isoformat(),
                "key_id": self.key_id,
                "signature": self.signature.hex() if self.signature else None,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, line: str) -> Anchor:
        """Raises ValueError on a malformed record."""
        try:
            data = json.loads(line)
            signature = data.get("signature")
            return cls(
                int(data["entry_id"]),
                bytes.fromhex(data["entry_hash"]),
                datetime.fromisoformat(data["at"]),
                data.get("key_id"),
                bytes.fromhex(signature) if signature else None,
            )
        except (KeyError, TypeError, json.JSONDecodeError) as err:
            raise ValueError(f"not an anchor record: {err}") from err

    def signed_by(self, keys: TrustedKeys) -> bool:
        return (
            self.key_id is not None
            and self.signature is not None
            and keys.head_ok(self.key_id, self.entry_id, self.entry_hash, self.signature)
        )


async def read_anchor(
    conn: AsyncConnection[TupleRow], signer: LedgerSigner | None, now: datetime
) -> Anchor | None:
    """The current head, signed; None when the ledger is empty."""
    cur = await conn.execute("SELECT last_entry_id, last_hash FROM ledger_head")
    row = await cur.fetchone()
    if row is None or row[0] is None:
        return None
    entry_id, digest = int(row[0]), bytes(row[1])
    if signer is None:
        return Anchor(entry_id, digest, now, None, None)
    return Anchor(entry_id, digest, now, signer.key_id, signer.sign_head(entry_id, digest))


def _append(path: Path, line: str) -> None:
    with path.open("a", encoding="utf-8") as out:
        out.write(line + "\n")
        out.flush()
        os.fsync(out.fileno())


async def export(anchor: Anchor, settings: AnchorSettings, client: httpx.AsyncClient) -> None:
    """Log line, file, webhook. A file error raises (the caller logs it and tries again); a
    webhook error is logged."""
    record = anchor.to_json()
    log.info("ledger head %d:%s anchor %s", anchor.entry_id, anchor.entry_hash.hex(), record)
    if settings.file is not None:
        await asyncio.to_thread(_append, settings.file, record)
    if settings.webhook_url is not None:
        try:
            response = await client.post(
                str(settings.webhook_url),
                content=record,
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            response.raise_for_status()
        except httpx.HTTPError as err:
            log.warning("ledger head webhook failed (sent again next time): %s", err)


async def run_anchoring(
    pool: AsyncConnectionPool[AsyncConnection[TupleRow]],
    signer: LedgerSigner | None,
    settings: AnchorSettings,
    client: httpx.AsyncClient,
    stop: asyncio.Event,
) -> None:
    """Exports the head every ``interval`` while it moves, until ``stop``."""
    last: tuple[int, bytes] | None = None
    while not stop.is_set():
        try:
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT now()")
                row = await cur.fetchone()
                assert row is not None
                anchor = await read_anchor(conn, signer, row[0])
            if anchor is not None and (anchor.entry_id, anchor.entry_hash) != last:
                await export(anchor, settings, client)
                last = (anchor.entry_id, anchor.entry_hash)
        except (OSError, psycopg.Error) as err:
            # database down (pool timeout) or the file not writable: said, and tried again
            log.warning("ledger head export failed, retrying next interval: %s", err)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=settings.interval.total_seconds())
