"""Security headers on every response, and a strict Content-Security-Policy on the dashboard.

The dashboard loads only its own script and stylesheet and talks only to its own origin, so its
policy allows nothing else: no inline script or style, no framing (clickjacking of the QA
release button), no other origins. Every response, API included, is ``nosniff``. The API's
``/docs`` page loads Swagger UI from a CDN and is left without a CSP.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DASHBOARD_PREFIX = "/ui"
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
EVERYWHERE = {"X-Content-Type-Options": "nosniff"}
DASHBOARD = {
    "Content-Security-Policy": DASHBOARD_CSP,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        dashboard = path == DASHBOARD_PREFIX or path.startswith(DASHBOARD_PREFIX + "/")
        extra = {**EVERYWHERE, **DASHBOARD} if dashboard else EVERYWHERE

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in extra.items():
                    headers.setdefault(name, value)
            await send(message)

        await self.app(scope, receive, send_with_headers)
