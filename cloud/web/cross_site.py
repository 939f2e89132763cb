"""Refuses a write to the dashboard that another site's page made the browser send.

The dashboard's actions need the ``X-Coldtrace-Action`` header, which no cross-site form can
set, and its cookie is ``SameSite=Strict``. A few routes are plain HTML forms and cannot carry a
header: sign-in, sign-out and the account page (password, second factor). For them, and as a
second check for every other write under ``/ui``, the browser's own word is used: a request
whose ``Sec-Fetch-Site`` is ``cross-site`` or ``same-site`` (another host of the same domain:
SameSite=Strict does not stop those) is refused with 403, and so is one without that header
whose ``Origin`` names another host. Our own pages send ``Referrer-Policy: no-referrer``, so
their forms say ``Origin: null``; that, and a client sending neither header (scripts, tests),
passes: such a request carries no browser's cookie by someone else's choice.

Sign-in is covered too (login CSRF: another site signing the browser in as the attacker, so
that what the victim then records is recorded in the attacker's name).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

DASHBOARD_PREFIX = "/ui"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FOREIGN_FETCH_SITES = frozenset({"cross-site", "same-site"})


def foreign(headers: dict[str, str]) -> bool:
    """Whether a browser says another site made this request (header names in lower case).

    >>> foreign({"sec-fetch-site": "cross-site"}), foreign({"sec-fetch-site": "same-origin"})
    (True, False)
    >>> foreign({"origin": "https://evil.example", "host": "cloud.example"})
    True
    >>> foreign({"origin": "null", "host": "cloud.example"}), foreign({"host": "cloud.example"})
    (False, False)
    """
    fetch_site = headers.get("sec-fetch-site", "").strip().lower()
    if fetch_site:
        return fetch_site in FOREIGN_FETCH_SITES
    origin = headers.get("origin", "").strip()
    if not origin or origin == "null":
        return False
    return urlsplit(origin).netloc.lower() != headers.get("host", "").strip().lower()


class CrossSiteWriteGuard:
    """403 for a write under ``/ui`` that a browser says came from another site (``foreign``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            path: str = scope["path"]
            if path == DASHBOARD_PREFIX or path.startswith(DASHBOARD_PREFIX + "/"):
                headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                           for k, v in scope["headers"]}  # fmt: skip
                if foreign(headers):
                    refused = PlainTextResponse("refused: sent from another site", 403)
                    await refused(scope, receive, send)
                    return
        await self.app(scope, receive, send)
