"""Recall: everything the ledger knows about one lot, and putting all of it on recall hold.

Exceptions::

    RecallError            any refusal of a recall
    └── LotNotFoundError   no lot with that GTIN and lot number
"""

from __future__ import annotations


class RecallError(Exception):
    """A recall could not be answered or applied."""


class LotNotFoundError(RecallError):
    """No lot with that GTIN and lot number."""
