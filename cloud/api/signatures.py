"""The e-signature block of signed actions, and ``/v1/signatures``: read and verify.

A fate-deciding action (lot disposition, recall hold, closing an action-level excursion,
confirming a cycle count) carries ``signature``: the signer's user name and password (and TOTP
code when enrolled) typed again at the moment of signing, and the meaning. Both components are
asked at every signing, which meets 21 CFR 11.200(a)(1) whether or not it is the first signing
of a session. The user name must be the request's own user: the bearer token (or dashboard
session) says who asks, the password says who signs, and they must be the same person. An API
token alone never signs: a machine account has no password (403).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from psycopg import AsyncConnection
from psycopg.rows import TupleRow
from pydantic import BaseModel, Field, StringConstraints

from cloud.accounts import AccountError
from cloud.accounts.settings import AccountSettings
from cloud.accounts.store import Person, verify_person
from cloud.api.accounts import Code, Secret, account_error
from cloud.api.deps import Pool
from cloud.auth.deps import Viewer
from cloud.auth.model import User
from cloud.signatures import MeaningError
from cloud.signatures.core import Meaning, Signature, SignedAction, check_meaning
from cloud.signatures.store import signatures_for, verify

router = APIRouter(prefix="/v1", tags=["signatures"])
IdPath = Annotated[int, Path(ge=1, le=2**63 - 1)]


Subject = Annotated[str, StringConstraints(max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]


class SignatureIn(BaseModel):
    username: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
    password: Secret
    code: Code | None = None
    """The current TOTP code, when the signer has enrolled a second factor."""
    meaning: Meaning


class SignatureOut(BaseModel):
    signature_id: int
    user_id: int
    username: str
    printed_name: str
    signed_at: datetime
    meaning: Meaning
    action: str
    subject: str
    entry_ids: list[int]
    content_hash: str
    factors: str
    manifestation: str
    """Printed name, time (UTC) and meaning in words, as shown and printed."""


def signature_out(s: Signature) -> SignatureOut:
    fields = {**vars(s), "entry_ids": list(s.entry_ids)}
    return SignatureOut(**fields, manifestation=s.manifestation())


async def reauthenticate(
    pool: Pool, user: User, sig: SignatureIn, settings: AccountSettings, action: SignedAction
) -> Person:
    """The signer, re-authenticated now; HTTP errors for a wrong meaning (422), someone else's
    name (403), wrong credentials (401, counted towards lock-out), a locked account (423) or a
    machine account (403). Call it before opening the action's transaction."""
    try:
        check_meaning(action, sig.meaning)
    except MeaningError as err:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(err)) from err
    if sig.username != user.name:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, "a signature is given by the signed-in user, in person"
        )
    try:
        async with pool.connection() as conn:
            return await verify_person(
                conn, sig.username, sig.password, sig.code, settings,
                purpose=f"signature: {action.stored}",
            )  # fmt: skip
    except AccountError as err:
        raise account_error(err) from err


async def shown(conn: AsyncConnection[TupleRow], *subjects: str) -> list[SignatureOut]:
    return [signature_out(s) for s in await signatures_for(conn, subjects)]


@router.get("/signatures")
async def get_signatures(
    pool: Pool,
    _: Viewer,
    subject: Annotated[list[Subject], Query(min_length=1, max_length=100)],
) -> list[SignatureOut]:
    """The signatures on records (``lot:12``, ``excursion:3``, ``count:7``), oldest first."""
    async with pool.connection() as conn:
        return await shown(conn, *subject)


class VerifyOut(BaseModel):
    signature_id: int
    intact: bool
    """The record's content and its ledger entries still hash to what was signed."""


@router.get("/signatures/{signature_id}/verify")
async def verify_signature(signature_id: IdPath, pool: Pool, _: Viewer) -> VerifyOut:
    async with pool.connection() as conn:
        intact = await verify(conn, signature_id)
    if intact is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no signature {signature_id}")
    return VerifyOut(signature_id=signature_id, intact=intact)
