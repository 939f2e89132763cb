"""Pure matching of a dock-door passage against the open ASNs of the door's site.

A read SSCC receives everything the ASN declares inside it (nested containers included); a read
SGTIN receives that unit. What was already received is reported, never received twice: an item
an open ASN has received already, or a unit or container the site already has on hand (its ASN
may be complete and no longer open, so only the ledger knows it: the caller passes those keys).
An open ASN that announces a read key and has not received it still takes it first. A read unit
of a GTIN the ASNs announce but not listed is *over*, anything else read is *unexpected*; what
the ASNs still announce after the passage is *short*.

A read SSCC is trusted for what it declares: its contents are received per the label. But a
declared unit with its own tag (an SGTIN the ASN lists) that the passage did not read is also
*unconfirmed*, under the read container that brought it: the label says it is there, its own tag
was not seen. Usually that is an RF miss, sometimes a case that is not on the pallet; the caller
flags the receipt for a person to count. Untagged contents (bulk quantities) cannot be
confirmed by a read and are received per the label as before.

>>> from cloud.receiving.asn import AsnIn, expected_items
>>> asn = AsnIn.model_validate({"site_id": "s", "reference": "R", "containers": [
...     {"sscc": "106141412345678908", "contents": [
...         {"gtin": "00614141123452", "lot": "L1", "serials": ["1", "2"]}]}]})
>>> reads = Reads(keys={"(00)106141412345678908": "urn:epc:id:sscc:0614141.1234567890"})
>>> m = match_inbound(reads, [OpenAsn(1, tuple(expected_items(asn)), frozenset())])
>>> [r.item.key for r in m.receive]
['(00)106141412345678908', '(01)00614141123452(21)1', '(01)00614141123452(21)2']
>>> m.short, m.completed, m.unconfirmed
({}, (1,), {'(00)106141412345678908': ('(01)00614141123452(21)1', '(01)00614141123452(21)2')})
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from cloud.receiving.asn import ExpectedItem, sgtin_key, sscc_key
from protocols.gs1.epc import decode_epc
from protocols.gs1.epc_types import Sgtin, Sscc
from protocols.gs1.errors import Gs1Error


@dataclass(frozen=True)
class Reads:
    """A passage's EPCs decoded: GS1 key → pure-identity URI, plus what could not be used."""

    keys: dict[str, str] = field(default_factory=dict)
    undecodable: tuple[str, ...] = ()
    not_trade_items: tuple[str, ...] = ()


def decode_reads(epcs: Iterable[str]) -> Reads:
    """Decodes hex EPCs with the GS1 codec; duplicates collapse.

    >>> r = decode_reads(["3174257BF4499602D2000000", "ZZ", "3474257BF400000000000001"])
    >>> r.keys, r.undecodable, r.not_trade_items
    ({'(00)106141412345678908': 'urn:epc:id:sscc:0614141.1234567890'}, \
('ZZ', '3474257BF400000000000001'), ())
    """
    keys: dict[str, str] = {}
    bad: list[str] = []
    other: list[str] = []
    for epc in epcs:
        try:
            decoded = decode_epc(epc)
        except Gs1Error:
            bad.append(epc)
            continue
        if isinstance(decoded, Sscc):
            keys[sscc_key(decoded.sscc)] = decoded.pure_identity_uri
        elif isinstance(decoded, Sgtin):
            keys[sgtin_key(decoded.gtin, decoded.serial)] = decoded.pure_identity_uri
        else:
            other.append(epc)
    return Reads(keys, tuple(dict.fromkeys(bad)), tuple(dict.fromkeys(other)))


@dataclass(frozen=True)
class OpenAsn:
    asn_id: int
    items: tuple[ExpectedItem, ...]
    received: frozenset[str]  # keys of items already received


@dataclass(frozen=True)
class ToReceive:
    asn_id: int
    item: ExpectedItem
    epc_uri: str | None  # the URI read or announced; None for a bulk quantity


