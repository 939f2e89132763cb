"""ASN imports: a CSV layout and a subset of ANSI X12 856 (ship notice), into ``AsnIn``.

CSV: a header row, then one row per container or per line of goods::

    site_id,reference,supplier,expected_at,sscc,parent_sscc,gtin,lot,expiry,quantity,serial

A row without ``gtin`` declares a container (``sscc``, optional ``parent_sscc``). A row with a
``gtin`` is goods in container ``sscc`` (or loose when empty): either a ``serial`` (one row per
unit; rows of the same container, GTIN and lot gather into one line) or a ``quantity``. Several
references make several ASNs.

X12 856 subset (segments ``~``, elements ``*``; envelope ISA/GS/GE/IEA and ST/SE accepted):
``BSN`` (02 = reference), ``DTM*017`` (expected delivery CCYYMMDD[HHMM]), ``N1*SF`` (supplier,
01 name), ``N1*ST`` (ship-to; 04 = our site id), ``HL`` levels S (shipment), O (order, ignored),
T or P (a logistic unit, ``MAN*GM*<SSCC>``; its HL parent a T/P nests it) and I (an item under
its T/P: ``LIN`` with ``UK``/``EN`` = GTIN and ``LT`` = lot, ``SN1`` 02 = quantity,
``DTM*036`` = expiry, ``REF*SE`` or ``REF*SN`` = one serial each). Other segments are ignored.

>>> doc = ("ST*856*1~BSN*00*PO-7*20260301*1200~N1*ST*Main*92*site-1~HL*1**S~"
...        "HL*2*1*T~MAN*GM*106141412345678908~HL*3*2*I~LIN**UK*00614141123452*LT*L1~"
...        "SN1**2*EA~REF*SE*1~REF*SE*2~SE*9*1~")
>>> asn = parse_x12_856(doc)
>>> asn.reference, asn.containers[0].contents[0].serials
('PO-7', ['1', '2'])
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from cloud.receiving import AsnFormatError
from cloud.receiving.asn import AsnIn

CSV_COLUMNS = (
    "site_id", "reference", "supplier", "expected_at", "sscc", "parent_sscc", "gtin", "lot",
    "expiry", "quantity", "serial",
)  # fmt: skip


def _validated(doc: dict[str, Any], where: str) -> AsnIn:
    try:
        return AsnIn.model_validate(doc)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise AsnFormatError(f"{where}: {loc}: {first['msg']}") from err


def parse_csv(text: str) -> list[AsnIn]:
    """ASNs from the CSV layout above; errors name the line."""
    try:
        return _parse_csv(text)
    except csv.Error as err:
        raise AsnFormatError(f"CSV: {err}") from err


def _rows(reader: csv.DictReader[str]) -> Iterator[tuple[int, dict[str, str]]]:
    for raw in reader:
        if None in raw:  # more fields than columns
            raise AsnFormatError(f"line {reader.line_num}: more fields than the header has")
        yield reader.line_num, {k: (v or "").strip() for k, v in raw.items()}


def _parse_csv(text: str) -> list[AsnIn]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = set(CSV_COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise AsnFormatError(f"line 1: missing columns {', '.join(sorted(missing))}")
    docs: dict[str, dict[str, Any]] = {}
    lines: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for n, row in _rows(reader):
        if not row["reference"] or not row["site_id"]:
            raise AsnFormatError(f"line {n}: site_id and reference are required")
        doc = docs.setdefault(row["reference"], _csv_header(row))
        if not row["gtin"]:
            if not row["sscc"]:
                raise AsnFormatError(f"line {n}: a row needs an sscc or a gtin")
            doc["containers"].append(
                {"sscc": row["sscc"], "parent_sscc": row["parent_sscc"] or None, "contents": []}
            )
            continue
        _csv_goods(doc, lines, row, n)
    return [_validated(d, f"CSV ASN {ref}") for ref, d in docs.items()]


def _csv_header(row: dict[str, str]) -> dict[str, Any]:
    return {
        "site_id": row["site_id"],
        "reference": row["reference"],
        "supplier": row["supplier"] or None,
        "expected_at": row["expected_at"] or None,
        "containers": [],
        "loose": [],
    }


def _csv_goods(
    doc: dict[str, Any],
    lines: dict[tuple[str, str, str, str], dict[str, Any]],
    row: dict[str, str],
    n: int,
) -> None:
    sscc, gtin, lot = row["sscc"], row["gtin"], row["lot"]
    serial, quantity = row["serial"], row["quantity"]
    if bool(serial) == bool(quantity):
        raise AsnFormatError(f"line {n}: give either a serial or a quantity")
    key = (doc["reference"], sscc, gtin, lot)
    if serial and key in lines:
        lines[key]["serials"].append(serial)
        return
    line: dict[str, Any] = {"gtin": gtin, "lot": lot, "expiry": row["expiry"] or None}
    if serial:
        line["serials"] = [serial]
        lines[key] = line
    else:
        try:
            line["quantity"] = int(quantity)
        except ValueError as err:
            raise AsnFormatError(f"line {n}: quantity {quantity!r} is not a number") from err
    if not sscc:
        doc["loose"].append(line)
        return
    for container in doc["containers"]:
        if container["sscc"] == sscc:
            container["contents"].append(line)
            return
    raise AsnFormatError(f"line {n}: container {sscc} is not declared on an earlier row")


def _x12_date(date: str, time: str = "") -> str:
    try:
        when = datetime.strptime(date + (time or "0000")[:4], "%Y%m%d%H%M").replace(tzinfo=UTC)
    except ValueError as err:
        raise AsnFormatError(f"DTM: bad date/time {date!r} {time!r}") from err
    return when.isoformat()


def parse_x12_856(text: str) -> AsnIn:
    """One ASN from an X12 856 transaction set (the subset in the module docstring)."""
    segments = [s.strip() for s in text.replace("\n", "").split("~") if s.strip()]
    doc: dict[str, Any] = {"containers": [], "loose": []}
    hl_kind: dict[str, str] = {}
    hl_sscc: dict[str, str] = {}
    current: dict[str, Any] | None = None  # the container or item of the HL in progress
    item: dict[str, Any] | None = None
    item_parent: dict[int, str] = {}
    items: list[dict[str, Any]] = []
    for index, segment in enumerate(segments, start=1):
        el = segment.split("*")
        tag = el[0]
        get = defaultdict(str, enumerate(el))
        if _x12_header(doc, tag, get):
            continue
        if tag == "HL":
            hl_id, parent, level = get[1], get[2], get[3]
            hl_kind[hl_id] = level
            current, item = None, None
            if level in {"T", "P"}:
                current = {"hl": hl_id, "parent_hl": parent, "contents": []}
                doc["containers"].append(current)
            elif level == "I":
                item = {"serials": []}
                items.append(item)
                item_parent[id(item)] = parent
        elif tag == "MAN" and get[1] == "GM" and current is not None:
            current["sscc"] = get[2]
            hl_sscc[current["hl"]] = get[2]
        elif tag == "LIN" and item is not None:
            _lin(item, el)
        elif tag == "SN1" and item is not None:
            item["quantity"] = _int(get[2], index)
        elif tag == "DTM" and get[1] == "036" and item is not None:
            item["expiry"] = _x12_date(get[2])[:10]
        elif tag == "REF" and get[1] in {"SE", "SN"} and item is not None:
            item["serials"].append(get[2])
    return _x12_assemble(doc, items, item_parent, hl_kind, hl_sscc)


def _x12_header(doc: dict[str, Any], tag: str, get: defaultdict[int, str]) -> bool:
    """Reads the shipment-level segments; False when the segment is not one of them."""
    if tag == "BSN":
        doc["reference"] = get[2]
    elif tag == "DTM" and get[1] == "017":
        doc["expected_at"] = _x12_date(get[2], get[3])
    elif tag == "N1" and get[1] == "SF":
        doc["supplier"] = get[2]
    elif tag == "N1" and get[1] == "ST":
        doc["site_id"] = get[4] or get[2]
    else:
        return False
    return True


def _int(text: str, index: int) -> int:
    try:
        return int(float(text))
    except ValueError as err:
        raise AsnFormatError(f"segment {index}: SN1 quantity {text!r} is not a number") from err


def _lin(item: dict[str, Any], el: list[str]) -> None:
    # LIN*<assigned id>*<qualifier>*<value>*<qualifier>*<value>…
    for q, v in zip(el[2::2], el[3::2], strict=False):
        if q in {"UK", "EN", "UP"}:
            item["gtin"] = v.zfill(14)
        elif q == "LT":
            item["lot"] = v


def _x12_assemble(
    doc: dict[str, Any],
    items: list[dict[str, Any]],
    item_parent: dict[int, str],
    hl_kind: dict[str, str],
    hl_sscc: dict[str, str],
) -> AsnIn:
    by_hl = {c["hl"]: c for c in doc["containers"]}
    for c in doc["containers"]:
        if "sscc" not in c:
            raise AsnFormatError(f"HL {c['hl']}: a T/P level needs MAN*GM*<SSCC>")
        parent = c.pop("parent_hl")
        c["parent_sscc"] = hl_sscc.get(parent) if hl_kind.get(parent) in {"T", "P"} else None
        c.pop("hl")
    for item in items:
        parent = item_parent[id(item)]
        if item.get("serials") and item.get("quantity") == len(item["serials"]):
            item.pop("quantity")
        if parent in by_hl:
            by_hl[parent]["contents"].append(item)
        else:
            doc["loose"].append(item)
    if "reference" not in doc or "site_id" not in doc:
        raise AsnFormatError("X12 856: BSN (reference) and N1*ST (site) are required")
    return _validated(doc, f"X12 856 {doc['reference']}")
