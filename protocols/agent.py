"""How an edge agent names its software to the cloud: the ``User-Agent`` of its requests.

``coldtrace-edge/<version>``, the version of the installed ``coldtrace`` distribution. The cloud
shows it per gateway (admin pages), so an administrator sees which gateways still run an old
agent; a request without it, or with another client's, is accepted as before.

>>> user_agent("0.1.0")
'coldtrace-edge/0.1.0'
>>> agent_version("coldtrace-edge/0.1.0 (linux)"), agent_version("python-httpx/0.28.1")
('0.1.0', None)
"""

from __future__ import annotations

import re
from importlib import metadata
from typing import Final

PRODUCT: Final = "coldtrace-edge"
_VERSION = re.compile(r"^coldtrace-edge/([0-9A-Za-z.+_-]{1,64})(?:\s|$)")


def user_agent(version: str) -> str:
    return f"{PRODUCT}/{version}"


def agent_version(header: str | None) -> str | None:
    """The agent's version from a ``User-Agent`` header (None: not an edge agent's)."""
    if not header:
        return None
    found = _VERSION.match(header)
    return found.group(1) if found else None


def installed_version() -> str:
    """The version of the installed ``coldtrace`` distribution ("unknown" when not installed,
    e.g. run from a source tree without ``pip install -e``)."""
    try:
        return metadata.version("coldtrace")
    except metadata.PackageNotFoundError:
        return "unknown"
