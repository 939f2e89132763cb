"""The inventory ledger: append-only movements of lots and serialized units, balances, hash chain.

``core`` is the pure domain (movement rules, balance arithmetic, canonical hashing, stays);
``chain`` verifies a stored chain; ``service`` reads and writes through a psycopg connection
inside the caller's transaction (it never commits).

Exceptions::

    LedgerError                   any refusal of the ledger
    ├── InvalidMovementError      a movement that does not balance or breaks a rule
    ├── InsufficientBalanceError  it would make a balance negative, or take a unit not there
    ├── NotQuarantinedError       a disposition asked for a lot with nothing in quarantine
    └── UnknownLotError           no such lot, product or location
"""

from __future__ import annotations


class LedgerError(Exception):
    """The ledger refused an operation; nothing was written."""


class InvalidMovementError(LedgerError):
    """The movement does not balance or breaks a movement rule."""


class InsufficientBalanceError(LedgerError):
    """The movement would take more than the balance (or a unit that is not there)."""


class NotQuarantinedError(LedgerError):
    """A release or reject was asked for a lot that has nothing in quarantine."""


class UnknownLotError(LedgerError):
    """The lot or location named does not exist."""
