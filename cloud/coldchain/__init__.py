"""The cold-chain engine: storage profiles, excursions, early warning, MKT, budgets, quarantine.

The domain core (``profiles``, ``excursions``, ``mkt``, ``budget``, ``forecast``, ``anomaly``,
``correlation``) is pure: frozen values in, new values out, no database and no network. The
storage and step modules (``store``, ``step``, ``alerts``, ``quarantine``, ``exposure``) call
it, inside the processor's transaction or an API handler's.

Exceptions::

    ColdChainError                  base of everything this package raises
    ├── ProfileError                a storage profile is inconsistent (limits, delays)
    ├── CheckpointError             a stored sensor state or model cannot be read back
    └── TraceTooLongError           a lot's trace would have more buckets than allowed

Quarantine and disposition refusals are the ledger's (``cloud.ledger.LedgerError``).
"""

from __future__ import annotations


class ColdChainError(Exception):
    """Base of the cold-chain engine's errors."""


class ProfileError(ColdChainError, ValueError):
    """A storage profile's limits or delays do not make sense."""


class CheckpointError(ColdChainError):
    """A checkpointed sensor state or anomaly model cannot be restored."""


class TraceTooLongError(ColdChainError, ValueError):
    """The trace asked for would have more buckets than allowed: widen the bucket."""
