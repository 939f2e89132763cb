"""The site's door list, fetched from the cloud for the outbound doors' local alarm.

With ``door_guard`` in the configuration, the agent asks ``GET /v1/sites/{site_id}/door-list``
(the gateway token, the uplink's HTTP client, ``If-None-Match`` with the last ``ETag``) every
``poll_interval`` while it has doors, hands each new list to the ``DoorGuard`` and writes it to
``cache_path``. At start the cached list is loaded first, so a gateway that starts while the
cloud cannot be reached still blocks what the last list blocked. A failed fetch keeps the list
in hand: an outdated list is better at the door than none.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import ValidationError

from edge.clock import Clock
from edge.config import DoorGuardSettings, EdgeConfig
from edge.door_guard import DoorGuard
from edge.http_body import BodyError, read_limited
from protocols.door_list import DoorList

log = logging.getLogger(__name__)


class DoorListUnavailableError(Exception):
    """No usable door list came back (unreachable, an error status, or not a door list)."""


@dataclass(frozen=True)
class FetchedList:
    door_list: DoorList
    etag: str | None


class DoorListClient:
    """``GET /v1/sites/{site_id}/door-list`` on the uplink's HTTP client with the gateway token."""

    def __init__(self, client: httpx.AsyncClient, config: EdgeConfig, site_id: str) -> None:
        cloud = config.cloud
        self._client = client
        self._url = f"{str(cloud.cloud_url).rstrip('/')}/v1/sites/{site_id}/door-list"
        self._headers = {"Authorization": f"Bearer {cloud.token.get_secret_value()}"}
        self._timeout = cloud.request_timeout.total_seconds()
        self._limit = cloud.max_response_bytes

    async def fetch(self, etag: str | None) -> FetchedList | None:
        """The door list, or None when it still has ``etag`` (304)."""
        headers = dict(self._headers)
        if etag is not None:
            headers["If-None-Match"] = etag
        try:
            async with asyncio.timeout(self._timeout):
                async with self._client.stream(
                    "GET", self._url, headers=headers, timeout=self._timeout
                ) as response:
                    content = await read_limited(response, self._limit)
        except (TimeoutError, httpx.HTTPError, BodyError) as err:
            raise DoorListUnavailableError(f"cloud unreachable: {err!r}") from err
        if response.status_code == 304:
            return None
        if response.status_code != 200:
            text = content[:300].decode("utf-8", "replace")
            raise DoorListUnavailableError(f"cloud answered {response.status_code}: {text}")
        try:
            found = DoorList.model_validate_json(content)
        except ValidationError as err:
            raise DoorListUnavailableError(f"not a door list: {err}") from err
        return FetchedList(found, response.headers.get("ETag"))


def save_list(path: Path, fetched: FetchedList) -> None:
    """Writes the list atomically (a crash leaves the old file or the new one, never half)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"etag": fetched.etag, "door_list": fetched.door_list.model_dump(mode="json")}
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(body, out)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)


def load_list(path: Path) -> FetchedList | None:
    """The cached list, or None when there is none or it cannot be read (logged)."""
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        found = DoorList.model_validate(body["door_list"])
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("cached door list %s cannot be used: %s", path, err)
        return None
    etag = body.get("etag")
    return FetchedList(found, etag if isinstance(etag, str) else None)


class DoorListFeed:
    """Keeps ``guard`` on the latest door list; ``run`` polls until cancelled."""

    def __init__(
        self,
        client: DoorListClient,
        settings: DoorGuardSettings,
        guard: DoorGuard,
        clock: Clock,
        has_doors: Callable[[], bool],
    ) -> None:
        self._client = client
        self._settings = settings
        self._guard = guard
        self._clock = clock
        self._has_doors = has_doors
        self.etag: str | None = None
        self.origin = "none"
        """``cache`` or ``cloud``: where the list in hand came from (``none`` yet)."""

    def load_cached(self) -> bool:
        """Hands the cached list to the guard; True when there was one."""
        cached = load_list(self._settings.cache_path)
        if cached is None:
            return False
        self._guard.update(cached.door_list)
        self.etag, self.origin = cached.etag, "cache"
        log.info("door list of %s generated at %s loaded from the cache",
                 cached.door_list.site_id, cached.door_list.generated_at.isoformat())  # fmt: skip
        return True

    async def run(self) -> None:
        while True:
            if self._has_doors():
                await self.poll_once()
            await self._clock.sleep(self._settings.poll_interval.total_seconds())

    async def poll_once(self) -> str:
        """One fetch: ``updated``, ``unchanged`` or ``unavailable`` (the list in hand stays)."""
        try:
            fetched = await self._client.fetch(self.etag)
        except DoorListUnavailableError as err:
            log.warning("door list not refreshed (%s); the %s list stays", err, self.origin)
            return "unavailable"
        if fetched is None:
            return "unchanged"
        self._guard.update(fetched.door_list)
        self.etag, self.origin = fetched.etag, "cloud"
        try:
            save_list(self._settings.cache_path, fetched)
        except OSError as err:
            log.warning("door list not cached at %s: %s", self._settings.cache_path, err)
        return "updated"
