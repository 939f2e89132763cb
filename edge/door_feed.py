"""The site's door list, fetched from the cloud for the outbound doors' local alarm.

With ``door_guard`` in the configuration, the agent asks ``GET /v1/sites/{site_id}/door-list``
(the gateway token, the uplink's HTTP client, ``If-None-Match`` with the last ``ETag``) every
``poll_interval`` while it has doors, hands each new list to the ``DoorGuard`` and writes it to
``cache_path``. At start the cached list is loaded first, so a gateway that starts while the
cloud cannot be reached still blocks what the last list blocked. A failed fetch keeps the list
in hand: an outdated list is better at the door than none.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import ValidationError

from edge.clock import Clock
from edge.cloud_documents import get_if_changed, load_private, save_private
from edge.config import DoorGuardSettings, EdgeConfig
from edge.door_guard import DoorGuard
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
        got = await get_if_changed(
            self._client, self._url, self._headers, etag, within=self._timeout,
            limit=self._limit, unavailable=DoorListUnavailableError,
        )  # fmt: skip
        if got is None:
            return None
        content, new_etag = got
        try:
            found = DoorList.model_validate_json(content)
        except ValidationError as err:
            raise DoorListUnavailableError(f"not a door list: {err}") from err
        return FetchedList(found, new_etag)


def save_list(path: Path, fetched: FetchedList) -> None:
    save_private(path, "door_list", fetched.door_list, fetched.etag)


def load_list(path: Path) -> FetchedList | None:
    """The cached list, or None when there is none or it cannot be read (logged)."""
    cached = load_private(path, "door_list", DoorList, "door list")
    return None if cached is None else FetchedList(*cached)


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
