"""The alerts of a stream that cannot be processed: stalled, resumed, a batch set aside.

They go through ``cloud.coldchain.alerts.raise_alert`` like every alert (the alarm list, the
webhook outbox and, with ``cloud/alarms``, the notification channels), in the transaction that
records the failure, the success or the decision. Each carries the gateway and the batch in its
``detail``; the ``dedup_key`` names the batch, so a stall of the same batch is raised once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from cloud.coldchain.alerts import NewAlert, raise_alert


@dataclass(frozen=True)
class StreamKey:
    """One gateway boot's stream of records."""

    gateway_id: str
    boot_id: UUID


async def raise_stalled(
    conn: AsyncConnection[TupleRow],
    stream: StreamKey,
    batch_id: int | None,
    *,
    failures: int,
    error: str,
) -> int | None:
    """Critical: the stream's next batch failed ``failures`` times; nothing after it moves."""
    return await raise_alert(
        conn,
        NewAlert(
            kind="stream_stalled",
            severity="critical",
            at=datetime.now(UTC),
            message=(
                f"processing of gateway {stream.gateway_id} stalled: batch {batch_id} failed"
                f" {failures} times; its sensors' data is not being judged. Last error: "
                + error[:300]
            ),
            dedup_key=f"stream_stalled:{stream.gateway_id}:{stream.boot_id}:{batch_id}",
            detail=_detail(stream, batch_id, error=error, failures=failures),
        ),
    )


async def raise_resumed(
    conn: AsyncConnection[TupleRow], stream: StreamKey, batch_id: int
) -> int | None:
    """Info: the batch that stalled the stream was processed after all."""
    return await raise_alert(
        conn,
        NewAlert(
            kind="stream_resumed",
            severity="info",
            at=datetime.now(UTC),
            message=f"processing of gateway {stream.gateway_id} resumed with batch {batch_id}",
            dedup_key=f"stream_resumed:{stream.gateway_id}:{stream.boot_id}:{batch_id}",
            detail=_detail(stream, batch_id),
        ),
    )


async def raise_set_aside(
    conn: AsyncConnection[TupleRow],
    stream: StreamKey,
    batch_id: int,
    *,
    seqs: tuple[int, int],
    actor: str,
    reason: str,
) -> int | None:
    """Warning: records of a set-aside batch were stored but never judged."""
    return await raise_alert(
        conn,
        NewAlert(
            kind="batch_set_aside",
            severity="warning",
            at=datetime.now(UTC),
            message=(
                f"batch {batch_id} of gateway {stream.gateway_id} (seq {seqs[0]}..{seqs[1]})"
                f" was set aside by {actor} and not processed: {reason[:300]}"
            ),
            dedup_key=f"batch_set_aside:{batch_id}",
            detail=_detail(stream, batch_id, actor=actor, reason=reason),
        ),
    )


def _detail(stream: StreamKey, batch_id: int | None, **more: object) -> dict[str, object]:
    return {
        "gateway_id": stream.gateway_id,
        "boot_id": str(stream.boot_id),
        "batch_id": batch_id,
        **more,
    }
