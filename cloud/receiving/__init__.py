"""Receiving against advance ship notices: ASN model and import, passage matching, the step.

``asn`` (model, validation) and ``matching`` (what a passage receives) are pure; ``imports``
and ``desadv`` parse CSV, X12 856 and EANCOM DESADV into the ASN model; ``store`` keeps ASNs
and receiving records; ``step`` is the processor step for ``PortalPassage`` records.

Exceptions::

    ReceivingError             any refusal of receiving
    ├── AsnRejectedError       an ASN that cannot be stored (unknown site or product)
    │   └── AsnConflictError   a duplicate reference, or items another open ASN announces
    └── AsnFormatError         a CSV or EDI document that cannot be read (line/segment named)
"""

from __future__ import annotations


class ReceivingError(Exception):
    """Receiving refused an input; nothing was written."""


class AsnRejectedError(ReceivingError):
    """The ASN is well formed but cannot be accepted (unknown site or product, duplicate)."""


class AsnConflictError(AsnRejectedError):
    """The ASN's reference exists, or its items are announced by another open ASN."""


class AsnFormatError(ReceivingError):
    """A CSV or EDI document could not be parsed; the message names the line or segment."""
