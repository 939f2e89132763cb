"""The request-limit middleware on its own (no database): sizes, times, budget, NaN.

A bare ASGI application stands behind it and records what reached it, so each test shows both
the answer and that nothing past the limit was handed on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from cloud.limits import LimitError
from cloud.limits.budget import ByteBudget
from cloud.limits.config import RequestLimits
from cloud.limits.middleware import RequestLimitMiddleware, request_lease

LIMITS = RequestLimits(
    body_bytes=2048,
    document_bytes=8192,
    import_bytes=8192,
    inflight_bytes=10_000,
    body_idle_timeout=timedelta(milliseconds=200),
    body_timeout=timedelta(seconds=1),
)
DOCUMENT = ("POST", "/doc")


class Recorder:
    """An application that reads the whole body, optionally waits, then answers 200."""

    def __init__(self, hold: asyncio.Event | None = None) -> None:
        self.bodies: list[bytes] = []
        self.hold = hold
        self.read = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.bodies.append(body)
        self.read.set()
        if self.hold is not None:
            await self.hold.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def middleware(app: Any, budget: ByteBudget | None = None) -> RequestLimitMiddleware:
    return RequestLimitMiddleware(
        app,
        limits=LIMITS,
        route_limits={DOCUMENT: LIMITS.document_bytes},
        budget=budget or ByteBudget(LIMITS.inflight_bytes, retry_after=7),
    )


def scope_of(
    path: str = "/thing", headers: dict[str, str] | None = None, method: str = "POST"
) -> Scope:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }


Parts = list[tuple[bytes, float]]  # (chunk, seconds to wait before it)


def receiver(parts: Parts) -> Callable[[], Awaitable[Message]]:
    queue = list(parts)

    async def receive() -> Message:
        if not queue:
            await asyncio.sleep(3600)  # only a disconnect would come
        chunk, delay = queue.pop(0)
        await asyncio.sleep(delay)
        return {"type": "http.request", "body": chunk, "more_body": bool(queue)}

    return receive


async def call(
    mw: RequestLimitMiddleware, scope: Scope, parts: Parts
) -> tuple[int, dict[str, str], bytes]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    try:
        await mw(scope, receiver(parts), send)
    except LimitError as err:
        # raised while the application read its body: FastAPI's handler answers these
        return err.status_code, dict(err.headers or {}), err.detail.encode()
    start = next(m for m in sent if m["type"] == "http.response.start")
    headers = {k.decode(): v.decode() for k, v in start.get("headers", [])}
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], headers, body


async def test_a_declared_length_above_the_limit_is_refused_before_the_application() -> None:
    app = Recorder()
    status, headers, body = await call(
        middleware(app), scope_of(headers={"Content-Length": str(300 * 2**20)}), [(b"x", 0)]
    )
    assert status == 413
    assert headers["connection"] == "close"
    assert b"2048" in body
    assert app.bodies == []


async def test_a_streamed_body_is_counted_and_stopped_at_the_limit() -> None:
    app = Recorder()
    status, _, _ = await call(middleware(app), scope_of(), [(b"x" * 1500, 0), (b"x" * 1500, 0)])
    assert status == 413
    assert app.bodies == []


async def test_a_route_override_raises_the_limit_for_that_route_only() -> None:
    app = Recorder()
    parts: Parts = [(b"x" * 3000, 0), (b"x" * 3000, 0)]
    assert (await call(middleware(app), scope_of("/doc"), parts))[0] == 200
    assert app.bodies == [b"x" * 6000]
    assert (await call(middleware(app), scope_of("/doc", method="PUT"), parts))[0] == 413


async def test_a_stalled_or_trickling_body_times_out() -> None:
    app = Recorder()
    stalled = await call(middleware(app), scope_of(), [(b"{", 0), (b"}", 0.5)])
    assert stalled[0] == 408
    trickle: Parts = [(b" ", 0.15)] * 10  # each part in time, the whole too slow
    assert (await call(middleware(app), scope_of(), trickle))[0] == 408
    assert app.bodies == []


async def test_after_the_body_receive_waits_without_a_timeout() -> None:
    """An event stream waits for the disconnect long after its (empty) body."""
    seen: list[Message] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(await receive())
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):  # longer than the idle timeout
                await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    assert (await call(middleware(app), scope_of(method="GET"), [(b"", 0)]))[0] == 200
    assert seen[0]["body"] == b""


async def test_bodies_in_flight_share_one_budget() -> None:
    budget = ByteBudget(LIMITS.inflight_bytes, retry_after=7)
    release = asyncio.Event()
    holder = Recorder(hold=release)
    big = {"Content-Length": "8000"}
    first = asyncio.create_task(
        call(middleware(holder, budget), scope_of("/doc", big), [(b"x" * 8000, 0)])
    )
    await holder.read.wait()
    assert budget.used == 8000
    refused = await call(middleware(Recorder(), budget), scope_of("/doc", big), [(b"y" * 8000, 0)])
    assert refused[0] == 503
    assert refused[1]["retry-after"] == "7"
    streamed = await call(
        middleware(Recorder(), budget), scope_of("/doc"), [(b"z" * 1500, 0), (b"z" * 1500, 0)]
    )
    assert streamed[0] == 503  # counted as it streams, without a Content-Length
    release.set()
    assert (await first)[0] == 200
    assert budget.used == 0
    assert budget.refused == 2


async def test_a_route_takes_derived_bytes_from_the_same_lease() -> None:
    budget = ByteBudget(LIMITS.inflight_bytes, retry_after=7)

    async def inflating(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        lease = request_lease(scope)
        assert lease is not None
        lease.take(9000)  # beyond what is left after the body

    status, headers, _ = await call(
        middleware(inflating, budget), scope_of("/doc"), [(b"x" * 2000, 0)]
    )
    assert (status, headers["retry-after"]) == (503, "7")
    assert budget.used == 0


@pytest.mark.parametrize(
    "text",
    ['{"value": NaN}', '{"value": Infinity}', '[1, -Infinity]', '{"a": {"b": [1e999]}}',
     '{"value": -1e400}'],
)  # fmt: skip
async def test_nan_and_infinity_in_json_are_refused(text: str) -> None:
    app = Recorder()
    headers = {"Content-Type": "application/json"}
    status, _, body = await call(middleware(app), scope_of(headers=headers), [(text.encode(), 0)])
    assert status == 422
    assert "finite" in json.loads(body)["detail"]
    assert app.bodies == []


async def test_finite_and_malformed_json_reach_the_application_unchanged() -> None:
    app = Recorder()
    headers = {"Content-Type": "application/ld+json; charset=utf-8"}
    good = b'{"value": 1.5e300, "text": "NaN"}'
    assert (await call(middleware(app), scope_of(headers=headers), [(good[:9], 0), (good[9:], 0)]))[
        0
    ] == 200
    broken = b'{"value": 1,'  # malformed: the route's parser explains it
    assert (await call(middleware(app), scope_of(headers=headers), [(broken, 0)]))[0] == 200
    assert app.bodies == [good, broken]
