"""ASN import from a GS1 EANCOM D.96A DESADV (despatch advice) subset, into ``AsnIn``.

Syntax: ``'`` ends a segment, ``+`` separates data elements, ``:`` components, ``?`` releases
the next character (a ``UNA`` service string advice, if present, is honoured). Segments read:

- ``BGM+351+<document number>`` → the ASN reference;
- ``DTM+17`` or ``DTM+132`` (``:102`` CCYYMMDD or ``:203`` CCYYMMDDHHMM) → expected arrival;
- ``NAD+SU`` (supplier: its name, element 4, else its GLN) and ``NAD+DP``/``NAD+ST`` (our site
  id, element 2 component 1);
- ``CPS+<level>+<parent level>`` opens a packaging level; ``GIN+BJ+<SSCC>`` gives that level's
  logistic unit, nested in the parent level's;
- ``LIN+<n>++<GTIN>:SRV`` an item in the logistic unit of the current level or of its nearest
  ancestor level that has one (loose when none),
  ``QTY+12:<quantity>``, ``PIA+1+<batch>:NB`` its lot, ``DTM+361`` or ``DTM+36`` its expiry,
  ``GIN+BN+<serial>+<serial>…`` its serials.

UNB/UNH/UNT/UNZ, PAC, MEA and every other segment are accepted and ignored.

>>> msg = ("UNH+1+DESADV:D:96A:UN:EAN005'BGM+351+DES-9+9'NAD+DP+site-1::92'CPS+1'"
...        "GIN+BJ+106141412345678908'LIN+1++00614141123452:SRV'QTY+12:2'PIA+1+L1:NB'"
...        "GIN+BN+1+2'UNT+9+1'")
>>> asn = parse_desadv(msg)
>>> asn.reference, asn.containers[0].contents[0].serials
('DES-9', ['1', '2'])
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from cloud.receiving import AsnFormatError
from cloud.receiving.asn import AsnIn


def segments(text: str) -> list[list[list[str]]]:
    """Segments → data elements → components, in one pass (a released character is literal).

    >>> segments("UNA:+.? 'PIA+1+A?+B?:C:NB'")
    [[['PIA'], ['1'], ['A+B:C', 'NB']]]
    """
    comp, elem, rel, term = ":", "+", "?", "'"
    text = text.strip().replace("\r", "").replace("\n", "")
    if text.startswith("UNA") and len(text) >= 9:
        comp, elem, rel, term = text[3], text[4], text[6], text[8]
        text = text[9:]
    out: list[list[list[str]]] = []
    seg: list[list[str]] = [[]]
    current: list[str] = []
    chars = iter(text)
    for ch in chars:
        if ch == rel:
            current.append(next(chars, ""))
        elif ch in (comp, elem, term):
            seg[-1].append("".join(current))
            current = []
            if ch == elem:
                seg.append([])
            elif ch == term:
                if seg != [[""]]:
                    out.append(seg)
                seg = [[]]
        else:
            current.append(ch)
    if current or seg[-1]:
        seg[-1].append("".join(current))
        out.append(seg)
    return out


def _date(value: list[str], index: int) -> str:
    text, fmt = value[1] if len(value) > 1 else "", value[2] if len(value) > 2 else "102"
    pattern = {"102": "%Y%m%d", "203": "%Y%m%d%H%M"}.get(fmt)
    if pattern is None:
        raise AsnFormatError(f"segment {index}: DTM format {fmt} (102 or 203 expected)")
    try:
        return datetime.strptime(text, pattern).replace(tzinfo=UTC).isoformat()
    except ValueError as err:
        raise AsnFormatError(f"segment {index}: DTM {':'.join(value)}: {err}") from err


def parse_desadv(text: str) -> AsnIn:
    """One ASN from a DESADV message (the subset in the module docstring)."""
    doc: dict[str, Any] = {"containers": [], "loose": []}
    level_sscc: dict[str, str] = {}
    level_parent: dict[str, str] = {}
    level: str | None = None
    item: dict[str, Any] | None = None
    for index, seg in enumerate(segments(text), start=1):
        tag = seg[0][0]
        el = seg + [[""]] * 4  # pad so that absent elements read as empty
        if tag == "BGM":
            doc["reference"] = el[2][0]
        elif tag == "DTM" and item is None and el[1][0] in {"17", "132"}:
            doc["expected_at"] = _date(el[1], index)
        elif tag == "NAD":
            _party(doc, el)
        elif tag == "CPS":
            level, item = el[1][0], None
            if el[2][0]:
                level_parent[level] = el[2][0]
        elif tag == "GIN" and el[1][0] == "BJ" and item is None and level is not None:
            level_sscc[level] = el[2][0]
            parent = level_sscc.get(level_parent.get(level, ""))
            doc["containers"].append({"sscc": el[2][0], "parent_sscc": parent, "contents": []})
        elif tag == "LIN":
            item = {"gtin": el[3][0].zfill(14), "serials": []}
            _place_item(doc, item, _unit_of(level, level_sscc, level_parent))
        elif item is not None:
            _item_detail(item, tag, el, index)
    return _validated(doc)


def _unit_of(level: str | None, sscc: dict[str, str], parent: dict[str, str]) -> str | None:
    """The logistic unit of a level, or of its nearest ancestor that has one."""
    seen: set[str] = set()
    while level is not None and level not in seen:
        if level in sscc:
            return sscc[level]
        seen.add(level)
        level = parent.get(level)
    return None


def _party(doc: dict[str, Any], el: list[list[str]]) -> None:
    if el[1][0] == "SU":
        doc["supplier"] = el[4][0] or el[2][0] or None
    elif el[1][0] in {"DP", "ST"}:
        doc["site_id"] = el[2][0]


def _place_item(doc: dict[str, Any], item: dict[str, Any], sscc: str | None) -> None:
    for container in doc["containers"]:
        if container["sscc"] == sscc:
            container["contents"].append(item)
            return
    doc["loose"].append(item)


def _item_detail(item: dict[str, Any], tag: str, el: list[list[str]], index: int) -> None:
    if tag == "QTY" and el[1][0] == "12":
        try:
            item["quantity"] = int(float(el[1][1]))
        except (IndexError, ValueError) as err:
            raise AsnFormatError(f"segment {index}: QTY needs a number") from err
    elif tag == "PIA" and len(el[2]) > 1 and el[2][1] == "NB":
        item["lot"] = el[2][0]
    elif tag == "DTM" and el[1][0] in {"36", "361"}:
        item["expiry"] = _date(el[1], index)[:10]
    elif tag == "GIN" and el[1][0] == "BN":
        item["serials"].extend(e[0] for e in el[2:] if e and e[0])


def _validated(doc: dict[str, Any]) -> AsnIn:
    if "reference" not in doc or "site_id" not in doc:
        raise AsnFormatError("DESADV: BGM (document number) and NAD+DP or NAD+ST are required")
    for line in [*doc["loose"], *(c for k in doc["containers"] for c in k["contents"])]:
        if line["serials"] and line.get("quantity") == len(line["serials"]):
            line.pop("quantity")
    try:
        return AsnIn.model_validate(doc)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise AsnFormatError(f"DESADV {doc['reference']}: {loc}: {first['msg']}") from err
