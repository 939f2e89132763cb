"""The processor's domain steps and what they are given.

The processor takes committed batches of one gateway stream in sequence order and, in ONE
transaction, runs every registered step over the batch's records, then marks the batch processed.
A crash before commit replays the batch; because the mark and the effects commit together,
effects happen exactly once. A step must therefore:

- write its effects and its own per-key state (rule state, model checkpoints) through ``conn``
  only, inside the transaction it is given (never commit, never open another connection);
- be deterministic given the database state and the batch (no wall clock for domain decisions:
  use reading time; ``batch.received_at`` is available for arrival-time bookkeeping).

Steps run in the order of ``cloud.processing.registry.STEPS``: correlate → rules → anomaly →
receiving → ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from uuid import UUID

from psycopg import AsyncConnection
from psycopg.rows import TupleRow

from protocols.batch import Sequenced


@dataclass(frozen=True)
class ProcessingBatch:
    """One committed ingest batch, its records rebuilt in sequence order."""

    batch_id: int
    gateway_id: str
    boot_id: UUID
    first_seq: int
    last_seq: int
    received_at: datetime
    records: Sequence[Sequenced]


class Step(Protocol):
    """A domain step of the processor."""

    @property
    def name(self) -> str: ...

    async def apply(self, conn: AsyncConnection[TupleRow], batch: ProcessingBatch) -> None: ...
