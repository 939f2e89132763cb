"""Turns a request body into a validated ``Batch``, within size limits, or raises ``IngestError``.

The compressed size is checked while the body streams in (and up front from Content-Length),
and the decompressed size while it inflates, in bounded steps, so a zip bomb costs at most the
limit in memory. Strings that PostgreSQL cannot store (NUL characters, lone surrogates) are
refused here, at validation, instead of failing later inside the transaction.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Callable

from pydantic import BaseModel, ValidationError

from cloud.ingest import (
    BadBatchError,
    InvalidBatchError,
    PayloadTooLargeError,
    UnsupportedEncodingError,
)
from protocols.batch import Batch

_INFLATE_STEP = 256 * 1024


async def read_limited(
    chunks: AsyncIterator[bytes], content_length: str | None, limit: int
) -> bytes:
    """The whole body, refused as soon as it exceeds ``limit`` bytes."""
    if content_length is not None:
        try:
            declared = int(content_length)
        except ValueError as err:
            raise BadBatchError("Content-Length is not a number") from err
        if declared > limit:
            raise PayloadTooLargeError(f"body of {declared} bytes exceeds the limit of {limit}")
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(f"body exceeds the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


Reserve = Callable[[int], None]
"""Takes bytes from the request budget, or raises (``cloud.limits.budget.Lease.take``)."""


def decode(
    body: bytes, content_encoding: str | None, limit: int, reserve: Reserve | None = None
) -> bytes:
    """The body decompressed according to ``Content-Encoding``, at most ``limit`` bytes."""
    encoding = (content_encoding or "identity").strip().lower()
    if encoding == "identity":
        if len(body) > limit:
            raise PayloadTooLargeError(f"body exceeds the decompressed limit of {limit} bytes")
        return body
    if encoding not in ("gzip", "x-gzip"):
        raise UnsupportedEncodingError(f"Content-Encoding {encoding!r} is not supported; use gzip")
    return gunzip(body, limit, reserve)


def gunzip(data: bytes, limit: int, reserve: Reserve | None = None) -> bytes:
    """Inflates one gzip member, refusing output above ``limit`` bytes and trailing bytes.

    >>> import gzip
    >>> gunzip(gzip.compress(b"hello"), 10)
    b'hello'
    """
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    out: list[bytes] = []
    size = 0
    pending = data
    try:
        while True:
            chunk = inflater.decompress(pending, _INFLATE_STEP)
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError(f"body inflates beyond the limit of {limit} bytes")
            if reserve is not None:
                reserve(len(chunk))  # concurrent inflations share the in-flight budget
            out.append(chunk)
            pending = inflater.unconsumed_tail
            if inflater.eof or (not pending and not chunk):
                break
    except zlib.error as err:
        raise BadBatchError(f"body is not valid gzip: {err}") from err
    if not inflater.eof:
        raise BadBatchError("gzip stream is truncated")
    if inflater.unused_data:
        raise BadBatchError("unexpected bytes after the gzip stream")
    return b"".join(out)


def parse(raw: bytes) -> Batch:
    """Validates a batch's JSON; errors name the record position (and seq) they concern."""
    try:
        batch = Batch.model_validate_json(raw)
    except ValidationError as err:
        raise InvalidBatchError("batch does not match the contract", _errors(err)) from err
    except TypeError as err:
        # Some record validators raise TypeError for a value of the wrong JSON type (pydantic
        # passes only ValueError and AssertionError through as validation errors).
        raise InvalidBatchError("batch does not match the contract", str(err)) from err
    problems = [
        {"loc": ["records", index, "record", name], "seq": item.seq, "msg": message}
        for index, item in enumerate(batch.records)
        for name, message in _unstorable_strings(item.record)
    ]
    if problems:
        raise InvalidBatchError("batch holds text PostgreSQL cannot store", problems)
    return batch


def _errors(err: ValidationError) -> list[dict[str, object]]:
    """Pydantic's errors without the echoed input (it may be huge or hostile), at most 50."""
    return [
        {"loc": list(item["loc"]), "msg": item["msg"], "type": item["type"]}
        for item in err.errors(include_input=False, include_url=False)[:50]
    ]


def _unstorable_strings(record: BaseModel) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for name, value in record.__dict__.items():
        if not isinstance(value, str):
            continue
        if "\x00" in value:
            found.append((name, "NUL characters are not allowed in text"))
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            found.append((name, "text is not valid Unicode (lone surrogate)"))
    return found
