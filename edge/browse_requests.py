"""Answers the administrator's requests to browse an OPC-UA server through this gateway.

Polled beside the configuration (``remote_config.poll_interval``): each open request names a
source with its settings as the cloud keeps them, which are checked with the OPC-UA source's own
model; the server is browsed (``edge.sources.opcua_browse``) and the nodes, or the reason it
failed, are posted back. A request whose answer cannot be posted is handed out again by the
cloud after a while, so nothing is retried here.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from edge.clock import Clock
from edge.remote_config import ConfigClient, RemoteConfigError
from edge.sources.opcua_browse import BrowseError, browse
from edge.sources.opcua_config import OpcUaEndpointConfig
from protocols.gateway_config import BrowseAnswer, BrowseRequest

log = logging.getLogger(__name__)


def endpoint_of(request: BrowseRequest) -> OpcUaEndpointConfig:
    """The source's settings as an endpoint configuration. Its ``nodes`` (at least one, by the
    model) is the start node, read by no one: only the connection settings are used."""
    source = {**request.source, "name": request.source_name}
    return OpcUaEndpointConfig.model_validate({**source, "nodes": {request.start_node: "browse"}})


async def answer_one(request: BrowseRequest) -> BrowseAnswer:
    try:
        cfg = endpoint_of(request)
    except ValidationError as err:
        return BrowseAnswer(error=f"source settings do not validate: {err}"[:4000])
    try:
        found = await browse(cfg, request.start_node, request.depth)
    except BrowseError as err:
        return BrowseAnswer(error=str(err)[:4000])
    return BrowseAnswer(nodes=list(found.nodes), truncated=found.truncated)


class BrowseWorker:
    def __init__(self, client: ConfigClient, clock: Clock, interval: float) -> None:
        self._client = client
        self._clock = clock
        self._interval = interval
        self.answered = 0

    async def run(self) -> None:
        while True:
            await self.poll_once()
            await self._clock.sleep(self._interval)

    async def poll_once(self) -> int:
        """Answers the open requests; returns how many were answered."""
        try:
            requests = await self._client.browse_requests()
        except RemoteConfigError as err:
            log.debug("browse requests not checked: %s", err)
            return 0
        done = 0
        for request in requests:
            answer = await answer_one(request)
            try:
                await self._client.answer_browse(request.request_id, answer)
            except RemoteConfigError as err:
                log.warning("browse answer %d not sent: %s", request.request_id, err)
                continue
            done += 1
            self.answered += 1
            log.info("browse request %d answered (%d nodes)", request.request_id, len(answer.nodes))
        return done
