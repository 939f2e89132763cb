"""Maintenance jobs: retention, rollups, stale-sensor detection, run by an in-process scheduler.

Every process of the service runs the scheduler (apscheduler 3.x, in-memory job store, jobs
registered in code); a PostgreSQL advisory lock per job makes sure only one process runs a given
job at a time, the others skip that round.

Exception tree::

    JobError
    └── RetentionRefusedError   a retention rule names a table that must never be pruned
"""

from __future__ import annotations


class JobError(RuntimeError):
    """A maintenance job could not do its work."""


class RetentionRefusedError(JobError):
    """Retention was asked for a table that is not prunable (the ledger, above all)."""
