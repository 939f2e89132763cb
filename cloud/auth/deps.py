"""FastAPI dependencies: the current user from ``Authorization: Bearer <token>``, role checks.

>>> from fastapi import APIRouter
>>> router = APIRouter()
>>> @router.post("/things", dependencies=[require_role(Role.OPERATOR)])
... async def make_thing() -> None: ...
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status

from cloud.api.deps import Pool
from cloud.auth import UnauthenticatedError
from cloud.auth.model import Role, User
from cloud.auth.service import authenticate

_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def current_user(request: Request, pool: Pool) -> User:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "bearer token required", _CHALLENGE)
    async with pool.connection() as conn:
        try:
            return await authenticate(conn, token.strip())
        except UnauthenticatedError as err:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(err), _CHALLENGE) from err


CurrentUser = Annotated[User, Depends(current_user)]


def require_role(*roles: Role | str) -> Any:
    """A dependency that lets through users with one of ``roles`` (admin always) or answers 403.

    Use it as ``dependencies=[require_role("qa")]`` or as a parameter type via ``Depends``.
    """
    wanted = tuple(Role(r) for r in roles)

    async def check(user: CurrentUser) -> User:
        if not user.allows(*wanted):
            names = ", ".join(r.value for r in wanted) or "admin"
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {names} required")
        return user

    dependency: Callable[[User], Awaitable[User]] = check
    return Depends(dependency)


Viewer = Annotated[User, require_role(Role.VIEWER, Role.OPERATOR, Role.QA)]
Operator = Annotated[User, require_role(Role.OPERATOR)]
Responder = Annotated[User, require_role(Role.OPERATOR, Role.QA)]
"""Who answers alarms: operators and QA (and admins), as on the dashboard."""
Qa = Annotated[User, require_role(Role.QA)]
Admin = Annotated[User, require_role()]
