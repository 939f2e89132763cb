"""Typed settings of the request limits (``COLDTRACE_CLOUD_LIMITS__*``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

MiB = 1024 * 1024
PositiveDelta = Annotated[timedelta, Field(gt=timedelta(0))]


class RequestLimits(BaseModel):
    """Sizes, times and budgets every request is held to.

    Ingest's own limits (``max_batch_bytes``, ``max_batch_decompressed_bytes``) stay in
    ``CloudSettings``; the ingest route's body limit is taken from there.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    body_bytes: Annotated[int, Field(ge=1024)] = 256 * 1024
    """Largest body of an ordinary route (master data, movements, actions, sign-in). These
    bodies are parsed before the caller is known, so the limit is small."""
    document_bytes: Annotated[int, Field(ge=1024)] = 20 * MiB
    """Largest body of the document routes (ASN JSON and imports, counts): they authenticate
    first and read the body afterwards."""
    import_bytes: Annotated[int, Field(ge=1024)] = 8 * MiB
    """Largest CSV file of a master-data import (``/v1/import/{kind}`` and the admin page's
    import); 100,000 rows of lots or products (``csv_io.MAX_ROWS``) fit. Read only after the
    admin check."""
    inflight_bytes: Annotated[int, Field(ge=1024)] = 160 * MiB
    """All request bodies being received or held, plus ingest's inflated bodies, together.
    Above it a request answers 503 with Retry-After instead of growing the process."""
    retry_after: Annotated[int, Field(ge=1, le=3600)] = 5
    """Seconds a request refused for the budget is asked to wait."""
    body_idle_timeout: PositiveDelta = timedelta(seconds=15)
    """Longest pause between two parts of a body (a stalled or trickling client)."""
    body_timeout: PositiveDelta = timedelta(seconds=120)
    """Longest time to receive a whole body (8 MiB at 100 kB/s takes 84 s)."""
    max_connections: Annotated[int, Field(ge=10)] = 2000
    """Connections and requests at once (uvicorn's ``limit_concurrency``); above it, 503. Bounds
    what many slow clients hold (sockets, tasks), where the byte budget bounds memory."""
    clock_skew: PositiveDelta = timedelta(minutes=5)
    """How far ahead of the cloud's clock a read may ask for (``at``, ``to``)."""

    @model_validator(mode="after")
    def _budget_holds_one_document(self) -> RequestLimits:
        if self.inflight_bytes < max(self.document_bytes, self.import_bytes):
            raise ValueError(
                "inflight_bytes must hold at least one document (document_bytes) and one"
                " import (import_bytes)"
            )
        if self.body_timeout < self.body_idle_timeout:
            raise ValueError("body_timeout must not be shorter than body_idle_timeout")
        return self
