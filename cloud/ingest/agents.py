"""The software version each gateway's agent runs, from the ``User-Agent`` of its batches.

Written only when it changes: each ingest worker remembers the last version it wrote per
gateway, so a steady stream of batches costs no extra write (another worker, or a restart,
writes it once more, which changes nothing).
"""

from __future__ import annotations

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from protocols.agent import agent_version


class AgentVersions:
    """The last version this worker recorded, per gateway."""

    def __init__(self) -> None:
        self._written: dict[str, str] = {}

    def changed(self, gateway_id: str, user_agent: str | None) -> str | None:
        """The version to record for ``gateway_id``, or None when there is nothing to write."""
        version = agent_version(user_agent)
        if version is None or self._written.get(gateway_id) == version:
            return None
        return version

    async def record(self, conn: AsyncConnection[TupleRow], gateway_id: str, version: str) -> None:
        await conn.execute(
            "UPDATE gateways SET software_version = %s, software_version_at = now()"
            " WHERE gateway_id = %s AND software_version IS DISTINCT FROM %s",
            (version, gateway_id, version),
        )
        self._written[gateway_id] = version
