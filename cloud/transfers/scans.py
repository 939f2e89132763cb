"""What a scan at the point of use names: an RFID read (hex EPC), a GS1 barcode (element string,
with or without a symbology identifier) or a GS1 Digital Link URI. Pure.

A scan names a trade item (GTIN) and, when the code carries them, its serial, lot and expiry.
A serial names one unit; without one the lot (and failing that, the GTIN) is all we know.

>>> from datetime import date
>>> s = identify("(01)09506000134352(17)261130(10)ABC(21)7", today=date(2026, 3, 1))
>>> s.gtin, s.serial, s.lot, s.expiry, s.key
('09506000134352', '7', 'ABC', datetime.date(2026, 11, 30), '(01)09506000134352(21)7')
>>> identify("https://id.gs1.org/01/09506000134352/10/ABC", today=date(2026, 3, 1)).lot
'ABC'
>>> identify("3034257BF40C0E4000001A85", today=date(2026, 3, 1)).key
'(01)00614141123452(21)6789'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from cloud.transfers import TransferError
from protocols.gs1.ai import resolve_gs1_date
from protocols.gs1.digital_link import parse_digital_link
from protocols.gs1.element_string import parse_element_string
from protocols.gs1.epc import decode_epc
from protocols.gs1.epc_types import Sgtin
from protocols.gs1.errors import Gs1Error

_HEX_EPC = re.compile(r"^[0-9A-Fa-f]{24,}$")


class ScanError(TransferError):
    """A scan that names no trade item (not a GS1 code, or no GTIN in it)."""


@dataclass(frozen=True)
class Scanned:
    text: str
    gtin: str
    serial: str | None
    lot: str | None
    expiry: date | None

    @property
    def key(self) -> str | None:
        """The unit's GS1 key when the scan names one unit."""
        return None if self.serial is None else f"(01){self.gtin}(21){self.serial}"


def identify(text: str, *, today: date) -> Scanned:
    """The trade item a scan names (raises ``ScanError`` with the reason)."""
    raw = text.strip()
    try:
        if _HEX_EPC.match(raw) and not raw.isdigit():
            epc = decode_epc(raw)
            if not isinstance(epc, Sgtin):
                raise ScanError(f"{raw}: RFID tag is not a serialized trade item (SGTIN)")
            return Scanned(raw, epc.gtin, epc.serial, None, None)
        if raw.lower().startswith(("http://", "https://")):
            values = parse_digital_link(raw)
        else:
            values = parse_element_string(raw)
    except Gs1Error as err:
        raise ScanError(f"{raw}: {err}") from err
    gtin = values.get("01")
    if gtin is None:
        raise ScanError(f"{raw}: no GTIN (01) in the code")
    expiry = values.get("17")
    return Scanned(
        raw,
        gtin,
        values.get("21"),
        values.get("10"),
        None if expiry is None else resolve_gs1_date(expiry, today=today),
    )
