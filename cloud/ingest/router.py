"""``POST /v1/batches``: authenticate, read within limits, validate, store, acknowledge.

The order matters: the token is checked before the body is read (an unknown client costs one
indexed lookup, not a decompression), and the acknowledgement is built only after the writer's
transaction has committed.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from psycopg import AsyncConnection
from psycopg import Error as PsycopgError
from psycopg import errors as pg_errors
from psycopg.rows import TupleRow
from psycopg_pool import PoolTimeout

from cloud.api.deps import Pool, Settings
from cloud.api.documents import body_schema
from cloud.config import CloudSettings
from cloud.ingest import IngestError, InvalidBatchError, StorageUnavailableError
from cloud.ingest.admission import AdmissionSettings, record_problems
from cloud.ingest.agents import AgentVersions
from cloud.ingest.auth import GatewayIdentity, authenticate, authorize, bearer_token
from cloud.ingest.body import decode, parse, read_limited
from cloud.ingest.column_writer import FallBack, store_columns
from cloud.ingest.columns import (
    ReadingColumns,
    decode_readings,
    outside_horizons,
    physical_problem,
)
from cloud.ingest.gate import StreamBusyError, StreamGate
from cloud.ingest.refusals import count_refusals
from cloud.ingest.writer import StoreResult, store_batch
from cloud.limits.middleware import request_lease
from protocols.batch import Batch, BatchAck, BatchError

log = logging.getLogger(__name__)

router = APIRouter(tags=["ingest"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": BatchError, "description": description}
    for status, description in [
        (400, "unreadable body"),
        (401, "missing or unknown gateway token"),
        (403, "the token belongs to another gateway"),
        (409, "sequence gap: resend from detail[0].expected_seq"),
        (413, "body too large (compressed or decompressed)"),
        (415, "unsupported Content-Encoding"),
        (422, "not a valid batch"),
        (503, "database unavailable; retry later"),
    ]
}


def error_response(err: IngestError) -> JSONResponse:
    body = BatchError(error=f"{err.code}: {err.message}", detail=err.detail)
    headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else {}
    if err.status == 503:
        headers["Retry-After"] = "5"
    return JSONResponse(body.model_dump(mode="json"), status_code=err.status, headers=headers)


@router.post(
    "/v1/batches",
    response_model=BatchAck,
    responses=_ERRORS,
    openapi_extra=body_schema(Batch),
)
async def post_batch(request: Request, pool: Pool, settings: Settings) -> BatchAck | JSONResponse:
    """Stores a gateway's batch exactly once and acknowledges what is stored.

    The body is the batch as JSON, normally with ``Content-Encoding: gzip``; the gateway's token
    comes as ``Authorization: Bearer <token>``.
    """
    headers = request.headers
    identity: GatewayIdentity | None = None
    try:
        token = bearer_token(headers.get("authorization"))
        async with pool.connection() as conn:
            identity = await authenticate(conn, token)
        body = await read_limited(
            request.stream(), headers.get("content-length"), settings.max_batch_bytes
        )
        lease = request_lease(request.scope)
        raw = decode(
            body,
            headers.get("content-encoding"),
            settings.max_batch_decompressed_bytes,
            None if lease is None else lease.take,
        )
        gateway_id, boot_id, result = await _ingest(request, pool, settings, identity, raw)
        versions = _versions(request)
        # a connection only when the agent's version is new to this worker (rarely)
        if (
            version := versions.changed(identity.gateway_id, headers.get("user-agent"))
        ) is not None:
            async with pool.connection() as conn:
                await versions.record(conn, identity.gateway_id, version)
    except IngestError as err:
        if isinstance(err, InvalidBatchError) and identity is not None:
            await _count(pool, identity.gateway_id, err)
        return error_response(err)
    except (pg_errors.DataError, pg_errors.IntegrityError) as err:
        # Validation should have caught it; the database is the last line and says why.
        log.warning("batch refused by the database: %s", err)
        return error_response(InvalidBatchError("the database refused a value", str(err)))
    except (pg_errors.LockNotAvailable, pg_errors.QueryCanceled) as err:
        log.warning("batch not stored in time: %s", err)
        return error_response(
            StreamBusyError(f"stream or database busy ({type(err).__name__}); retry later")
        )
    except (PsycopgError, PoolTimeout) as err:
        log.warning("batch not stored, database unavailable: %s", err)
        return error_response(
            StorageUnavailableError(f"database unavailable: {type(err).__name__}")
        )
    return BatchAck(gateway_id=gateway_id, boot_id=boot_id, stored_through=result.stored_through)


def _versions(request: Request) -> AgentVersions:
    """This application's record of the agents' versions (one per worker process)."""
    state = request.app.state
    found: AgentVersions | None = getattr(state, "agent_versions", None)
    if found is None:
        found = state.agent_versions = AgentVersions()
    return found


async def _ingest(
    request: Request, pool: Pool, settings: CloudSettings, identity: GatewayIdentity, raw: bytes
) -> tuple[str, UUID, StoreResult]:
    """Validates and stores the batch; the gateway and boot it belongs to, and what was stored.

    A readings-only batch that is surely valid takes the columnar path (``columns``,
    ``column_writer``); any other batch, or one that path hands back, the contract's models.
    """
    cols = decode_readings(raw)
    if cols is not None:
        authorize(identity, cols.gateway_id)
    if cols is not None and admissible(cols, datetime.now(UTC), settings.admission):
        try:
            async with _stream(request, settings, pool, cols.gateway_id, cols.boot_id) as conn:
                stored = await store_columns(
                    conn,
                    cols,
                    max_chunks=settings.admission.max_chunks_per_batch,
                    timeouts=settings.ingest_timeouts,
                )
        except FallBack:
            pass  # the general path stores it, or refuses it with the contract's message
        else:
            return cols.gateway_id, cols.boot_id, stored
    batch = parse(raw)
    authorize(identity, batch.gateway_id)
    admit(batch, datetime.now(UTC), settings.admission)
    async with _stream(request, settings, pool, batch.gateway_id, batch.boot_id) as conn:
        stored = await store_batch(
            conn,
            batch,
            max_chunks=settings.admission.max_chunks_per_batch,
            timeouts=settings.ingest_timeouts,
        )
    return batch.gateway_id, batch.boot_id, stored


@asynccontextmanager
async def _stream(
    request: Request, settings: CloudSettings, pool: Pool, gateway_id: str, boot_id: UUID
) -> AsyncIterator[AsyncConnection[TupleRow]]:
    """A connection for writing the stream (gateway, boot), after its turn in the gate.

    Waits for its stream in this process without a connection, then boundedly in the database
    (cloud.ingest.gate); a client that went away while waiting is dropped.
    """
    async with (
        _gate(request, settings).hold(gateway_id, boot_id, request.is_disconnected),
        pool.connection() as conn,
    ):
        yield conn


def _gate(request: Request, settings: CloudSettings) -> StreamGate:
    """The application's stream gate, made on first use."""
    state = request.app.state
    gate: StreamGate | None = getattr(state, "stream_gate", None)
    if gate is None:
        gate = state.stream_gate = StreamGate(settings.stream_wait)
    return gate


