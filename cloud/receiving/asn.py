"""Advance ship notices: our JSON shape, its validation, and the flat list of what it announces.

An ASN lists logistic units (SSCC, possibly nested: pallet → cases) and their contents: a GTIN,
a lot, an expiry and either serials (SGTIN-tagged units) or a bare quantity. Items may also ship
without a container (``loose``). Keys are GS1 element strings: ``(00)<sscc>`` for a logistic
unit, ``(01)<gtin>(21)<serial>`` for a serialized unit — an RFID read gives the same keys once
decoded, whatever the company prefix length.

>>> asn = AsnIn.model_validate({"site_id": "s1", "reference": "PO-1", "containers": [
...     {"sscc": "106141412345678908", "contents": [
...         {"gtin": "00614141123452", "lot": "L1", "serials": ["1", "2"]}]}]})
>>> [i.key for i in expected_items(asn)]
['(00)106141412345678908', '(01)00614141123452(21)1', '(01)00614141123452(21)2']
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from cloud.ledger.instant import Instant
from protocols.gs1.check_digit import is_valid_gs1_key
from protocols.gs1.epc import sgtin_from_gtin
from protocols.gs1.epc_types import Sscc
from protocols.gs1.epc_uri import parse_epc_uri
from protocols.gs1.errors import Gs1Error


def _gtin(value: str) -> str:
    if not is_valid_gs1_key(value, 14):
        raise ValueError(f"GTIN must be 14 digits with a valid check digit, got {value!r}")
    return value


def _sscc(value: str) -> str:
    if value.startswith("urn:epc:"):
        try:
            parsed = parse_epc_uri(value)
        except Gs1Error as err:
            raise ValueError(f"not an SSCC EPC URI: {err}") from err
        if not isinstance(parsed, Sscc):
            raise ValueError(f"not an SSCC EPC URI: {value!r}")
        return parsed.sscc
    if not is_valid_gs1_key(value, 18):
        raise ValueError(f"SSCC must be 18 digits with a valid check digit, got {value!r}")
    return value


Gtin = Annotated[str, AfterValidator(_gtin)]
SsccDigits = Annotated[str, AfterValidator(_sscc)]
Text = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Serial = Annotated[str, Field(min_length=1, max_length=20, pattern=r"^[!-~]+$")]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AsnLine(_Model):
    """A quantity of one lot: serialized (``serials``) or not (``quantity`` only)."""

    gtin: Gtin
    lot: Text
    expiry: date | None = None
    quantity: Annotated[int, Field(ge=1, le=1_000_000)] | None = None
    serials: Annotated[list[Serial], Field(max_length=100_000)] = []
    company_prefix_length: Annotated[int, Field(ge=6, le=12)] | None = None
    """When given, units get their EPC pure-identity URI before they are ever read."""

    @model_validator(mode="after")
    def _quantity_matches(self) -> AsnLine:
        if not self.serials and self.quantity is None:
            raise ValueError("a line needs serials or a quantity")
        if self.serials and self.quantity is not None and self.quantity != len(self.serials):
            raise ValueError(f"quantity {self.quantity} but {len(self.serials)} serials")
        if len(set(self.serials)) != len(self.serials):
            raise ValueError("a serial is listed twice")
        return self

    @property
    def count(self) -> int:
        return len(self.serials) or (self.quantity or 0)


class AsnContainer(_Model):
    sscc: SsccDigits
    parent_sscc: SsccDigits | None = None
    contents: Annotated[list[AsnLine], Field(max_length=10_000)] = []


class AsnIn(_Model):
    site_id: Text
    reference: Text
    supplier: Annotated[str, Field(max_length=256, pattern=r"^[^\x00-\x1f\x7f]*$")] | None = None
    expected_at: Instant | None = None
    containers: Annotated[list[AsnContainer], Field(max_length=10_000)] = []
    loose: Annotated[list[AsnLine], Field(max_length=10_000)] = []

    @model_validator(mode="after")
    def _consistent(self) -> AsnIn:
        if not self.containers and not self.loose:
            raise ValueError("an ASN announces at least one container or loose line")
        if any(not line.serials for line in self.loose):
            raise ValueError("loose lines must list serials: only tagged units can be received")
        ssccs = [c.sscc for c in self.containers]
        if len(set(ssccs)) != len(ssccs):
            raise ValueError("an SSCC is listed twice")
        parents = {c.sscc: c.parent_sscc for c in self.containers}
        for sscc, first in parents.items():
            if first is not None and first not in parents:
                raise ValueError(f"container {sscc}: parent {first} is not in the ASN")
            seen, up = {sscc}, first
            while up is not None:
                if up in seen:
                    raise ValueError(f"containers nest in a cycle through {sscc}")
                seen.add(up)
                up = parents[up]
        keys = [i.key for i in expected_items(self) if i.kind == "sgtin"]
        if len(set(keys)) != len(keys):
            raise ValueError("a serialized unit is listed twice")
        return self


def sscc_key(sscc: str) -> str:
    return f"(00){sscc}"


def sgtin_key(gtin: str, serial: str) -> str:
    return f"(01){gtin}(21){serial}"


@dataclass(frozen=True)
class ExpectedItem:
    """One thing the ASN announces: a container, a serialized unit or a bulk quantity."""

    kind: Literal["sscc", "sgtin", "bulk"]
    key: str  # bulk: "(00)<sscc>|(01)<gtin>(10)<lot>"
    parent: str | None  # key of the container holding it
    gtin: str | None = None
    lot: str | None = None
    expiry: date | None = None
    quantity: int = 1
    uri: str | None = None  # the EPC pure-identity URI, when the company prefix is known


def expected_items(asn: AsnIn) -> list[ExpectedItem]:
    """Every container, serialized unit and bulk quantity of the ASN, containers first."""
    items = [
        ExpectedItem("sscc", sscc_key(c.sscc), sscc_key(c.parent_sscc) if c.parent_sscc else None)
        for c in asn.containers
    ]
    for c in asn.containers:
        for line in c.contents:
            items.extend(_line_items(line, sscc_key(c.sscc)))
    for line in asn.loose:
        items.extend(_line_items(line, None))
    return items


def _line_items(line: AsnLine, parent: str | None) -> list[ExpectedItem]:
    if line.serials:
        return [
            ExpectedItem(
                "sgtin",
                sgtin_key(line.gtin, s),
                parent,
                line.gtin,
                line.lot,
                line.expiry,
                uri=_uri(line, s),
            )
            for s in line.serials
        ]
    key = f"{parent}|(01){line.gtin}(10){line.lot}"
    return [ExpectedItem("bulk", key, parent, line.gtin, line.lot, line.expiry, line.count)]


def _uri(line: AsnLine, serial: str) -> str | None:
    if line.company_prefix_length is None:
        return None
    try:
        return sgtin_from_gtin(line.gtin, serial, line.company_prefix_length).pure_identity_uri
    except Gs1Error:
        return None
