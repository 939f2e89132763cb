"""Master data: sites, locations, products, lots and sensor mounts, written by an administrator.

``values`` holds the pure checks (IANA time zones, GTIN-14, ISO 8601 durations); ``store`` and
``sensors`` write the tables of schema v1 inside the caller's transaction. Lot status is never
written here: only the ledger changes it.

Exceptions::

    MasterDataError               any refusal
    ├── InvalidMasterDataError    the value itself is wrong (bad zone, GTIN, duration, kind)
    ├── UnknownReferenceError     it names a site, location, profile or product that does not exist
    └── MasterDataConflictError   it contradicts what is stored (a cycle, an existing lot, ...)
"""

from __future__ import annotations


class MasterDataError(Exception):
    """A master-data write was refused."""


class InvalidMasterDataError(MasterDataError, ValueError):
    """The value is malformed (checked without the database)."""


class UnknownReferenceError(MasterDataError):
    """A referenced site, location, storage profile or product does not exist."""


class MasterDataConflictError(MasterDataError):
    """The write contradicts stored data: a cycle, a lot that exists, an older mount."""
