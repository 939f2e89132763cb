"""ASN imports from CSV and X12 856 (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cloud.receiving import AsnFormatError
from cloud.receiving.desadv import parse_desadv
from cloud.receiving.imports import parse_csv, parse_x12_856

GTIN_A = "00614141123452"
PALLET = "106141412345678908"
CASE = "006141410000000012"

CSV = f"""site_id,reference,supplier,expected_at,sscc,parent_sscc,gtin,lot,expiry,quantity,serial
site-1,PO-1,Acme,2026-03-02T06:00:00Z,{PALLET},,,,,,
site-1,PO-1,Acme,,{CASE},{PALLET},,,,,
site-1,PO-1,Acme,,{CASE},,{GTIN_A},L1,2027-01-31,,1
site-1,PO-1,Acme,,{CASE},,{GTIN_A},L1,2027-01-31,,2
site-1,PO-1,Acme,,{PALLET},,00614141999996,B7,,12,
site-1,PO-2,Acme,,,,{GTIN_A},L2,,,77
"""


def test_csv_rows_gather_into_asns_containers_and_lines() -> None:
    first, second = parse_csv(CSV)
    assert (first.reference, first.supplier) == ("PO-1", "Acme")
    assert first.expected_at is not None
    pallet, case = first.containers
    assert case.parent_sscc == PALLET
    assert case.contents[0].serials == ["1", "2"]
    assert str(case.contents[0].expiry) == "2027-01-31"
    assert pallet.contents[0].quantity == 12
    assert second.loose[0].serials == ["77"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("site_id,reference\ns,r\n", "missing columns"),
        (CSV.replace(",,,77", ",,5,77"), "line 7: give either a serial or a quantity"),
        (CSV.replace(",12,", ",twelve,"), "line 6: quantity 'twelve' is not a number"),
        (CSV.replace(f"site-1,PO-1,Acme,,{CASE},{PALLET},,,,,\n", ""), "not declared"),
        (CSV.replace(f"{CASE},,{GTIN_A},L1,2027-01-31,,1", f"{CASE},,{GTIN_A[:-1]}9,L1,,,1"),
         "valid check digit"),
    ],
)  # fmt: skip
def test_csv_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(AsnFormatError, match=message):
        parse_csv(text)


X12 = (
    "ISA*00*          *00*          *ZZ*ACME           *ZZ*COLDTRACE      *260301*1200*U*00401*"
    "000000001*0*P*>~GS*SH*ACME*COLDTRACE*20260301*1200*1*X*004010~ST*856*0001~"
    "BSN*00*SHIP-42*20260301*1200~DTM*017*20260302*0600~N1*SF*Acme Pharma~"
    "N1*ST*Main warehouse*92*site-1~HL*1**S~HL*2*1*O~PRF*PO-42~"
    f"HL*3*2*T~MAN*GM*{PALLET}~HL*4*3*P~MAN*GM*{CASE}~"
    f"HL*5*4*I~LIN**UK*{GTIN_A}*LT*L1~SN1**3*EA~DTM*036*20270131~REF*SE*1~REF*SE*2~REF*SE*3~"
    "HL*6*3*I~LIN**EN*0614141999996*LT*B7~SN1**12*EA~"
    "CTT*6~SE*20*0001~GE*1*1~IEA*1*000000001~"
)


def test_x12_856_subset_gives_the_hierarchy() -> None:
    asn = parse_x12_856(X12)
    assert (asn.site_id, asn.reference, asn.supplier) == ("site-1", "SHIP-42", "Acme Pharma")
    assert asn.expected_at is not None
    assert asn.expected_at.isoformat() == "2026-03-02T06:00:00+00:00"
    pallet, case = asn.containers
    assert (pallet.sscc, pallet.parent_sscc) == (PALLET, None)
    assert (case.sscc, case.parent_sscc) == (CASE, PALLET)
    assert case.contents[0].serials == ["1", "2", "3"]
    assert str(case.contents[0].expiry) == "2027-01-31"
    assert (pallet.contents[0].gtin, pallet.contents[0].quantity) == ("00614141999996", 12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("N1*ST*Main warehouse*92*site-1~", ""), "N1\\*ST"),
        ((f"MAN*GM*{CASE}~", ""), "needs MAN\\*GM"),
        (("SN1**3*EA~", "SN1**three*EA~"), "not a number"),
        (("DTM*017*20260302*0600", "DTM*017*2026-03-02*0600"), "bad date"),
        (("SN1**3*EA~", "SN1**4*EA~"), "quantity 4 but 3 serials"),
    ],
)
def test_x12_errors_are_clear(change: tuple[str, str], message: str) -> None:
    with pytest.raises(AsnFormatError, match=message):
        parse_x12_856(X12.replace(*change))


DESADV = (
    "UNA:+.? '"
    "UNB+UNOC:3+5412345000013:14+5498765000016:14+260301:1200+42'"
    "UNH+1+DESADV:D:96A:UN:EAN005'BGM+351+DES-42+9'DTM+137:20260301:102'"
    "DTM+132:202603020600:203'NAD+SU+5412345000013::9++Acme Pharma?+Co'"
    "NAD+DP+site-1::92'CPS+1'PAC+1++201'"
    f"GIN+BJ+{PALLET}'CPS+2+1'PAC+1++CT'GIN+BJ+{CASE}'"
    f"LIN+1++{GTIN_A}:SRV'QTY+12:3'PIA+1+L1:NB'DTM+361:20270131:102'GIN+BN+1+2+3'"
    "CPS+3+1'LIN+2++0614141999996:SRV'QTY+12:12'PIA+1+B7:NB'"
    "CNT+2:2'UNT+22+1'UNZ+1+42'"
)


def test_desadv_subset_gives_the_hierarchy() -> None:
    asn = parse_desadv(DESADV)
    assert (asn.site_id, asn.reference, asn.supplier) == ("site-1", "DES-42", "Acme Pharma+Co")
    assert asn.expected_at is not None
    assert asn.expected_at.isoformat() == "2026-03-02T06:00:00+00:00"
    pallet, case = asn.containers
    assert (case.sscc, case.parent_sscc) == (CASE, PALLET)
    assert case.contents[0].serials == ["1", "2", "3"]
    assert str(case.contents[0].expiry) == "2027-01-31"
    # CPS level 3 has no logistic unit of its own: its item is in level 1's pallet
    assert asn.loose == []
    assert (pallet.contents[0].gtin, pallet.contents[0].quantity) == ("00614141999996", 12)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("NAD+DP+site-1::92'", ""), "NAD\\+DP"),
        (("DTM+132:202603020600:203'", "DTM+132:20260302:999'"), "format 999"),
        (("QTY+12:12'", "QTY+12:many'"), "QTY needs a number"),
        (("GIN+BN+1+2+3'", "GIN+BN+1+2'"), "quantity 3 but 2 serials"),
    ],
)
def test_desadv_errors_are_clear(change: tuple[str, str], message: str) -> None:
    with pytest.raises(AsnFormatError, match=message):
        parse_desadv(DESADV.replace(*change))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([CSV, X12, DESADV]),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 20), st.text(max_size=3)), max_size=4),
)
def test_damaged_documents_give_format_errors_only(
    document: str, cuts: list[tuple[int, int, str]]
) -> None:
    for position, length, insert in cuts:
        at = position % max(len(document), 1)
        document = document[:at] + insert + document[at + length :]
    outcomes: list[str] = []
    for parse in (parse_csv, parse_x12_856, parse_desadv):
        try:
            parsed = parse(document)
        except AsnFormatError:  # anything else fails the test
            outcomes.append("refused")
        else:
            assert parsed  # an ASN (or a list of them) comes back, never None or nothing
            outcomes.append("parsed")
    assert len(outcomes) == 3
