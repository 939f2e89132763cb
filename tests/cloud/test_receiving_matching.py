"""The pure receiving core: ASN validation and passage matching, without a database."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from cloud.receiving.asn import AsnIn, expected_items
from cloud.receiving.matching import OpenAsn, decode_reads, match_inbound
from protocols.gs1.epc import encode_sgtin96, encode_sscc96

GTIN_A = "00614141123452"
GTIN_B = "00614141999996"
GTIN_OTHER = "09506000134352"
PALLET = "106141412345678908"
CASE_1 = "006141410000000012"
CASE_2 = "006141410000000029"
STRAY = "006141419999999994"


def sgtin(gtin: str, serial: int) -> str:
    return encode_sgtin96(gtin, serial, 7)


def sscc(digits: str) -> str:
    return encode_sscc96(digits, 7)


def asn_doc(**extra: Any) -> dict[str, Any]:
    return {
        "site_id": "site-1",
        "reference": "PO-1",
        "containers": [
            {"sscc": PALLET},
            {
                "sscc": CASE_1,
                "parent_sscc": PALLET,
                "contents": [{"gtin": GTIN_A, "lot": "L1", "serials": ["1", "2", "3"]}],
            },
            {
                "sscc": CASE_2,
                "parent_sscc": PALLET,
                "contents": [{"gtin": GTIN_B, "lot": "B7", "quantity": 12}],
            },
        ],
        **extra,
    }


def open_asn(asn_id: int = 1, received: frozenset[str] = frozenset(), **kw: Any) -> OpenAsn:
    return OpenAsn(asn_id, tuple(expected_items(AsnIn.model_validate(asn_doc(**kw)))), received)


def test_a_pallet_read_receives_its_declared_contents_recursively() -> None:
    match = match_inbound(decode_reads([sscc(PALLET)]), [open_asn()])
    keys = [r.item.key for r in match.receive]
    assert keys[0] == f"(00){PALLET}"
    assert {f"(01){GTIN_A}(21){n}" for n in "123"} <= set(keys)
    bulk = [r for r in match.receive if r.item.kind == "bulk"]
    assert [(b.item.gtin, b.item.lot, b.item.quantity, b.epc_uri) for b in bulk] == [
        (GTIN_B, "B7", 12, None)
    ]
    assert match.short == {}
    assert match.completed == (1,)


def test_unit_reads_receive_those_units_and_report_short_over_unexpected() -> None:
    reads = decode_reads(
        [sgtin(GTIN_A, 1), sgtin(GTIN_A, 2), sgtin(GTIN_A, 99), sgtin(GTIN_OTHER, 5), sscc(STRAY)]
    )
    match = match_inbound(reads, [open_asn()])
    received = {r.item.key: r.epc_uri for r in match.receive}
    assert received == {
        f"(01){GTIN_A}(21)1": "urn:epc:id:sgtin:0614141.012345.1",
        f"(01){GTIN_A}(21)2": "urn:epc:id:sgtin:0614141.012345.2",
    }
    assert match.over == (f"(01){GTIN_A}(21)99",)
    assert set(match.unexpected) == {f"(00){STRAY}", f"(01){GTIN_OTHER}(21)5"}
    assert match.short == {1: (f"(01){GTIN_A}(21)3", f"(00){CASE_2}|(01){GTIN_B}(10)B7")}
    assert match.completed == ()


def test_a_second_pass_receives_nothing_twice() -> None:
    first = match_inbound(decode_reads([sscc(CASE_1)]), [open_asn()])
    done = frozenset(r.item.key for r in first.receive)
    again = match_inbound(decode_reads([sscc(CASE_1), sgtin(GTIN_A, 2)]), [open_asn(received=done)])
    assert again.receive == ()
    assert set(again.already_received) == {f"(00){CASE_1}", f"(01){GTIN_A}(21)2"}
    # the short list of an ASN is reported only when the passage received something for it
    assert again.short == {}


def test_reads_are_matched_to_whichever_open_asn_lists_them() -> None:
    other = AsnIn.model_validate(
        {
            "site_id": "site-1",
            "reference": "PO-2",
            "loose": [{"gtin": GTIN_OTHER, "lot": "X", "serials": ["5"]}],
        }
    )
    second = OpenAsn(2, tuple(expected_items(other)), frozenset())
    match = match_inbound(decode_reads([sgtin(GTIN_OTHER, 5), sscc(CASE_2)]), [open_asn(), second])
    assert sorted((r.asn_id, r.item.kind) for r in match.receive) == [
        (1, "bulk"),
        (1, "sscc"),
        (2, "sgtin"),
    ]
    assert match.completed == (2,)
    assert set(match.short) == {1}


def test_undecodable_reads_are_kept_apart() -> None:
    reads = decode_reads(["E2801160600002", sgtin(GTIN_A, 1)])
    assert reads.undecodable == ("E2801160600002",)
    assert list(reads.keys) == [f"(01){GTIN_A}(21)1"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"containers": [{"sscc": "106141412345678900"}]}, "valid check digit"),
        ({"containers": [{"sscc": PALLET, "parent_sscc": CASE_1}]}, "not in the ASN"),
        (
            {
                "containers": [
                    {"sscc": PALLET, "parent_sscc": CASE_1},
                    {"sscc": CASE_1, "parent_sscc": PALLET},
                ]
            },
            "cycle",
        ),
        (
            {"containers": [], "loose": [{"gtin": GTIN_A, "lot": "L", "serials": ["1", "1"]}]},
            "listed twice",
        ),
        (
            {"containers": [], "loose": [{"gtin": GTIN_A, "lot": "L", "quantity": 3}]},
            "must list serials",
        ),
        (
            {
                "containers": [],
                "loose": [{"gtin": GTIN_A, "lot": "L", "quantity": 2, "serials": ["1"]}],
            },
            "quantity 2 but 1 serials",
        ),
        ({"containers": []}, "at least one"),
        ({"containers": [{"sscc": "urn:epc:id:sscc:0614141.1234567890"}]}, None),
    ],
)
def test_asn_validation_names_the_problem(change: dict[str, Any], message: str | None) -> None:
    doc = {"site_id": "site-1", "reference": "PO-9", **change}
    if message is None:
        assert AsnIn.model_validate(doc).containers[0].sscc == PALLET
        return
    with pytest.raises(ValidationError, match=message):
        AsnIn.model_validate(doc)


def test_a_company_prefix_length_gives_units_their_uri_before_any_read() -> None:
    doc = {
        "site_id": "s",
        "reference": "R",
        "containers": [
            {
                "sscc": PALLET,
                "contents": [
                    {"gtin": GTIN_A, "lot": "L", "serials": ["7"], "company_prefix_length": 7}
                ],
            }
        ],
    }
    items = expected_items(AsnIn.model_validate(doc))
    match = match_inbound(decode_reads([sscc(PALLET)]), [OpenAsn(1, tuple(items), frozenset())])
    assert [r.epc_uri for r in match.receive] == [
        "urn:epc:id:sscc:0614141.1234567890",
        "urn:epc:id:sgtin:0614141.012345.7",
    ]


def key_of(epc: str) -> str:
    return next(iter(decode_reads([epc]).keys))


def still_open_po2() -> OpenAsn:
    """PO-2, still open: two loose units of the GTIN PO-1's pallet brought (serials 7 and 8)."""
    doc = {
        "site_id": "site-1",
        "reference": "PO-2",
        "loose": [{"gtin": GTIN_A, "lot": "L2", "serials": ["7", "8"]}],
    }
    return OpenAsn(2, tuple(expected_items(AsnIn.model_validate(doc))), frozenset())