@dataclass(frozen=True)
class Match:
    receive: tuple[ToReceive, ...]
    already_received: tuple[str, ...]
    over: tuple[str, ...]
    unexpected: tuple[str, ...]
    short: dict[int, tuple[str, ...]]  # per ASN, what it still announces (units and bulk)
    completed: tuple[int, ...]  # ASNs with nothing outstanding after this passage
    # per read container key, the tagged units it brought (received) whose own tag was not read
    unconfirmed: dict[str, tuple[str, ...]] = field(default_factory=dict)


def _unit_uri(item: ExpectedItem, reads: Reads) -> str | None:
    if item.kind == "bulk":
        return None
    return reads.keys.get(item.key) or item.uri or item.key


def match_inbound(
    reads: Reads, asns: Sequence[OpenAsn], on_hand: frozenset[str] = frozenset()
) -> Match:
    """What an inbound passage receives, and what it leaves over, unexpected or short.

    ``on_hand`` holds the read keys the site already has on hand (received earlier, by an ASN
    that may be closed or complete): read again, they are already received, never over or
    unexpected against another ASN that happens to announce the same product.

    >>> from cloud.receiving.asn import AsnIn, expected_items
    >>> other = AsnIn.model_validate({"site_id": "s", "reference": "R2",
    ...     "loose": [{"gtin": "00614141123452", "lot": "L2", "serials": ["8"]}]})
    >>> reads = Reads(keys={"(00)106141412345678908": "urn:epc:id:sscc:0614141.1234567890",
    ...                     "(01)00614141123452(21)1": "urn:epc:id:sgtin:0614141.012345.1"})
    >>> m = match_inbound(reads, [OpenAsn(2, tuple(expected_items(other)), frozenset())],
    ...                   on_hand=frozenset(reads.keys))
    >>> m.already_received, m.over, m.unexpected, m.receive, m.short
    (('(00)106141412345678908', '(01)00614141123452(21)1'), (), (), (), {})
    """
    index: dict[str, tuple[OpenAsn, ExpectedItem]] = {}
    children: dict[tuple[int, str], list[ExpectedItem]] = {}
    gtins: set[str] = set()
    for asn in asns:
        for item in asn.items:
            index.setdefault(item.key, (asn, item))
            if item.parent is not None:
                children.setdefault((asn.asn_id, item.parent), []).append(item)
            if item.gtin:
                gtins.add(item.gtin)
    taken: dict[str, ToReceive] = {}
    already: list[str] = []
    over: list[str] = []
    unexpected: list[str] = []

    unconfirmed: dict[str, list[str]] = {}

    def take(asn: OpenAsn, item: ExpectedItem, via: str) -> None:
        if item.key in asn.received or item.key in taken:
            return
        taken[item.key] = ToReceive(asn.asn_id, item, _unit_uri(item, reads))
        if item.kind == "sgtin" and item.key not in reads.keys:
            unconfirmed.setdefault(via, []).append(item.key)
        for child in children.get((asn.asn_id, item.key), []):
            take(asn, child, via)

    for key in sorted(reads.keys, key=lambda k: (not k.startswith("(00)"), k)):
        found = index.get(key)
        if found is None and key in on_hand:
            already.append(key)
        elif found is None:
            gtin = key[4:18] if key.startswith("(01)") else None
            (over if gtin in gtins else unexpected).append(key)
        elif key in found[0].received:
            already.append(key)
        else:
            take(*found, via=key)
    match = _summarise(asns, taken, already, over, unexpected)
    return replace(match, unconfirmed={k: tuple(v) for k, v in unconfirmed.items()})


def _summarise(
    asns: Sequence[OpenAsn],
    taken: dict[str, ToReceive],
    already: list[str],
    over: list[str],
    unexpected: list[str],
) -> Match:
    short: dict[int, tuple[str, ...]] = {}
    completed: list[int] = []
    touched = {t.asn_id for t in taken.values()}
    for asn in asns:
        left = tuple(
            i.key
            for i in asn.items
            if i.kind != "sscc" and i.key not in asn.received and i.key not in taken
        )
        if left and asn.asn_id in touched:
            short[asn.asn_id] = left
        elif not left and asn.asn_id in touched:
            completed.append(asn.asn_id)
    return Match(
        tuple(taken.values()), tuple(already), tuple(over), tuple(unexpected), short,
        tuple(completed),
    )  # fmt: skip
