"""Maintenance jobs: retention, rollups, stale-sensor detection, run by an in-process scheduler.

Every process of the service runs the scheduler (apscheduler 3.x, in-memory job store, jobs
registered in code); a PostgreSQL advisory lock per job makes sure only one process runs a given
job at a time, and the job's next-run time in ``job_schedule`` (moved under its row lock) makes
it run once per interval across all processes.

Exception tree::

    JobError
    └── RetentionRefusedError   a retention rule names a table that must never be pruned
"""

from __future__ import annotations


class JobError(RuntimeError):
    """A maintenance job could not do its work."""


class RetentionRefusedError(JobError):
    """Retention was asked for a table that is not prunable (the ledger, above all)."""
