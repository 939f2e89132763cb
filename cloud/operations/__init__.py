"""Operations on the cloud's database: physical backups, WAL archiving and restores.

Exception tree::

    OperationsError       a backup, archive or restore could not be made; the message says why
"""


class OperationsError(RuntimeError):
    """A backup, WAL archive or restore could not be made."""
