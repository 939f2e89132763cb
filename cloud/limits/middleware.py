"""The ASGI middleware that holds every request to its body limit, time and budget.

It runs before routing, so before authentication and before any parsing:

1. the route's limit is looked up (``route_limits`` by method and exact path, else the
   default); a Content-Length above it answers 413 at once, without calling the application;
2. the declared length is taken from the shared ``ByteBudget`` up front (503 with Retry-After
   when the budget is full), and bytes beyond it are taken as they stream;
3. every part of the body must arrive within ``body_idle_timeout`` of the previous one and the
   whole body within ``body_timeout`` (408), so a trickling client holds nothing for long;
4. a JSON body of an ordinary route is read here (it is small) and refused with 422 if it holds
   NaN or Infinity, which Python's ``json`` accepts but no JSON standard allows: FastAPI would
   otherwise fail to echo them back in its validation error and answer 500.

The lease is given back when the response has been sent. Refusals raised while the application
reads the body propagate as ``HTTPException``s and are answered by FastAPI's handler; refusals
before the application runs are answered here.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud.limits import (
    BadContentLengthError,
    BodyTimeoutError,
    BodyTooLargeError,
    LimitError,
    NonFiniteJsonError,
)
from cloud.limits.budget import ByteBudget, Lease
from cloud.limits.config import RequestLimits

LEASE_KEY = "coldtrace.body_lease"
"""Scope key of the request's ``Lease``: a route that derives large data from its body (ingest
inflating gzip) takes that from the same budget."""

RouteLimits = Mapping[tuple[str, str], int]


def request_lease(scope: Scope) -> Lease | None:
    """The request's budget lease (None outside the middleware, e.g. in unit tests)."""
    lease = scope.get(LEASE_KEY)
    return lease if isinstance(lease, Lease) else None


class RequestLimitMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limits: RequestLimits,
        route_limits: RouteLimits,
        budget: ByteBudget,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limits = limits
        self.route_limits = dict(route_limits)
        self.budget = budget
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        override = self.route_limits.get((scope["method"], scope["path"]))
        body = _Body(self, receive, send, override or self.limits.body_bytes)
        scope[LEASE_KEY] = body.lease
        try:
            replay = await body.admit(Headers(scope=scope), checks_json=override is None)
            await self.app(scope, body.receive if replay is None else replay, body.send)
        except LimitError as err:
            if body.response_started:
                raise
            await refusal(err)(scope, receive, send)
        finally:
            body.lease.close()


def refusal(err: LimitError) -> JSONResponse:
    headers = dict(err.headers or {})
    # The body was not read to its end: the connection cannot carry another request.
    headers["Connection"] = "close"
    return JSONResponse({"detail": err.message}, status_code=err.status, headers=headers)


class _Body:
    """One request's body as it streams: counted, timed and paid for."""

    def __init__(self, owner: RequestLimitMiddleware, receive: Receive, send: Send, limit: int):
        self.owner = owner
        self.raw_receive = receive
        self.raw_send = send
        self.limit = limit
        self.lease = owner.budget.lease()
        self.received = 0
        self.paid = 0
        self.complete = False
        self.response_started = False
        self.deadline = owner.clock() + owner.limits.body_timeout.total_seconds()

    async def admit(self, headers: Headers, *, checks_json: bool) -> Receive | None:
        """Checks what can be checked before the application runs; may return a replay."""
        declared = _content_length(headers)
        if declared is not None and declared > self.limit:
            raise BodyTooLargeError(
                f"body of {declared} bytes exceeds this route's limit of {self.limit} bytes"
            )
        if declared:
            self.lease.take(declared)
            self.paid = declared
        if checks_json and _is_json(headers):
            return await self._checked_json()
        return None

    async def receive(self) -> Message:
        if self.complete:
            # After the body only http.disconnect comes; event streams wait for it.
            return await self.raw_receive()
        limits = self.owner.limits
        wait = min(limits.body_idle_timeout.total_seconds(), self.deadline - self.owner.clock())
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                message = await self.raw_receive()
        except TimeoutError as err:
            raise BodyTimeoutError(
                f"request body not received in time (at most {limits.body_idle_timeout} between"
                f" parts, {limits.body_timeout} in all)"
            ) from err
        if message["type"] == "http.request":
            self._count(len(message.get("body", b"")))
            self.complete = not message.get("more_body", False)
        return message

    def _count(self, size: int) -> None:
        self.received += size
        if self.received > self.limit:
            raise BodyTooLargeError(f"body exceeds this route's limit of {self.limit} bytes")
        if self.received > self.paid:
            self.lease.take(self.received - self.paid)
            self.paid = self.received

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.response_started = True
        await self.raw_send(message)

    async def _checked_json(self) -> Receive:
        parts: list[bytes] = []
        while not self.complete:
            message = await self.receive()
            if message["type"] != "http.request":
                break  # the client went away; the application will see it
            parts.append(message.get("body", b""))
        body = b"".join(parts)
        _refuse_non_finite(body)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await self.receive()

        return replay


def _content_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    if not value.isascii() or not value.strip().isdigit():
        raise BadContentLengthError("Content-Length is not a number of bytes")
    return int(value)


def _is_json(headers: Headers) -> bool:
    kind = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


def _refuse_non_finite(body: bytes) -> None:
    """Raises ``NonFiniteJsonError`` for NaN, Infinity or a number too large for a float.

    Malformed JSON is left to the route's own parser, which explains it.
    """

    def constant(name: str) -> Any:
        raise NonFiniteJsonError(f"{name} is not a JSON number; send a finite number or null")

    def number(text: str) -> float:
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise NonFiniteJsonError(f"{text} is too large for a number; send a finite number")
        return value

    try:
        json.loads(body, parse_constant=constant, parse_float=number)
    except (ValueError, RecursionError):
        return