# PO-1 (asn_doc) was received in full and is no longer open: only the ledger still knows its
# pallet, cases and units, as keys on hand at the site.
PO1_ON_HAND = frozenset(
    key_of(e)
    for e in [sscc(PALLET), sscc(CASE_1), sscc(CASE_2)] + [sgtin(GTIN_A, n) for n in (1, 2, 3)]
)


@pytest.mark.parametrize(
    ("reads", "received", "already", "over", "unexpected", "short"),
    [
        pytest.param(  # the received pallet again: already received, PO-2 untouched
            [sscc(PALLET), sgtin(GTIN_A, 1), sgtin(GTIN_A, 2), sgtin(GTIN_A, 3)],
            [],
            [f"(00){PALLET}", *(f"(01){GTIN_A}(21){n}" for n in "123")],
            [],
            [],
            {},
            id="second-pass",
        ),
        pytest.param(  # a pallet nobody announced and the site does not hold
            [sscc(STRAY), sgtin(GTIN_OTHER, 5)],
            [],
            [],
            [],
            [f"(00){STRAY}", f"(01){GTIN_OTHER}(21)5"],
            {},
            id="unexpected-pallet",
        ),
        pytest.param(  # a unit of the GTIN, neither announced nor on hand (e.g. one that left)
            [sgtin(GTIN_A, 99)],
            [],
            [],
            [f"(01){GTIN_A}(21)99"],
            [],
            {},
            id="over",
        ),
        pytest.param(  # the old pallet with a case PO-2 announces: that case is PO-2's
            [sscc(PALLET), sgtin(GTIN_A, 1), sgtin(GTIN_A, 7)],
            [f"(01){GTIN_A}(21)7"],
            [f"(00){PALLET}", f"(01){GTIN_A}(21)1"],
            [],
            [],
            {2: (f"(01){GTIN_A}(21)8",)},
            id="mixed-with-open-asn",
        ),
    ],
)
def test_on_hand_units_read_again_are_already_received(
    reads: list[str],
    received: list[str],
    already: list[str],
    over: list[str],
    unexpected: list[str],
    short: dict[int, tuple[str, ...]],
) -> None:
    match = match_inbound(decode_reads(reads), [still_open_po2()], PO1_ON_HAND)
    assert [(r.asn_id, r.item.key) for r in match.receive] == [(2, k) for k in received]
    assert sorted(match.already_received) == sorted(already)
    assert sorted(match.over) == sorted(over)
    assert sorted(match.unexpected) == sorted(unexpected)
    assert match.short == short


