"""Documents the gateway keeps from the cloud: a conditional GET and a private on-disk copy.

Both the gateway's configuration (``edge.remote_config``) and its site's door list
(``edge.door_feed``) are fetched the same way (the uplink's HTTP client and gateway token,
``If-None-Match`` with the last ``ETag``, the body read within the response limit) and kept the
same way (JSON with the ETag, written atomically, readable by the agent's user only) so that a
start without the cloud runs on the last good copy. What the gateway posts besides its batches
(configuration reports, browse answers, heartbeats) goes through ``post_json``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel

from edge.http_body import BodyError, read_limited

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)


async def get_if_changed(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    etag: str | None,
    *,
    within: float,
    limit: int,
    unavailable: type[Exception],
) -> tuple[bytes, str | None] | None:
    """The body and ETag of ``url``, or None when it still has ``etag`` (304). Unreachable, an
    oversized body or any answer but 200 raises ``unavailable`` with the reason."""
    sent = {**headers, "If-None-Match": etag} if etag is not None else headers
    try:
        async with asyncio.timeout(within):
            async with client.stream("GET", url, headers=sent, timeout=within) as response:
                content = await read_limited(response, limit)
    except (TimeoutError, httpx.HTTPError, BodyError) as err:
        raise unavailable(f"cloud unreachable: {err!r}") from err
    if response.status_code == 304:
        return None
    if response.status_code != 200:
        text = content[:300].decode("utf-8", "replace")
        raise unavailable(f"cloud answered {response.status_code}: {text}")
    return content, response.headers.get("ETag")


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    headers: dict[str, str],
    content: str | bytes,
    *,
    within: float,
    limit: int,
) -> int:
    """POSTs JSON and returns the status; the answer is read within ``limit`` on the wire and
    inflated, like every answer the gateway reads. Raises ``TimeoutError`` (``within`` in all),
    ``httpx.HTTPError`` or ``BodyError``."""
    sent = {**headers, "Content-Type": "application/json"}
    async with asyncio.timeout(within):
        async with client.stream(
            "POST", url, content=content, headers=sent, timeout=within
        ) as response:
            await read_limited(response, limit)
    return response.status_code


def save_private(path: Path, key: str, document: BaseModel, etag: str | None) -> None:
    """Writes ``{"etag": …, key: document}`` atomically (a crash leaves the old file or the new
    one, never half), mode 0600: a configuration carries source credentials."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body: dict[str, Any] = {"etag": etag, key: document.model_dump(mode="json")}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(body, out)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def load_private(path: Path, key: str, model: type[M], what: str) -> tuple[M, str | None] | None:
    """The copy ``save_private`` wrote and its ETag, or None when there is none or it cannot be
    read (logged, naming ``what``)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        document = model.model_validate(body[key])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("cached %s %s cannot be used: %s", what, path, err)
        return None
    etag = body.get("etag")
    return document, etag if isinstance(etag, str) else None
