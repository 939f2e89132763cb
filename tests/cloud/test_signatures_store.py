"""Signature storage (issue 17.2): the binding hash covers the content and the ledger entries,
signatures are append-only, and they are found by record and by ledger entry."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest

from cloud.accounts.settings import AccountSettings
from cloud.accounts.store import verify_person
from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.signatures import MeaningError
from cloud.signatures.core import Meaning, SignedAction, content_hash
from cloud.signatures.store import sign, signatures_for, signatures_for_entries, verify
from tests.support.people import PASSWORD, give_password


def test_the_hash_changes_with_every_part_it_binds() -> None:
    at = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    signer = (1, "ana", "Ana Lopes")
    base = content_hash({"lot_id": 1}, ["aa"], signer=signer, meaning=Meaning.RELEASED,
                        signed_at=at)  # fmt: skip
    assert base == content_hash(
        {"lot_id": 1}, ["aa"], signer=signer, meaning=Meaning.RELEASED, signed_at=at
    )
    others = [
        content_hash({"lot_id": 2}, ["aa"], signer=signer, meaning=Meaning.RELEASED,
                     signed_at=at),
        content_hash({"lot_id": 1}, ["ab"], signer=signer, meaning=Meaning.RELEASED,
                     signed_at=at),
        content_hash({"lot_id": 1}, ["aa"], signer=(2, "bo", "Bo"), meaning=Meaning.RELEASED,
                     signed_at=at),
        content_hash({"lot_id": 1}, ["aa"], signer=signer, meaning=Meaning.APPROVED,
                     signed_at=at),
        content_hash({"lot_id": 1}, ["aa"], signer=signer, meaning=Meaning.RELEASED,
                     signed_at=at.replace(second=1)),
    ]  # fmt: skip
    assert base not in others


@pytest.mark.integration
async def test_signatures_bind_to_entries_and_are_append_only(timescale_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        await add_user(conn, "ana", Role.QA)
        await conn.commit()
    await give_password(timescale_url, "ana", full_name="Ana Lopes")
    async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
        person = await verify_person(conn, "ana", PASSWORD, None, AccountSettings(), purpose="test")
        assert person.printed_name == "Ana Lopes"
        assert person.factors == "password"
        with pytest.raises(MeaningError):
            await sign(conn, person, action=SignedAction.DISPOSITION_REJECT, subject="lot:1",
                       meaning=Meaning.RELEASED, content={}, entries_after=None)  # fmt: skip
        await conn.rollback()
        sig = await sign(
            conn, person, action=SignedAction.EXCURSION_CLOSE, subject="excursion:5",
            meaning=Meaning.REVIEWED, content={"root_cause": "door left open"},
            entries_after=None,
        )  # fmt: skip
        await conn.commit()
        assert sig.action == "excursion.close"
        assert sig.entry_ids == ()
        assert "Ana Lopes (ana)" in sig.manifestation()
        assert sig.manifestation().endswith("UTC, reviewed")
        assert await verify(conn, sig.signature_id) is True
        assert await verify(conn, 999_999) is None
        assert [s.signature_id for s in await signatures_for(conn, ["excursion:5"])] == [
            sig.signature_id
        ]
        assert await signatures_for_entries(conn, [1, 2]) == {}
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("UPDATE e_signatures SET meaning = 'approved'")
        await conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            await conn.execute("DELETE FROM e_signatures")
        await conn.rollback()
