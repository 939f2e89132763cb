"""``/v1/profiles``: the storage profiles (standard ones read-only, custom ones editable)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from cloud.api.asns import Reason
from cloud.api.deps import IdPath, Pool
from cloud.auth.deps import Admin, Viewer
from cloud.auth.service import audit
from cloud.coldchain.profiles import StorageProfile
from cloud.coldchain.store import list_profiles, upsert_custom_profile

router = APIRouter(prefix="/v1", tags=["cold chain"])


class ProfileOut(StorageProfile):
    standard: bool


@router.get("/profiles")
async def get_profiles(pool: Pool, _: Viewer) -> list[ProfileOut]:
    async with pool.connection() as conn:
        found = await list_profiles(conn)
    return [ProfileOut(**p.model_dump(), standard=std) for p, std in found]


@router.put("/profiles/{profile_id}")
async def put_profile(
    profile_id: IdPath, body: StorageProfile, pool: Pool, user: Admin, reason: Reason = None
) -> ProfileOut:
    """Creates or replaces a custom profile; standard profiles cannot be changed (409).

    Audited as ``profile.put`` with the profile before (null when new) and after.
    """
    if body.profile_id != profile_id:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "profile_id differs from URL")
    async with pool.connection() as conn, conn.transaction():
        old = {p.profile_id: p for p, _ in await list_profiles(conn)}.get(profile_id)
        if not await upsert_custom_profile(conn, body):
            raise HTTPException(status.HTTP_409_CONFLICT, "a standard profile cannot be changed")
        after = body.model_dump(mode="json")
        await audit(
            conn, actor=user.name, action="profile.put", subject=f"profile:{profile_id}",
            reason=reason or "master data maintenance",
            # the profile's own fields stay at the top level, as before "before" was recorded
            detail={**after, "before": old.model_dump(mode="json") if old else None,
                    "after": after},
        )  # fmt: skip
    return ProfileOut(**body.model_dump(), standard=False)
