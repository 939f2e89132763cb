"""The gateway's configuration from the cloud: fetched, checked, applied, cached, reported.

With ``remote_config`` in the local file, the agent takes its sources, doors and local alarm
limits from ``GET /v1/gateway/config`` (the gateway token, the uplink's HTTP client):

- **at start** (:func:`starting_config`) it asks the cloud for up to ``start_timeout``; when the
  cloud cannot be reached it starts on the last configuration it applied (``cache_path``), and
  without one on the local file alone;
- **while running** (:class:`RemoteConfig`) it polls with ``If-None-Match``; a new version is
  checked by the same models that check the local file (:func:`merge`), applied without
  restarting the sources whose part did not change (``Agent.reconfigure``), written to the
  cache, and reported (``POST /v1/gateway/config/report``). A version that does not validate is
  refused: the running configuration stays, and the refusal goes to the cloud with its reason.
  A report that cannot be sent is kept and sent on the next poll.

Exception tree::

    RemoteConfigError
    ├── ConfigUnavailableError   the cloud did not answer with a configuration (retried)
    └── ConfigRefusedError       the configuration does not validate (reported, not applied)
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError

from edge.clock import Clock
from edge.cloud_documents import get_if_changed, load_private, post_json, save_private
from edge.config import EdgeConfig, RemoteConfigSettings, describe
from edge.http_body import BodyError, read_limited
from protocols.gateway_config import (
    CONFIG_SECTIONS,
    BrowseAnswer,
    BrowseRequest,
    ConfigReport,
    GatewayConfigDocument,
)

log = logging.getLogger(__name__)

_LIST_SECTIONS = ("opcua", "mqtt", "llrp", "doors")


class RemoteConfigError(Exception):
    """The configuration from the cloud could not be taken."""


class ConfigUnavailableError(RemoteConfigError):
    """No configuration came back: the cloud is unreachable or answered with an error."""


class ConfigRefusedError(RemoteConfigError):
    """The configuration does not validate; the message names each field."""


def merge(local: EdgeConfig, doc: GatewayConfigDocument) -> EdgeConfig:
    """The local configuration with the cloud's sections in place of its own.

    Checked by ``EdgeConfig`` itself, cross-section rules included (a door's reader exists,
    sensor ids are unique), so what passes here is what a local file with those sections
    would give.
    """
    unknown = sorted(set(doc.sections) - set(CONFIG_SECTIONS))
    if unknown:
        raise ConfigRefusedError(f"version {doc.version}: unknown sections {unknown}")
    if doc.gateway_id != local.gateway_id:
        raise ConfigRefusedError(
            f"version {doc.version} is for gateway {doc.gateway_id!r}, not {local.gateway_id!r}"
        )
    data: dict[str, Any] = {name: getattr(local, name) for name in EdgeConfig.model_fields}
    for name in _LIST_SECTIONS:
        data[name] = doc.sections.get(name, [])
    alarms = doc.sections.get("alarms", {})
    if not isinstance(alarms, dict) or set(alarms) - {"sensors"}:
        raise ConfigRefusedError(f"version {doc.version}: alarms may hold only 'sensors'")
    data["alarms"] = {
        **{name: getattr(local.alarms, name) for name in type(local.alarms).model_fields},
        "sensors": alarms.get("sensors", {}),
    }
    try:
        return EdgeConfig(**data)
    except ValidationError as err:
        raise ConfigRefusedError(describe(err, Path(f"cloud version {doc.version}"))) from err


@dataclass(frozen=True)
class Fetched:
    document: GatewayConfigDocument
    etag: str | None


class ConfigClient:
    """The calls to the cloud, on the uplink's HTTP client with the gateway token."""

    def __init__(self, client: httpx.AsyncClient, config: EdgeConfig) -> None:
        self._client = client
        cloud = config.cloud
        root = str(cloud.cloud_url).rstrip("/")
        self._base = root + "/v1/gateway/config"
        self._browse = root + "/v1/gateway/browse-requests"
        self._headers = {"Authorization": f"Bearer {cloud.token.get_secret_value()}"}
        self._timeout = cloud.request_timeout.total_seconds()
        self._limit = cloud.max_response_bytes

    async def fetch(self, etag: str | None) -> Fetched | None:
        """The configuration, or None when it still has ``etag`` (304)."""
        got = await get_if_changed(
            self._client, self._base, self._headers, etag, within=self._timeout,
            limit=self._limit, unavailable=ConfigUnavailableError,
        )  # fmt: skip
        if got is None:
            return None
        content, new_etag = got
        try:
            doc = GatewayConfigDocument.model_validate_json(content)
        except ValidationError as err:
            raise ConfigRefusedError(f"not a configuration document: {err}") from err
        return Fetched(doc, new_etag)

    async def _post(self, url: str, content: str, what: str) -> int:
        try:
            return await post_json(
                self._client, url, self._headers, content, within=self._timeout, limit=self._limit
            )
        except (TimeoutError, httpx.HTTPError, BodyError) as err:
            raise ConfigUnavailableError(f"{what} not sent: {err!r}") from err

    async def report(self, report: ConfigReport) -> None:
        code = await self._post(self._base + "/report", report.model_dump_json(), "report")
        if code != 204:
            raise ConfigUnavailableError(f"report refused: {code}")

    async def browse_requests(self) -> list[BrowseRequest]:
        """The administrator's open requests to browse an OPC-UA server through us."""
        try:
            async with asyncio.timeout(self._timeout):
                async with self._client.stream(
                    "GET", self._browse, headers=self._headers, timeout=self._timeout
                ) as response:
                    content = await read_limited(response, self._limit)
        except (TimeoutError, httpx.HTTPError, BodyError) as err:
            raise ConfigUnavailableError(f"cloud unreachable: {err!r}") from err
        if response.status_code != 200:
            raise ConfigUnavailableError(f"browse requests: cloud answered {response.status_code}")
        try:
            return _REQUESTS.validate_json(content)
        except ValidationError as err:
            raise ConfigRefusedError(f"not a list of browse requests: {err}") from err

    async def answer_browse(self, request_id: int, answer: BrowseAnswer) -> None:
        url = f"{self._browse}/{request_id}"
        code = await self._post(url, answer.model_dump_json(), "browse answer")
        if code != 204:
            raise ConfigUnavailableError(f"browse answer refused: {code}")


