"""``/v1/users`` (admin) and ``/v1/me``: users, roles and API tokens."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, status
from pydantic import BaseModel, Field

from cloud.api.deps import Pool
from cloud.auth import UserExistsError
from cloud.auth.deps import Admin, CurrentUser
from cloud.auth.model import Role
from cloud.auth.service import add_user, audit, disable_user, list_users

router = APIRouter(prefix="/v1", tags=["users"])

Reason = Annotated[str | None, Header(alias="X-Coldtrace-Reason", max_length=500)]


class UserIn(BaseModel):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")]
    role: Role


class UserOut(BaseModel):
    name: str
    role: Role
    enabled: bool = True


class NewUserOut(UserOut):
    token: str
    """Shown once: only its hash is kept."""


@router.get("/me")
async def me(user: CurrentUser) -> UserOut:
    return UserOut(name=user.name, role=user.role)


@router.post("/users", status_code=status.HTTP_201_CREATED)
async def create_user(body: UserIn, pool: Pool, admin: Admin, reason: Reason = None) -> NewUserOut:
    try:
        async with pool.connection() as conn, conn.transaction():
            token = await add_user(conn, body.name, body.role)
            await audit(
                conn, actor=admin.name, action="user.add", subject=f"user:{body.name}",
                reason=reason or "user created", detail={"role": body.role.value},
            )  # fmt: skip
    except UserExistsError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from err
    return NewUserOut(name=body.name, role=body.role, token=token)


@router.get("/users")
async def users(pool: Pool, _: Admin) -> list[UserOut]:
    async with pool.connection() as conn:
        return [UserOut(name=n, role=r, enabled=e) for n, r, e in await list_users(conn)]


@router.post("/users/{name}/disable")
async def disable(name: str, pool: Pool, admin: Admin, reason: Reason = None) -> UserOut:
    async with pool.connection() as conn, conn.transaction():
        if not await disable_user(conn, name):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no enabled user {name!r}")
        await audit(
            conn, actor=admin.name, action="user.disable", subject=f"user:{name}",
            reason=reason or "user disabled",
        )  # fmt: skip
        found = {n: (r, e) for n, r, e in await list_users(conn)}
    role, enabled = found[name]
    return UserOut(name=name, role=role, enabled=enabled)
