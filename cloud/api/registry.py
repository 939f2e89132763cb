"""The routers the cloud application mounts; each part adds its own here."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.api import devices, gateways, health, readings, streams
from cloud.ingest.router import router as ingest_router


def routers() -> list[APIRouter]:
    # gateway configuration before gateways: GET /v1/gateways/{id:path} would take its paths
    return [health.router, ingest_router, *gateway_config_routers(), readings.router,
            devices.router, gateways.router,
            streams.router, *ledger_routers(), *coldchain_routers(), *web_routers(),
            *masterdata_routers(), *alarm_routers(), *report_routers()]  # fmt: skip


def ledger_routers() -> list[APIRouter]:
    """Inventory ledger, receiving, recall, counts, EPCIS and users (issue 8)."""
    from cloud.api import (
        accounts,
        asns,
        counts,
        epcis,
        figures,
        ledger,
        recalls,
        signatures,
        transfers,
        users,
    )

    return [asns.router, ledger.router, counts.router, recalls.router, epcis.router, users.router,
            accounts.router, transfers.router, signatures.router, figures.router]  # fmt: skip


def report_routers() -> list[APIRouter]:
    """Reports (archived PDF/CSV) and sensor calibration (issue 17, items 4 and 5)."""
    from cloud.api import calibrations, report_links, reports

    return [reports.router, calibrations.router, report_links.build_router()]


def coldchain_routers() -> list[APIRouter]:
    """Profiles, excursions, alarm list and lot exposure (issue 7)."""
    from cloud.api import alerts, excursions, lots, profiles

    return [profiles.router, excursions.router, alerts.router, lots.router]


def masterdata_routers() -> list[APIRouter]:
    """Sites, locations, products, lots, sensor mounts and gateway administration (issue 15)."""
    from cloud.admin.router import build_admin_router
    from cloud.api import gateway_admin, masterdata, masterdata_csv

    return [masterdata.router, gateway_admin.router, masterdata_csv.router, build_admin_router()]


def alarm_routers() -> list[APIRouter]:
    """Channels, policies, rotas, acknowledgement links, suppression, closures (issue 14)."""
    from cloud.api import alarm_actions, alarm_config

    return [alarm_config.router, alarm_actions.router]


def web_routers() -> list[APIRouter]:
    """The built-in live dashboard under /ui (issue 9)."""
    from cloud.web import figures_page
    from cloud.web.router import build_router

    return [build_router(), figures_page.build_router()]


def gateway_config_routers() -> list[APIRouter]:
    """Gateway configuration from the cloud and discovery (issue 15)."""
    from cloud.api import discovery, gateway_config, gateway_heartbeat
    from cloud.web import discovery_page

    return [gateway_config.router, gateway_heartbeat.router, discovery.router,
            discovery_page.build_router()]  # fmt: skip