_REQUESTS = TypeAdapter(list[BrowseRequest])


def save_cache(path: Path, fetched: Fetched) -> bool:
    """Writes the applied configuration atomically, readable by the agent's user only (it
    carries source credentials). A filesystem that refuses (full, read-only) is logged and the
    configuration runs uncached: the agent must not crash-loop on a full disk for a copy it
    needs only for a start without the cloud."""
    try:
        save_private(path, "document", fetched.document, fetched.etag)
    except OSError as err:
        log.warning(
            "configuration version %d applied but not cached at %s: %s",
            fetched.document.version, path, err,
        )  # fmt: skip
        return False
    return True


def load_cache(path: Path) -> Fetched | None:
    """The cached configuration, or None when there is none or it cannot be read."""
    cached = load_private(path, "document", GatewayConfigDocument, "gateway configuration")
    return None if cached is None else Fetched(*cached)


@dataclass
class RemoteState:
    """What runs and what is still to be told to the cloud."""

    origin: str
    """``cloud``, ``cache`` or ``local`` (the file alone)."""
    version: int | None = None
    etag: str | None = None
    refused_version: int | None = None
    refused_reason: str | None = None
    pending: ConfigReport | None = None


async def starting_config(
    local: EdgeConfig, client: ConfigClient, settings: RemoteConfigSettings
) -> tuple[EdgeConfig, RemoteState]:
    """The configuration to start on: the cloud's, else the cached one, else the file's."""
    refused: ConfigReport | None = None
    fetched = await _fetch_at_start(client, settings)
    if fetched is not None:
        version = fetched.document.version
        try:
            config = merge(local, fetched.document)
        except ConfigRefusedError as err:
            log.warning("configuration version %d from the cloud refused: %s", version, err)
            refused = ConfigReport(version=version, applied=False, reason=str(err)[:4000])
        else:
            save_cache(settings.cache_path, fetched)
            log.info("started on configuration version %d from the cloud", version)
            report = ConfigReport(version=version, applied=True)
            return config, RemoteState("cloud", version, fetched.etag, pending=report)
    state = RemoteState("local", pending=refused)
    if refused is not None:
        state.refused_version, state.refused_reason = refused.version, refused.reason
    cached = load_cache(settings.cache_path)
    if cached is not None:
        try:
            config = merge(local, cached.document)
        except ConfigRefusedError as err:
            log.warning("cached configuration refused, starting on the local file: %s", err)
        else:
            log.warning("started on the cached configuration version %d", cached.document.version)
            state.origin, state.version = "cache", cached.document.version
            # polling with the cached ETag: the cloud answers with its configuration only if
            # it differs (and a refused one would not be asked for again until it changes)
            state.etag = cached.etag if refused is None else None
            return config, state
    log.warning("started on the local configuration file alone")
    return local, state


