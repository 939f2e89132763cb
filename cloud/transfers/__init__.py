"""Transfers between sites and shipments to customers, with the cold chain in transit.

``order`` (the order model), ``picking`` (first-expiry-first-out suggestions) and ``verify``
(what an outbound door may let through), ``transit`` (the transit's verdict), ``figures``,
``scans`` and ``logger_files`` are pure; ``store`` keeps orders and their transit
location; ``door`` ships what passes an outbound door into transit; ``dispatch`` closes the
loading and generates the receiving site's ASN; ``arrival`` receives against it out of transit.

Exceptions::

    TransferError               any refusal of a transfer operation; nothing was written
    ├── TransferRejectedError   an order that cannot be stored (unknown site, product, lot)
    ├── TransferStateError      an operation the transfer's status does not allow
    ├── LoggerFileError         a logger export that cannot be read (line named)
    └── ScanError               a scan that names no trade item (``scans``)
"""

from __future__ import annotations


class TransferError(Exception):
    """A transfer operation was refused; nothing was written."""


class TransferRejectedError(TransferError):
    """The order is well formed but cannot be accepted (unknown site, product or lot)."""


class TransferStateError(TransferError):
    """The transfer's status does not allow the operation (e.g. dispatching twice)."""


class LoggerFileError(TransferError):
    """A data-logger export could not be parsed; the message names the line."""
