"""Who is looking at the dashboard: a server-side session whose id is kept in an HttpOnly cookie.

A browser cannot attach an ``Authorization`` header to an ``EventSource``, so the dashboard
signs in once (``POST /ui/login``) with a user name and password (and TOTP code), or for service
accounts an API token: the credentials are checked, a session is opened
(``cloud.accounts.sessions``) and only the session's random id travels in a cookie that scripts
cannot read (``HttpOnly``), that other sites cannot make the browser send (``SameSite=Strict``)
and that is ``Secure`` over HTTPS. No password or API token sits in the browser. Every
request checks the session again: sign-out revokes it, it ends after an idle time and an absolute
lifetime, and revoking the token or disabling the user ends it at once. Actions (acknowledge,
release, reject) also need the ``X-Coldtrace-Action`` header, which a cross-site form cannot set.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, params, status

from cloud.accounts.sessions import SessionPolicy, session_user
from cloud.api.deps import Pool
from cloud.auth.model import Role, User
from cloud.web.config import WebSettings

COOKIE = "coldtrace_session"
ACTION_HEADER = "x-coldtrace-action"
STREAM_PATH = "/ui/events"


def web_settings(request: Request) -> WebSettings:
    """The dashboard's settings, put on the request by the router's own dependency."""
    cfg: WebSettings = request.state.web_settings
    return cfg


def remember_settings(settings: WebSettings | None = None) -> params.Depends:
    """A router dependency putting ``settings`` (default: ``COLDTRACE_WEB_*``) on each request."""
    cfg = settings or WebSettings()

    async def remember(request: Request) -> None:
        request.state.web_settings = cfg  # what the session cookie is checked against

    return params.Depends(remember)


def under_settings(router: APIRouter, settings: WebSettings | None = None) -> APIRouter:
    """``router`` wrapped so that its pages see ``settings`` (see ``remember_settings``)."""
    outer = APIRouter(dependencies=[remember_settings(settings)])
    outer.include_router(router)
    return outer


def policy(cfg: WebSettings) -> SessionPolicy:
    return SessionPolicy(idle_timeout=cfg.session_idle_timeout, lifetime=cfg.session_lifetime)


def is_https(request: Request, cfg: WebSettings) -> bool:
    """Whether the browser talks HTTPS: directly, or to a TLS proxy that says so in
    ``X-Forwarded-Proto`` when ``trust_forwarded_proto`` is set (never trusted otherwise: any
    client can send the header)."""
    if request.url.scheme == "https":
        return True
    if not cfg.trust_forwarded_proto:
        return False
    forwarded = request.headers.get("x-forwarded-proto", "")
    return forwarded.split(",", 1)[0].strip().lower() == "https"


async def maybe_user(request: Request, pool: Pool) -> User | None:
    """The signed-in user, or None (pages then redirect to the login page)."""
    session_id = request.cookies.get(COOKIE, "").strip()
    if not session_id:
        return None
    cfg = web_settings(request)
    # The event stream reconnects by itself every few seconds: that is not the person's activity
    # and must not keep an unattended session alive.
    touch = request.url.path != STREAM_PATH
    async with pool.connection() as conn:
        return await session_user(conn, session_id, policy(cfg), touch=touch)


MaybeUser = Annotated[User | None, Depends(maybe_user)]


async def session_user_or_401(user: MaybeUser) -> User:
    """The signed-in user; the stream and actions answer 401 without one."""
    if user is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "sign in at /ui/login")
    return user


SessionUser = Annotated[User, Depends(session_user_or_401)]


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


# As dependencies, so that the role is refused (403) before the body is judged (422).
async def _responder_action(user: ActionUser) -> User:
    return operator(user)


async def _quality_action(user: ActionUser) -> User:
    return quality(user)


ResponderAction = Annotated[User, Depends(_responder_action)]
QualityAction = Annotated[User, Depends(_quality_action)]