def test_an_open_asn_that_announces_a_key_takes_it_before_the_on_hand_set() -> None:
    # as before the on-hand set existed: the ledger then decides (it refuses a unit on hand)
    unit = key_of(sgtin(GTIN_A, 7))
    match = match_inbound(decode_reads([sgtin(GTIN_A, 7)]), [still_open_po2()], frozenset({unit}))
    assert [(r.asn_id, r.item.key) for r in match.receive] == [(2, unit)]
    assert match.already_received == ()


def tagged_pallet() -> OpenAsn:
    """A pallet of two cases, each with its own SGTIN tag, plus one untagged lot line."""
    doc = {
        "site_id": "site-1",
        "reference": "PO-3",
        "containers": [
            {
                "sscc": PALLET,
                "contents": [
                    {"gtin": GTIN_A, "lot": "L1", "serials": ["1", "2"]},
                    {"gtin": GTIN_B, "lot": "B7", "quantity": 12},
                ],
            }
        ],
    }
    return OpenAsn(3, tuple(expected_items(AsnIn.model_validate(doc))), frozenset())


CASE_KEYS = [f"(01){GTIN_A}(21)1", f"(01){GTIN_A}(21)2"]


@pytest.mark.parametrize(
    ("reads", "unconfirmed"),
    [
        pytest.param(  # the label and every case tag: nothing to verify
            [sscc(PALLET), sgtin(GTIN_A, 1), sgtin(GTIN_A, 2)], {}, id="all-case-tags-read"
        ),
        pytest.param(  # the label, one case tag not seen: that case is unconfirmed
            [sscc(PALLET), sgtin(GTIN_A, 1)],
            {f"(00){PALLET}": (CASE_KEYS[1],)},
            id="one-case-missing",
        ),
        pytest.param(  # the label only: every tagged unit it declares is unconfirmed
            [sscc(PALLET)], {f"(00){PALLET}": tuple(CASE_KEYS)}, id="label-only"
        ),
        pytest.param(  # no label read, every case read: received by their own tags, as before
            [sgtin(GTIN_A, 1), sgtin(GTIN_A, 2)], {}, id="sscc-not-read"
        ),
    ],
)
def test_tagged_units_of_a_read_container_not_read_themselves_are_unconfirmed(
    reads: list[str], unconfirmed: dict[str, tuple[str, ...]]
) -> None:
    match = match_inbound(decode_reads(reads), [tagged_pallet()])
    assert match.unconfirmed == unconfirmed
    # unconfirmed units are still received per the label; nothing is short when the label was
    # read, and without it the untagged line is short exactly as before
    received = {r.item.key for r in match.receive}
    assert set(CASE_KEYS) <= received
    if f"(00){PALLET}" in decode_reads(reads).keys:
        assert (match.short, match.completed) == ({}, (3,))
    else:
        assert match.short == {3: (f"(00){PALLET}|(01){GTIN_B}(10)B7",)}


def test_unconfirmed_units_are_attributed_to_the_nearest_read_container() -> None:
    # case 1 read on its own label and the pallet too; none of case 1's unit tags seen
    match = match_inbound(decode_reads([sscc(PALLET), sscc(CASE_1)]), [open_asn()])
    assert match.unconfirmed == {f"(00){CASE_1}": tuple(f"(01){GTIN_A}(21){n}" for n in "123")}
    # a unit received earlier (on its own tag) is confirmed already, never unconfirmed again
    first = match_inbound(decode_reads([sgtin(GTIN_A, 1)]), [open_asn()])
    done = frozenset(r.item.key for r in first.receive)
    again = match_inbound(decode_reads([sscc(PALLET)]), [open_asn(received=done)])
    assert again.unconfirmed == {f"(00){PALLET}": (f"(01){GTIN_A}(21)2", f"(01){GTIN_A}(21)3")}
