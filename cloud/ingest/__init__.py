"""Cloud ingest: ``POST /v1/batches`` stores a gateway's batch exactly once, then acknowledges.

Ingest is write-only and stateless between requests (no per-sensor state), so any number of
workers can run. The idempotency guard is the per-(gateway, boot) high-water mark
``gateway_streams.stored_through``, locked while a batch is written.

Exception tree (each maps to one HTTP status and a ``BatchError`` body)::

    IngestError
    ├── UnauthenticatedError      401  no or unknown bearer token, disabled gateway
    ├── ForbiddenError            403  the token belongs to another gateway
    ├── BadBatchError             400  unreadable body (broken gzip, trailing bytes)
    ├── InvalidBatchError         422  not a valid batch (JSON, types, contiguity, NUL bytes,
    │                                  values outside physics or a column type, times outside the
    │                                  horizons, too many chunks)
    ├── PayloadTooLargeError      413  compressed or decompressed body above the limit
    ├── UnsupportedEncodingError  415  a Content-Encoding other than gzip or identity
    ├── SequenceGapError          409  the batch skips ahead; ``expected`` says where to resume
    └── StorageUnavailableError   503  the database is unreachable; the gateway retries later
"""

from __future__ import annotations

from collections import Counter


class IngestError(Exception):
    """A batch was not stored; ``status`` is the HTTP status to answer with."""

    status = 400
    code = "ingest_error"

    def __init__(self, message: str, detail: list[dict[str, object]] | str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class UnauthenticatedError(IngestError):
    status = 401
    code = "unauthenticated"


class ForbiddenError(IngestError):
    status = 403
    code = "forbidden"


class BadBatchError(IngestError):
    status = 400
    code = "bad_request"


class InvalidBatchError(IngestError):
    status = 422
    code = "invalid_batch"

    def __init__(
        self,
        message: str,
        detail: list[dict[str, object]] | str | None = None,
        *,
        reasons: Counter[str] | None = None,
    ) -> None:
        super().__init__(message, detail)
        self.reasons = reasons
        """Refused records per reason (``gateway_refusals``); None: one refusal, 'invalid'."""


class PayloadTooLargeError(IngestError):
    status = 413
    code = "payload_too_large"


class UnsupportedEncodingError(IngestError):
    status = 415
    code = "unsupported_encoding"


class SequenceGapError(IngestError):
    status = 409
    code = "sequence_gap"

    def __init__(self, expected: int, got: int) -> None:
        super().__init__(
            f"batch starts at seq {got} but the stream continues at {expected}; resend from there",
            [{"expected_seq": expected, "first_seq": got}],
        )
        self.expected = expected


class StorageUnavailableError(IngestError):
    status = 503
    code = "storage_unavailable"
