"""Gateway configuration from the cloud: built from master data, versioned, served, reported.

``build`` is pure (rows in, the configuration's sections out); ``store`` reads and writes the
tables of migration 0110 inside the caller's transaction; the routes are in
``cloud.api.gateway_config``. The agent's side is ``edge.remote_config``.

Exceptions::

    GatewayConfigError            any refusal
    ├── UnknownGatewayError       no such gateway (or source, point, door)
    └── InvalidGatewayConfigError the value cannot be part of a configuration
"""

from __future__ import annotations


class GatewayConfigError(Exception):
    """A gateway-configuration write or read was refused."""


class UnknownGatewayError(GatewayConfigError, LookupError):
    """The gateway, source, point or door named does not exist."""


class InvalidGatewayConfigError(GatewayConfigError, ValueError):
    """The value cannot be part of a gateway configuration."""
