"""One authorisation matrix: every route and method of the service × every kind of caller.

The routes come from the OpenAPI document and from the application's own route table (the
dashboard under /ui and the other routes kept out of the schema), so a route added without a
row in ``MATRIX`` fails ``test_every_route_has_a_row``. Each cell is what that caller gets:

- ``ok``: let through (any answer but 401/403; 404 or 422 for the placeholder ids and empty
  bodies sent here are fine), ``401``/``403``: refused, ``303``: sent to the sign-in page (or,
  for ``POST /ui/login``, signed in), ``4xx``: a capability link with a made-up token.
- no cell may be a 5xx.

Callers (columns): ``non`` nobody; ``jnk`` a made-up token (or cookie); ``dis`` a user since
disabled; ``exp`` a token since expired; ``vwr``/``opr``/``qa``/``adm`` a user of each role;
``gw`` a gateway of site 1 and ``fgw`` a gateway registered to site 2 (``cloud gateway add
--site``), which sends a batch in the name of site 1's gateway. On /ui the users come with the
session cookie they got by signing in before they were disabled or their token expired.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

import httpx
import psycopg
import pytest
from fastapi import FastAPI

from cloud.auth.model import Role
from cloud.auth.service import add_user
from cloud.ingest.auth import add_gateway
from cloud.web.session import COOKIE
from tests.support.cloud_ingest import batch_of, gz
from tests.support.ledger_api import Api, api

pytestmark = pytest.mark.integration

MATRIX = """
method path                                            non jnk dis exp vwr opr qa  adm gw  fgw
GET    /healthz                                        ok  ok  ok  ok  ok  ok  ok  ok  ok  ok
GET    /openapi.json                                   ok  ok  ok  ok  ok  ok  ok  ok  ok  ok
GET    /docs                                           ok  ok  ok  ok  ok  ok  ok  ok  ok  ok
GET    /docs/oauth2-redirect                           ok  ok  ok  ok  ok  ok  ok  ok  ok  ok
GET    /redoc                                          ok  ok  ok  ok  ok  ok  ok  ok  ok  ok
POST   /v1/batches                                     401 401 401 401 401 401 401 401 ok  403
GET    /v1/sensors/{sensor_id}/readings                401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/locations/{location_id}/readings            401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/devices                                     401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/devices/{device_id}                         401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/gateways                                    401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/gateways/{gateway_id}                       401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/gateways                                    401 401 401 401 403 403 403 ok  401 401
POST   /v1/gateways/{gateway_id}/token                 401 401 401 401 403 403 403 ok  401 401
PUT    /v1/gateways/{gateway_id}/site                  401 401 401 401 403 403 403 ok  401 401
POST   /v1/gateways/{gateway_id}/disable               401 401 401 401 403 403 403 ok  401 401
GET    /v1/gateway/config                              401 401 401 401 401 401 401 401 ok  ok
POST   /v1/gateway/config/report                       401 401 401 401 401 401 401 401 ok  ok
POST   /v1/gateway/heartbeat                           401 401 401 401 401 401 401 401 ok  ok
GET    /v1/gateway/browse-requests                     401 401 401 401 401 401 401 401 ok  ok
POST   /v1/gateway/browse-requests/{request_id}        401 401 401 401 401 401 401 401 ok  ok
GET    /v1/gateways/{gateway_id}/config                401 401 401 401 403 403 403 ok  401 401
PUT    /v1/gateways/{gateway_id}/sources/{name}        401 401 401 401 403 403 403 ok  401 401
DELETE /v1/gateways/{gateway_id}/sources/{name}        401 401 401 401 403 403 403 ok  401 401
PUT    /v1/gateways/{gateway_id}/sources/{name}/points/{sensor_id} 401 401 401 401 403 403 403 ok  401 401
DELETE /v1/sensor-points/{sensor_id}                   401 401 401 401 403 403 403 ok  401 401
PUT    /v1/gateways/{gateway_id}/doors/{door_id}       401 401 401 401 403 403 403 ok  401 401
POST   /v1/gateways/{gateway_id}/browse                401 401 401 401 403 403 403 ok  401 401
GET    /v1/gateways/{gateway_id}/browse/{request_id}   401 401 401 401 403 403 403 ok  401 401
GET    /v1/discovery/unassigned                        401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/discovery/mount                             401 401 401 401 403 403 403 ok  401 401
GET    /ui/discovery                                   303 303 303 303 ok  ok  ok  ok  303 303
GET    /ui/discovery.js                                ok  ok  ok  ok  ok  ok  ok  ok  ok  ok
POST   /ui/discovery/mount                             401 401 401 401 403 403 403 ok  401 401
POST   /ui/discovery/browse                            401 401 401 401 403 403 403 ok  401 401
GET    /ui/discovery/browse/{gateway_id}/{request_id}  401 401 401 401 403 403 403 ok  401 401
POST   /ui/discovery/point                             401 401 401 401 403 403 403 ok  401 401
GET    /v1/dead-letters                                401 401 401 401 403 403 403 ok  401 401
GET    /v1/streams                                     401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/streams/{gateway_id}/set-aside              401 401 401 401 403 403 403 ok  401 401
POST   /v1/asns                                        401 401 401 401 403 ok  403 ok  401 401
GET    /v1/asns                                        401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/asns/import                                 401 401 401 401 403 ok  403 ok  401 401
GET    /v1/asns/{asn_id}                               401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/asns/{asn_id}/close                         401 401 401 401 403 ok  403 ok  401 401
POST   /v1/transfers                                   401 401 401 401 403 ok  403 ok  401 401
GET    /v1/transfers                                   401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/transfers/{transfer_id}                     401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/transfers/{transfer_id}/picks               401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/transfers/{transfer_id}/door-events         401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/transfers/{transfer_id}/dispatch            401 401 401 401 403 ok  403 ok  401 401
POST   /v1/transfers/{transfer_id}/loggers             401 401 401 401 403 ok  403 ok  401 401
GET    /v1/transfers/{transfer_id}/transit             401 401 401 401 ok  ok  ok  ok  401 401
PUT    /v1/shelf-life/{party_kind}/{party_id}          401 401 401 401 403 ok  403 ok  401 401
POST   /v1/shipment-loggers/import                     401 401 401 401 403 ok  403 ok  401 401
POST   /v1/trackers/{logger_id}/readings               401 401 401 401 403 ok  403 ok  401 401
POST   /v1/withdrawals                                 401 401 401 401 403 ok  403 ok  401 401
GET    /v1/sites/{site_id}/figures                     401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/sites/{site_id}/lead-times                  401 401 401 401 ok  ok  ok  ok  401 401
PUT    /v1/sites/{site_id}/lead-times/{gtin}           401 401 401 401 403 403 403 ok  401 401
DELETE /v1/sites/{site_id}/lead-times/{gtin}           401 401 401 401 403 403 403 ok  401 401
GET    /v1/sites/{site_id}/door-list                   401 401 401 401 ok  ok  ok  ok  ok  403
GET    /v1/receipts                                    401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/ledger/entries                              401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/ledger/balances                             401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/ledger/movements                            401 401 401 401 403 ok  403 ok  401 401
POST   /v1/lots/{lot_id}/disposition                   401 401 401 401 403 403 ok  ok  401 401
GET    /v1/ledger/verify                               401 401 401 401 403 403 403 ok  401 401
POST   /v1/counts                                      401 401 401 401 403 ok  403 ok  401 401
POST   /v1/counts/{count_id}/confirm                   401 401 401 401 403 ok  403 ok  401 401
GET    /v1/recalls/lot/{gtin}/{lot_number}             401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/recalls/lot/{gtin}/{lot_number}             401 401 401 401 403 403 ok  ok  401 401
GET    /v1/epcis/events                                401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/me                                          401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/users                                       401 401 401 401 403 403 403 ok  401 401
GET    /v1/users                                       401 401 401 401 403 403 403 ok  401 401
POST   /v1/users/{name}/tokens                         401 401 401 401 403 403 403 ok  401 401
POST   /v1/users/{name}/disable                        401 401 401 401 403 403 403 ok  401 401
PUT    /v1/users/{name}/role                           401 401 401 401 403 403 403 ok  401 401
GET    /v1/audit                                       401 401 401 401 403 403 ok  ok  401 401
GET    /v1/audit.csv                                   401 401 401 401 403 403 ok  ok  401 401
GET    /v1/audit.pdf                                   401 401 401 401 403 403 ok  ok  401 401
GET    /v1/users/{name}/account                        401 401 401 401 403 403 403 ok  401 401
PUT    /v1/users/{name}/password                       401 401 401 401 403 403 403 ok  401 401
PUT    /v1/users/{name}/full-name                      401 401 401 401 403 403 403 ok  401 401
POST   /v1/users/{name}/unlock                         401 401 401 401 403 403 403 ok  401 401
DELETE /v1/users/{name}/totp                           401 401 401 401 403 403 403 ok  401 401
GET    /v1/me/account                                  401 401 401 401 ok  ok  ok  ok  401 401
PUT    /v1/me/password                                 401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/me/totp                                     401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/me/totp/confirm                             401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/signatures                                  401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/signatures/{signature_id}/verify            401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/reports/unit                                401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/reports/excursion                           401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/reports/lot                                 401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/reports/mkt                                 401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/reports/calibration                         401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/report-schedules                            401 401 401 401 403 403 403 ok  401 401
GET    /v1/report-schedules                            401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/report-schedules/{schedule_id}/disable      401 401 401 401 403 403 403 ok  401 401
GET    /v1/reports                                     401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/reports/{report_id}                         401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/reports/{report_id}/content                 401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/sensors/{sensor_id}/calibrations            401 401 401 401 403 403 ok  ok  401 401
GET    /v1/sensors/{sensor_id}/calibrations            401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/calibrations                                401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/profiles                                    401 401 401 401 ok  ok  ok  ok  401 401
PUT    /v1/profiles/{profile_id}                       401 401 401 401 403 403 403 ok  401 401
GET    /v1/excursions                                  401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/excursions/{excursion_id}                   401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/alerts                                      401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/alerts/{alert_id}/acknowledge               401 401 401 401 403 ok  ok  ok  401 401
GET    /v1/lots/{lot_id}/exposure                      401 401 401 401 ok  ok  ok  ok  401 401
PUT    /v1/sites/{site_id}                             401 401 401 401 403 403 403 ok  401 401
GET    /v1/sites                                       401 401 401 401 ok  ok  ok  ok  401 401
PUT    /v1/locations/{location_id}                     401 401 401 401 403 403 403 ok  401 401
GET    /v1/locations                                   401 401 401 401 ok  ok  ok  ok  401 401
PUT    /v1/products/{gtin}                             401 401 401 401 403 403 403 ok  401 401
GET    /v1/products                                    401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/lots                                        401 401 401 401 403 403 403 ok  401 401
GET    /v1/lots                                        401 401 401 401 ok  ok  ok  ok  401 401
PUT    /v1/sensors/{sensor_id}                         401 401 401 401 403 403 403 ok  401 401
GET    /v1/sensors                                     401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/sensors/{sensor_id}/mounts                  401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/export/{kind}                               401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/import/{kind}                               401 401 401 401 403 403 403 ok  401 401
GET    /v1/sites/{site_id}/alarm-channels              401 401 401 401 403 403 403 ok  401 401
PUT    /v1/sites/{site_id}/alarm-channels/{name}       401 401 401 401 403 403 403 ok  401 401
DELETE /v1/sites/{site_id}/alarm-channels/{name}       401 401 401 401 403 403 403 ok  401 401
POST   /v1/sites/{site_id}/alarm-channels/{name}/test  401 401 401 401 403 403 403 ok  401 401
GET    /v1/sites/{site_id}/alarm-contacts              401 401 401 401 403 403 403 ok  401 401
PUT    /v1/sites/{site_id}/alarm-contacts/{name}       401 401 401 401 403 403 403 ok  401 401
DELETE /v1/sites/{site_id}/alarm-contacts/{name}       401 401 401 401 403 403 403 ok  401 401
GET    /v1/sites/{site_id}/alarm-groups                401 401 401 401 403 403 403 ok  401 401
PUT    /v1/sites/{site_id}/alarm-groups/{name}         401 401 401 401 403 403 403 ok  401 401
DELETE /v1/sites/{site_id}/alarm-groups/{name}         401 401 401 401 403 403 403 ok  401 401
GET    /v1/sites/{site_id}/on-call-rotas               401 401 401 401 403 403 403 ok  401 401
PUT    /v1/sites/{site_id}/on-call-rotas/{name}        401 401 401 401 403 403 403 ok  401 401
DELETE /v1/sites/{site_id}/on-call-rotas/{name}        401 401 401 401 403 403 403 ok  401 401
GET    /v1/sites/{site_id}/alarm-policies              401 401 401 401 403 403 403 ok  401 401
PUT    /v1/sites/{site_id}/alarm-policies/{name}       401 401 401 401 403 403 403 ok  401 401
DELETE /v1/sites/{site_id}/alarm-policies/{name}       401 401 401 401 403 403 403 ok  401 401
GET    /v1/sites/{site_id}/on-call                     401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/alarms                                      401 401 401 401 ok  ok  ok  ok  401 401
GET    /v1/alarms/{alert_id}                           401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/alarms/{alert_id}/acknowledge               401 401 401 401 403 ok  ok  ok  401 401
GET    /alarms/ack/{token}                             4xx 4xx 4xx 4xx 4xx 4xx 4xx 4xx 4xx 4xx
POST   /alarms/ack/{token}                             4xx 4xx 4xx 4xx 4xx 4xx 4xx 4xx 4xx 4xx
POST   /v1/locations/{location_id}/suppressions        401 401 401 401 403 403 ok  ok  401 401
GET    /v1/suppressions                                401 401 401 401 ok  ok  ok  ok  401 401
POST   /v1/suppressions/{window_id}/cancel             401 401 401 401 403 403 ok  ok  401 401
POST   /v1/excursions/{excursion_id}/closure           401 401 401 401 403 403 ok  ok  401 401
GET    /v1/excursions/{excursion_id}/closure           401 401 401 401 ok  ok  ok  ok  401 401
GET    /ui                                             303 303 303 303 ok  ok  ok  ok  303 303
GET    /ui/lots/{lot_id}                               303 303 303 303 ok  ok  ok  ok  303 303
GET    /ui/units/{location_id}                         303 303 303 303 ok  ok  ok  ok  303 303
GET    /ui/history                                     401 401 401 401 ok  ok  ok  ok  401 401
GET    /ui/history.csv                                 401 401 401 401 ok  ok  ok  ok  401 401
GET    /ui/reports/unit                                401 401 401 401 ok  ok  ok  ok  401 401
GET    /ui/reports/lot/{lot_id}                        401 401 401 401 ok  ok  ok  ok  401 401
GET    /ui/reports/excursion/{excursion_id}            401 401 401 401 ok  ok  ok  ok  401 401
GET    /ui/events                                      401 401 401 401 ok  ok  ok  ok  401 401
POST   /ui/alerts/acknowledge                          401 401 401 401 403 ok  ok  ok  401 401
POST   /ui/lots/{lot_id}/disposition                   401 401 401 401 403 403 ok  ok  401 401
POST   /ui/excursions/{excursion_id}/closure           401 401 401 401 403 403 ok  ok  401 401
POST   /ui/admin/api/gateways/{gateway_id}/site        401 401 401 401 403 403 403 ok  401 401
POST   /ui/admin/api/readers                           401 401 401 401 403 403 403 ok  401 401
POST   /ui/admin/api/doors                             401 401 401 401 403 403 403 ok  401 401
GET    /ui/figures                                     303 303 303 303 ok  ok  ok  ok  303 303
GET    /ui/audit                                       303 303 303 303 403 403 ok  ok  303 303
GET    /ui/audit.csv                                   401 401 401 401 403 403 ok  ok  401 401
GET    /ui/audit.pdf                                   401 401 401 401 403 403 ok  ok  401 401
GET    /ui/account                                     303 303 303 303 ok  ok  ok  ok  303 303
POST   /ui/account/password                            401 401 401 401 ok  ok  ok  ok  401 401
POST   /ui/account/totp                                401 401 401 401 ok  ok  ok  ok  401 401
POST   /ui/account/totp/confirm                        401 401 401 401 ok  ok  ok  ok  401 401
GET    /ui/admin                                       303 303 303 303 ok  ok  ok  ok  303 303
GET    /ui/admin/{section}                             303 303 303 303 ok  ok  ok  ok  303 303
GET    /ui/admin/export/{kind}                         401 401 401 401 ok  ok  ok  ok  401 401
GET    /ui/admin/static/{name}                         ok  ok  ok  ok  ok  ok  ok  ok  ok  ok
POST   /ui/admin/api/save/{kind}                       401 401 401 401 403 403 403 ok  401 401
POST   /ui/admin/api/import/{kind}                     401 401 401 401 403 403 403 ok  401 401
POST   /ui/admin/api/gateways                          401 401 401 401 403 403 403 ok  401 401
POST   /ui/admin/api/gateways/{gateway_id}/rotate      401 401 401 401 403 403 403 ok  401 401
POST   /ui/admin/api/gateways/{gateway_id}/disable     401 401 401 401 403 403 403 ok  401 401
POST   /ui/admin/api/streams/{gateway_id}/set-aside   401 401 401 401 403 403 403 ok  401 401
POST   /ui/admin/api/users                             401 401 401 401 403 403 403 ok  401 401
POST   /ui/admin/api/users/{name}/role                 401 401 401 401 403 403 403 ok  401 401
POST   /ui/admin/api/users/{name}/disable              401 401 401 401 403 403 403 ok  401 401
GET    /ui/login                                       ok  ok  ok  ok  ok  ok  ok  ok  ok  ok
POST   /ui/login                                       ok  401 401 401 303 303 303 303 401 401
GET    /ui/login/oidc                                  ok  ok  ok  ok  ok  ok  ok  ok  ok  ok
GET    /ui/login/oidc/callback                         ok  ok  ok  ok  ok  ok  ok  ok  ok  ok
GET    /ui/static/{name}                               ok  ok  ok  ok  ok  ok  ok  ok  ok  ok
GET    /ui/vendor/{name}                               ok  ok  ok  ok  ok  ok  ok  ok  ok  ok
POST   /ui/logout                                      ok  ok  ok  ok  ok  ok  ok  ok  ok  ok
"""

CALLERS = ["non", "jnk", "dis", "exp", "vwr", "opr", "qa", "adm", "gw", "fgw"]
ROLES = {"vwr": Role.VIEWER, "opr": Role.OPERATOR, "qa": Role.QA, "adm": Role.ADMIN}
PLACEHOLDERS = {
    "kind": "site", "section": "sites",
    "sensor_id": "s-none", "location_id": "fridge-1", "device_id": "d-none",
    "gateway_id": "gw-none", "asn_id": "999", "lot_id": "999", "count_id": "999",
    "gtin": "00614141123452", "lot_number": "L-none", "name": "nobody", "profile_id": "p-none",
    "excursion_id": "999", "alert_id": "999", "site_id": "site-1", "window_id": "999",
    "signature_id": "999",
    "door_id": "door-none", "request_id": "999",
    "report_id": "999",
    "schedule_id": "999",
    "token": "not-a-link-token", "transfer_id": "999", "party_kind": "site",
    "party_id": "site-1", "logger_id": "TT-none",
}  # fmt: skip
STATIC_FILE = "app.js"


def rows() -> dict[tuple[str, str], dict[str, str]]:
    table: dict[tuple[str, str], dict[str, str]] = {}
    lines = [line for line in MATRIX.strip().splitlines() if line.strip()]
    assert lines[0].split() == ["method", "path", *CALLERS]
    for line in lines[1:]:
        method, path, *cells = line.split()
        assert len(cells) == len(CALLERS), line
        assert (method, path) not in table, f"two rows for {method} {path}"
        table[method, path] = dict(zip(CALLERS, cells, strict=True))
    return table


def mounted_routes(app: FastAPI) -> set[tuple[str, str]]:
    """Every (method, path) the application answers: the OpenAPI document, plus the routes it
    leaves out (the dashboard, capability links, the docs themselves)."""
    found = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
    }

    def walk(routes: list[Any]) -> Iterator[tuple[str, str]]:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                yield from walk(inner.routes)
                continue
            for method in getattr(route, "methods", None) or ():
                if method != "HEAD":
                    yield method, route.path.replace(":path}", "}")

    return found | set(walk(app.routes))


@dataclass
class Callers:
    bearer: dict[str, dict[str, str]]
    """Authorization headers per caller (empty for nobody)."""
    cookies: dict[str, str | None]
    """The /ui session cookie per caller (None: no cookie)."""
    tokens: dict[str, str]
    """The token each caller would sign in with (POST /ui/login)."""


async def _sign_in(client: httpx.AsyncClient, token: str) -> str:
    client.cookies.clear()
    answer = await client.post("/ui/login", data={"token": token})
    assert answer.status_code == 303, answer.text
    session = client.cookies[COOKIE]
    client.cookies.clear()
    return session


@pytest.fixture
async def setup(timescale_url: str) -> AsyncIterator[tuple[Api, Callers]]:
    async with api(timescale_url) as a:
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            await conn.execute("INSERT INTO sites (site_id, name) VALUES ('site-2', 'Site two')")
            gw = await add_gateway(conn, "gw-1", "site-1")
            fgw = await add_gateway(conn, "gw-2", "site-2")
            gone = await add_user(conn, "gone-1", Role.OPERATOR)
            stale = await add_user(conn, "stale-1", Role.ADMIN)
            await conn.commit()
        tokens = {
            "non": "", "jnk": "ct_made-up-token", "dis": gone, "exp": stale, "gw": gw,
            "fgw": fgw, **{k: a.tokens[r] for k, r in ROLES.items()},
        }  # fmt: skip
        cookies: dict[str, str | None] = {"non": None, "jnk": "made-up-session", "gw": None,
                                          "fgw": None}  # fmt: skip
        for caller in ("dis", "exp", *ROLES):
            cookies[caller] = await _sign_in(a.client, tokens[caller])
        async with await psycopg.AsyncConnection.connect(timescale_url) as conn:
            await conn.execute("UPDATE users SET disabled_at = now() WHERE name = 'gone-1'")
            await conn.execute(
                "UPDATE api_tokens SET expires_at = now() - interval '1 second'"
                " WHERE user_id = (SELECT user_id FROM users WHERE name = 'stale-1')"
            )
            await conn.commit()
        bearer = {c: ({"Authorization": f"Bearer {t}"} if t else {}) for c, t in tokens.items()}
        yield a, Callers(bearer, cookies, tokens)


def _app(client: httpx.AsyncClient) -> FastAPI:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    app = transport.app
    assert isinstance(app, FastAPI)
    return app


async def test_every_route_has_a_row(setup: tuple[Api, Callers]) -> None:
    a, _ = setup
    missing = sorted(mounted_routes(_app(a.client)) - set(rows()))
    assert missing == [], f"routes without a row in MATRIX (add one): {missing}"


def _url(path: str) -> str:
    if path == "/ui/static/{name}":
        return f"/ui/static/{STATIC_FILE}"
    for name, value in PLACEHOLDERS.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no placeholder for {path}"
    return path


def _request(method: str, path: str, caller: str, callers: Callers) -> dict[str, Any]:
    """The request a caller makes: its credentials and a minimal body."""
    headers = dict(callers.bearer[caller])
    options: dict[str, Any] = {"headers": headers}
    if path.startswith("/ui"):
        headers.clear()
        cookie = callers.cookies[caller]
        if cookie is not None:
            headers["Cookie"] = f"{COOKIE}={cookie}"
        headers["X-Coldtrace-Action"] = "1"  # so that a 403 is about the role, not the header
    if (method, path) == ("POST", "/ui/login"):
        options["data"] = {"token": callers.tokens[caller]} if callers.tokens[caller] else {}
    elif path == "/v1/batches":
        # in the name of site 1's gateway, whoever sends it
        batch = batch_of("gw-1", uuid4(), 1, 2)
        options["content"] = gz(batch)
        headers |= {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    elif path.startswith("/alarms/ack/"):
        options["data"] = {}
    elif method in ("POST", "PUT"):
        options["content"] = json.dumps({}).encode()
        headers["Content-Type"] = "application/json"
    return options


def _outcome(expected: str, status: int, location: str | None) -> bool:
    if expected == "ok":
        return status not in (401, 403)
    if expected == "4xx":
        return 400 <= status < 500
    if expected == "303":
        return status == 303 and location is not None
    return status == int(expected)


async def test_the_matrix_holds(setup: tuple[Api, Callers]) -> None:
    a, callers = setup
    client = a.client
    table = rows()
    present = mounted_routes(_app(client))
    wrong: list[str] = []
    # sign-out revokes the session it is given: it goes last
    order = sorted(table, key=lambda key: key == ("POST", "/ui/logout"))

    async def check(method: str, path: str, caller: str) -> None:
        expected = table[method, path][caller]
        options = _request(method, path, caller, callers)
        answer = await client.request(method, _url(path), **options)
        if answer.status_code >= 500 or not _outcome(
            expected, answer.status_code, answer.headers.get("location")
        ):
            wrong.append(
                f"{method} {path} as {caller}: expected {expected}, got {answer.status_code}"
                f" {answer.text[:120]!r}"
            )

    client.cookies.clear()  # cookies go as headers, never through the jar
    for method, path in order:
        if (method, path) in present:  # else: a row for a route not mounted here
            async with asyncio.TaskGroup() as group:  # the callers of one route at once
                for caller in CALLERS:
                    group.create_task(check(method, path, caller))
    assert wrong == [], "\n".join(wrong)


async def test_a_route_added_without_a_row_is_noticed(setup: tuple[Api, Callers]) -> None:
    a, _ = setup
    app = _app(a.client)

    async def new_thing() -> dict[str, str]:
        return {}

    app.add_api_route("/v1/new-thing", new_thing, methods=["GET"])
    app.router.add_api_route("/ui/new-page", new_thing, methods=["POST"], include_in_schema=False)
    unlisted = mounted_routes(app) - set(rows())
    assert unlisted == {("GET", "/v1/new-thing"), ("POST", "/ui/new-page")}
