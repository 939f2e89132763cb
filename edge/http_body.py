"""Reading an HTTP response body with limits, before and after inflation.

The uplink reads what the cloud (or whatever answers in its place: a captive portal, a proxy's
error page, an attacker on the path) sends back. An acknowledgement is a few hundred bytes; a
body is read only up to ``limit`` bytes on the wire and ``limit`` bytes once inflated, so
neither a huge answer nor a compression bomb can exhaust a gateway's memory. Only ``gzip``,
``deflate`` and no encoding are accepted (the request asks for ``gzip`` only).

Exception tree::

    BodyError
    ├── BodyTooLargeError    more than the limit, on the wire or inflated
    └── BodyEncodingError    an unknown Content-Encoding, or bytes that do not inflate
"""

from __future__ import annotations

import zlib

import httpx


class BodyError(ValueError):
    """The response body could not be read within its limits."""


class BodyTooLargeError(BodyError):
    """The body exceeds the limit, compressed or inflated."""


class BodyEncodingError(BodyError):
    """The body's Content-Encoding is unknown or its bytes do not inflate."""


def _inflater(encoding: str) -> zlib._Decompress | None:
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib or gzip header, as servers vary
    raise BodyEncodingError(f"unsupported Content-Encoding {encoding!r}")


def inflate(data: bytes, encoding: str, limit: int) -> bytes:
    """``data`` decoded per ``encoding``, refusing more than ``limit`` bytes of output.

    >>> import gzip
    >>> inflate(gzip.compress(b"ok"), "gzip", 10)
    b'ok'
    >>> inflate(gzip.compress(b"0" * 1000), "gzip", 10)
    Traceback (most recent call last):
    ...
    edge.http_body.BodyTooLargeError: body inflates beyond 10 bytes
    """
    inflater = _inflater(encoding.strip().lower())
    if inflater is None:
        if len(data) > limit:
            raise BodyTooLargeError(f"body of more than {limit} bytes")
        return data
    try:
        out = inflater.decompress(data, limit + 1)
        if len(out) <= limit and not inflater.unconsumed_tail:
            out += inflater.flush()
    except zlib.error as err:
        raise BodyEncodingError(f"body does not inflate as {encoding}: {err}") from err
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyTooLargeError(f"body inflates beyond {limit} bytes")
    return out


async def read_limited(response: httpx.Response, limit: int) -> bytes:
    """Reads a streamed response's body, at most ``limit`` bytes on the wire and inflated."""
    if response.is_stream_consumed:  # built in memory (httpx.MockTransport): already decoded
        if len(response.content) > limit:
            raise BodyTooLargeError(f"body of more than {limit} bytes")
        return response.content
    raw = bytearray()
    async for chunk in response.aiter_raw():
        raw += chunk
        if len(raw) > limit:
            raise BodyTooLargeError(f"body of more than {limit} bytes on the wire")
    encodings = [e for e in response.headers.get("Content-Encoding", "").split(",") if e.strip()]
    data = bytes(raw)
    for encoding in reversed(encodings):  # applied in order, so undone in reverse
        data = inflate(data, encoding, limit)
    return data