def admissible(cols: ReadingColumns, now: datetime, settings: AdmissionSettings) -> bool:
    """True when ``admit`` would refuse none of the readings; otherwise it says which."""
    return not (
        physical_problem(cols)
        or outside_horizons(cols, now, settings.backlog_horizon, settings.future_horizon)
    )


def admit(batch: Batch, now: datetime, settings: AdmissionSettings) -> None:
    """Refuses (422, naming each record) values outside physics and times outside the horizons,
    judged by the cloud's clock ``now``; the edge dead-letters those records and resends."""
    problems = record_problems(batch, now, settings)
    if problems:
        raise InvalidBatchError(
            f"{len(problems)} record(s) refused: outside the physical range or the time horizons",
            [detail for _, detail in problems[:1000]],
            reasons=Counter(code for code, _ in problems),
        )


async def _count(pool: Pool, gateway_id: str, err: InvalidBatchError) -> None:
    """Counts a 422 per gateway and reason (device API); the answer matters more than the count."""
    reasons = err.reasons or Counter({"invalid": 1})
    try:
        async with pool.connection() as conn, conn.transaction():
            await count_refusals(conn, gateway_id, reasons, dict.fromkeys(reasons, err.message))
    except (PsycopgError, PoolTimeout) as db_err:
        log.warning("refusal of a batch of %s not counted: %s", gateway_id, db_err)
