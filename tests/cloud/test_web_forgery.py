"""Cross-site request forgery on the dashboard, for every write route the application mounts.

The routes come from the running application (as in the authorisation matrix), so a write added
under /ui is checked without being listed here: it must refuse an admin's session without the
``X-Coldtrace-Action`` header (403), unless it is one of the plain HTML forms in ``FORMS``, and
every write, forms included, must refuse what a browser says another site sent (403) before
its body is read.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cloud.web.session import COOKIE
from tests.cloud.test_authorization_matrix import (  # noqa: F401 (setup is a fixture)
    Callers,
    _app,
    _url,
    mounted_routes,
    setup,
)
from tests.support.ledger_api import Api

pytestmark = pytest.mark.integration

FORMS = {
    ("POST", "/ui/login"): "the sign-in page loads no script",
    ("POST", "/ui/logout"): "the sign-out button of every page",
    ("POST", "/ui/account/password"): "the account page's forms",
    ("POST", "/ui/account/totp"): "the account page's forms",
    ("POST", "/ui/account/totp/confirm"): "the account page's forms",
}
"""Writes posted by a plain HTML form, which cannot send a header: the cross-site check guards
them (with SameSite=Strict and, for the account page, the current password or code)."""
FOREIGN = [
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site"},  # a sibling host of the same domain gets Strict cookies
    {"Origin": "https://evil.example"},  # a browser that sends no Sec-Fetch-* headers
]


def _writes(a: Api) -> list[tuple[str, str]]:
    routes = mounted_routes(_app(a.client))
    return sorted((m, p) for m, p in routes if p.startswith("/ui") and m not in ("GET", "HEAD"))


def _admin(callers: Callers, **headers: str) -> dict[str, Any]:
    cookie = callers.cookies["adm"]
    assert cookie is not None
    sent = {"Cookie": f"{COOKIE}={cookie}", "Content-Type": "application/json", **headers}
    return {"headers": sent, "content": json.dumps({}).encode()}


async def test_every_dashboard_write_but_the_forms_needs_the_action_header(
    setup: tuple[Api, Callers],  # noqa: F811
) -> None:
    a, callers = setup
    writes = _writes(a)
    assert set(FORMS) <= set(writes), "FORMS names a route that is gone"
    wrong = []
    for method, path in writes:
        if (method, path) in FORMS:
            continue
        answer = await a.client.request(method, _url(path), **_admin(callers))
        if answer.status_code != 403:
            wrong.append(f"{method} {path}: {answer.status_code} {answer.text[:100]!r}")
    assert wrong == [], "writes that do not need the anti-forgery header:\n" + "\n".join(wrong)


async def test_every_dashboard_write_sent_from_another_site_is_refused(
    setup: tuple[Api, Callers],  # noqa: F811
) -> None:
    a, callers = setup
    wrong = []
    # sign-out revokes the session it is given, so it must never get through: it goes last
    for method, path in sorted(_writes(a), key=lambda route: route == ("POST", "/ui/logout")):
        for foreign in FOREIGN:
            options = _admin(callers, **{"X-Coldtrace-Action": "1", **foreign})
            if path == "/ui/login":
                options = {"headers": foreign, "data": {"token": callers.tokens["adm"]}}
            answer = await a.client.request(method, _url(path), **options)
            if answer.status_code != 403:
                wrong.append(f"{method} {path} with {foreign}: {answer.status_code}")
    assert wrong == [], "writes let through from another site:\n" + "\n".join(wrong)


async def test_own_pages_still_sign_in_and_act(setup: tuple[Api, Callers]) -> None:  # noqa: F811
    """What our own pages send: ``same-origin``, or ``Origin: null`` under no-referrer."""
    a, callers = setup
    for own in (
        {"Sec-Fetch-Site": "same-origin"},
        {"Origin": "null"},
        {"Origin": str(a.client.base_url).rstrip("/")},
    ):
        a.client.cookies.clear()
        signed = await a.client.post(
            "/ui/login", headers=own, data={"token": callers.tokens["adm"]}
        )
        assert signed.status_code == 303, (own, signed.text)
        acted = await a.client.post(
            "/ui/alerts/acknowledge", json={"alert_ids": [999999]},
            headers={"X-Coldtrace-Action": "1", **own},
        )  # fmt: skip
        assert acted.status_code == 404, (own, acted.text)  # let through, no such alert
    a.client.cookies.clear()
