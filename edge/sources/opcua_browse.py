"""Browsing an OPC-UA server's address space on an administrator's request (asyncua).

Walks the hierarchical references from a start node (the Objects folder by default) down to a
depth, breadth first, and returns typed :class:`protocols.gateway_config.BrowsedNode` values,
never asyncua objects. Node ids are given as ``nsu=<namespace uri>;...``: a server may renumber
its namespaces on restart, a URI stays. The server's own namespace 0 (its Server object and
diagnostics, hundreds of nodes) is not walked below the start node. The walk stops at
``max_nodes`` and says so (``truncated``).

Exception tree::

    BrowseError   the server could not be reached or browsed (the message says why)
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass

from asyncua import ua
from asyncua.client.client import Client
from asyncua.common.node import Node
from asyncua.crypto.security_policies import SecurityPolicyBasic256Sha256
from asyncua.ua.object_ids import ObjectIdNames
from asyncua.ua.uaerrors import UaError

from edge.sources.opcua_config import OpcUaEndpointConfig, parse_node_id
from protocols.gateway_config import BrowsedNode

log = logging.getLogger(__name__)

MAX_NODES = 1000


class BrowseError(RuntimeError):
    """The server could not be browsed."""


@dataclass(frozen=True)
class Browsed:
    nodes: tuple[BrowsedNode, ...]
    truncated: bool


async def browse(
    cfg: OpcUaEndpointConfig, start: str, depth: int, max_nodes: int = MAX_NODES
) -> Browsed:
    """The nodes under ``start`` down to ``depth`` levels (at most ``max_nodes``)."""
    client = Client(cfg.endpoint, timeout=cfg.request_timeout.total_seconds())
    if cfg.username is not None:
        client.set_user(cfg.username)
        if cfg.password is not None:
            client.set_password(cfg.password.get_secret_value())
    timeout = cfg.request_timeout.total_seconds() * 2
    try:
        await _secure(client, cfg, wait=timeout)
        async with asyncio.timeout(timeout):
            await client.connect()
    except (OSError, TimeoutError, UaError, ValueError) as err:
        raise BrowseError(f"cannot connect to {cfg.endpoint}: {err!r}") from err
    try:
        namespaces = await client.get_namespace_array()
        node_id = parse_node_id(start, {uri: i for i, uri in enumerate(namespaces)})
        return await _walk(client, client.get_node(node_id), namespaces, depth, max_nodes)
    except (OSError, TimeoutError, UaError, ValueError, LookupError) as err:
        raise BrowseError(f"browsing {cfg.endpoint} from {start}: {err!r}") from err
    finally:
        try:
            async with asyncio.timeout(timeout):
                await client.disconnect()
        except (OSError, TimeoutError, UaError) as err:
            log.debug("disconnect after browse: %r", err)


async def _secure(client: Client, cfg: OpcUaEndpointConfig, *, wait: float) -> None:
    security = cfg.security
    if security is None:
        return
    client.application_uri = security.application_uri
    mode = getattr(ua.MessageSecurityMode, security.mode)
    server: str | bytes
    if security.server_certificate is not None:
        server = str(security.server_certificate)
    else:
        async with asyncio.timeout(wait):
            endpoints = await client.connect_and_get_server_endpoints()
        endpoint = Client.find_endpoint(endpoints, mode, SecurityPolicyBasic256Sha256.URI)
        server = endpoint.ServerCertificate
    await client.set_security(
        SecurityPolicyBasic256Sha256,
        str(security.certificate),
        str(security.private_key),
        server_certificate=server,
        mode=mode,
    )


def stable_id(node_id: ua.NodeId, namespaces: list[str]) -> str:
    """``nsu=<uri>;...`` for a server namespace, ``i=85`` style for namespace 0.

    >>> stable_id(ua.NodeId("T1", 2), ["http://opcfoundation.org/UA/", "urn:x", "urn:plc"])
    'nsu=urn:plc;s=T1'
    >>> stable_id(ua.NodeId(85, 0), [])
    'i=85'
    """
    text = node_id.to_string()
    if node_id.NamespaceIndex == 0 or node_id.NamespaceIndex >= len(namespaces):
        return text
    return f"nsu={namespaces[node_id.NamespaceIndex]};{text.split(';', 1)[1]}"


async def _walk(
    client: Client, start: Node, namespaces: list[str], depth: int, max_nodes: int
) -> Browsed:
    found: list[BrowsedNode] = []
    queue: deque[tuple[Node, str, int]] = deque([(start, "", 0)])
    seen = {start.nodeid}
    while queue:
        node, path, level = queue.popleft()
        if level >= depth or (level > 0 and node.nodeid.NamespaceIndex == 0):
            continue
        for ref in await node.get_children_descriptions():
            child_id = ref.NodeId
            if child_id in seen:
                continue
            seen.add(child_id)
            if len(found) >= max_nodes:
                return Browsed(tuple(found), truncated=True)
            child = client.get_node(child_id)
            name = ref.BrowseName.Name or ""
            child_path = f"{path}/{name}" if path else name
            found.append(await _describe(child, ref, child_path, namespaces))
            queue.append((child, child_path, level + 1))
    return Browsed(tuple(found), truncated=False)


async def _describe(
    node: Node, ref: ua.ReferenceDescription, path: str, namespaces: list[str]
) -> BrowsedNode:
    data_type: str | None = None
    value: float | str | bool | None = None
    if ref.NodeClass == ua.NodeClass.Variable:
        type_id = await node.read_data_type()
        ident = type_id.Identifier
        builtin = type_id.NamespaceIndex == 0 and isinstance(ident, int)
        data_type = ObjectIdNames.get(int(ident), "") if builtin else ""
        data_type = data_type or type_id.to_string()
        data = await node.read_data_value(raise_on_bad_status=False)
        raw = data.Value.Value if data.Value is not None else None
        if isinstance(raw, bool | int | float):
            value = raw if isinstance(raw, bool) else float(raw)
        elif isinstance(raw, str):
            value = raw[:200]
    return BrowsedNode(
        node_id=stable_id(ref.NodeId, namespaces),
        path=path,
        display_name=ref.DisplayName.Text or "",
        node_class=ref.NodeClass.name,
        data_type=data_type,
        value=value,
    )
