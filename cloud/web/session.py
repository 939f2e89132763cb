"""Who is looking at the dashboard: the user's API token kept in an HttpOnly cookie.

A browser cannot attach an ``Authorization`` header to an ``EventSource``, so the dashboard
signs in once with an API token (``POST /ui/login``) and the token travels in a cookie that
scripts cannot read (``HttpOnly``) and other sites cannot make the browser send
(``SameSite=Strict``). Every request is authenticated again against ``api_tokens``, so revoking
a token or disabling a user ends the session at once. Actions (acknowledge, release, reject)
also need the ``X-Coldtrace-Action`` header, which a cross-site form cannot set.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from cloud.api.deps import Pool
from cloud.auth import UnauthenticatedError
from cloud.auth.model import Role, User
from cloud.auth.service import authenticate

COOKIE = "coldtrace_session"
ACTION_HEADER = "x-coldtrace-action"


async def maybe_user(request: Request, pool: Pool) -> User | None:
    """The signed-in user, or None (pages then redirect to the login page)."""
    token = request.cookies.get(COOKIE, "").strip()
    if not token:
        return None
    async with pool.connection() as conn:
        try:
            return await authenticate(conn, token)
        except UnauthenticatedError:
            return None


MaybeUser = Annotated[User | None, Depends(maybe_user)]


async def session_user(user: MaybeUser) -> User:
    """The signed-in user; the stream and actions answer 401 without one."""
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in at /ui/login")
    return user


SessionUser = Annotated[User, Depends(session_user)]


def _actor(user: User, *roles: Role) -> User:
    if not user.allows(*roles):
        names = ", ".join(r.value for r in roles)
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {names} required")
    return user


async def action_user(request: Request, user: SessionUser) -> User:
    """A signed-in user making a change: the anti-forgery header must be present."""
    if request.headers.get(ACTION_HEADER) != "1":
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"missing {ACTION_HEADER} header")
    return user


ActionUser = Annotated[User, Depends(action_user)]


def operator(user: User) -> User:
    """Acknowledging alarms: operators, QA and admins."""
    return _actor(user, Role.OPERATOR, Role.QA)


def quality(user: User) -> User:
    """Quality dispositions: QA and admins only."""
    return _actor(user, Role.QA)