async def _fetch_at_start(client: ConfigClient, settings: RemoteConfigSettings) -> Fetched | None:
    try:
        async with asyncio.timeout(settings.start_timeout.total_seconds()):
            return await client.fetch(None)  # no If-None-Match: never a 304
    except (TimeoutError, ConfigUnavailableError) as err:
        log.warning("no configuration from the cloud at start (%s); trying the cache", err)
    except ConfigRefusedError as err:
        log.warning("the cloud's answer is not a configuration: %s", err)
    return None


Apply = Callable[[EdgeConfig], Awaitable[object]]


class RemoteConfig:
    """The poll loop: ``poll_once`` is one round, ``run`` loops until cancelled."""

    def __init__(
        self,
        local: EdgeConfig,
        *,
        client: ConfigClient,
        settings: RemoteConfigSettings,
        clock: Clock,
        apply: Apply,
        state: RemoteState,
    ) -> None:
        self._local = local
        self._client = client
        self._settings = settings
        self._clock = clock
        self._apply = apply
        self.state = state

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await self._clock.sleep(self._settings.poll_interval.total_seconds())

    async def poll_once(self) -> str:
        """One round: send a pending report, fetch, apply. Returns what happened."""
        await self._send_pending()
        try:
            fetched = await self._client.fetch(self.state.etag)
        except ConfigRefusedError as err:
            log.warning("the cloud's answer is not a configuration: %s", err)
            return "unreadable"
        except ConfigUnavailableError as err:
            log.warning("configuration not checked: %s", err)
            return "unreachable"
        if fetched is None:
            return "unchanged"
        version = fetched.document.version
        self.state.etag = fetched.etag
        try:
            config = merge(self._local, fetched.document)
        except ConfigRefusedError as err:
            log.warning("configuration version %d refused, the running one stays: %s", version, err)
            reason = str(err)[:4000]
            self.state.refused_version, self.state.refused_reason = version, reason
            self.state.pending = ConfigReport(version=version, applied=False, reason=reason)
            await self._send_pending()
            return "refused"
        await self._apply(config)
        save_cache(self._settings.cache_path, fetched)
        self.state.origin, self.state.version = "cloud", version
        self.state.pending = ConfigReport(version=version, applied=True)
        await self._send_pending()
        log.info("configuration version %d applied", version)
        return "applied"

    async def _send_pending(self) -> None:
        report = self.state.pending
        if report is None:
            return
        try:
            await self._client.report(report)
        except ConfigUnavailableError as err:
            log.warning("configuration report kept for the next poll: %s", err)
            return
        if self.state.pending is report:
            self.state.pending = None
