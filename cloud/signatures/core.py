"""Signatures as values: actions, meanings, the manifestation and the binding hash (pure).

>>> sorted(m.value for m in ALLOWED[SignedAction.DISPOSITION_RELEASE])
['approved', 'released']
>>> h = content_hash({"lot_id": 1}, ["ab" * 32], signer=(7, "ana", "Ana Lopes"),
...                  meaning=Meaning.RELEASED, signed_at=datetime(2026, 1, 1, tzinfo=UTC))
>>> len(h)
32
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cloud.signatures import MeaningError


class Meaning(StrEnum):
    """What the signer means by signing (21 CFR 11.50(a)(3))."""

    REVIEWED = "reviewed"
    APPROVED = "approved"
    RELEASED = "released"
    REJECTED = "rejected"


class SignedAction(StrEnum):
    """The records that need a signature. Values are stored in ``e_signatures.action``
    (release and reject share ``lot.disposition``)."""

    DISPOSITION_RELEASE = "lot.disposition/release"
    DISPOSITION_REJECT = "lot.disposition/reject"
    RECALL_HOLD = "recall.hold"
    EXCURSION_CLOSE = "excursion.close"
    COUNT_CONFIRM = "count.confirm"

    @property
    def stored(self) -> str:
        return self.value.split("/", 1)[0]


ALLOWED: Mapping[SignedAction, frozenset[Meaning]] = {
    SignedAction.DISPOSITION_RELEASE: frozenset({Meaning.RELEASED, Meaning.APPROVED}),
    SignedAction.DISPOSITION_REJECT: frozenset({Meaning.REJECTED}),
    SignedAction.RECALL_HOLD: frozenset({Meaning.APPROVED}),
    SignedAction.EXCURSION_CLOSE: frozenset({Meaning.REVIEWED, Meaning.APPROVED}),
    SignedAction.COUNT_CONFIRM: frozenset({Meaning.REVIEWED, Meaning.APPROVED}),
}
"""Which meanings each action may carry."""

STATEMENT = {
    Meaning.REVIEWED: "reviewed",
    Meaning.APPROVED: "approved",
    Meaning.RELEASED: "released: approved for use",
    Meaning.REJECTED: "rejected: not to be used or distributed",
}
"""The words a printed or shown signature carries for its meaning."""


def check_meaning(action: SignedAction, meaning: Meaning) -> None:
    if meaning not in ALLOWED[action]:
        allowed = ", ".join(sorted(m.value for m in ALLOWED[action]))
        raise MeaningError(f"{action.value} may be signed as {allowed}, not {meaning.value}")


@dataclass(frozen=True)
class Signature:
    """One stored signature, as pages, reports and the API show it."""

    signature_id: int
    user_id: int
    username: str
    printed_name: str
    signed_at: datetime
    meaning: Meaning
    action: str
    subject: str
    entry_ids: tuple[int, ...]
    content_hash: str
    """sha256, hex."""
    factors: str

    def manifestation(self) -> str:
        """``Ana Lopes (ana), 2026-01-01 10:00 UTC, released: approved for use`` (11.50)."""
        at = self.signed_at.astimezone(UTC)
        return (
            f"{self.printed_name} ({self.username}), {at:%Y-%m-%d %H:%M:%S} UTC, "
            + (STATEMENT[self.meaning])
        )


def canonical(value: Any) -> bytes:
    """JSON with sorted keys and no spaces: the same content always hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()


def content_hash(
    content: Mapping[str, Any],
    entry_hashes: Sequence[str],
    *,
    signer: tuple[int, str, str],
    meaning: Meaning,
    signed_at: datetime,
) -> bytes:
    """sha256 over the record's content, its ledger entries' hashes (hex, in entry order), the
    signer (user id, user name, printed name), the meaning and the time."""
    user_id, username, printed = signer
    return hashlib.sha256(
        canonical(
            {
                "content": content,
                "entries": list(entry_hashes),
                "signer": {"user_id": user_id, "username": username, "printed_name": printed},
                "meaning": meaning.value,
                "signed_at": signed_at.astimezone(UTC).isoformat(),
            }
        )
    ).digest()
