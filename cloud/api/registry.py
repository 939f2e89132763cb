"""The routers the cloud application mounts; each part adds its own here."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.api import devices, health, readings
from cloud.ingest.router import router as ingest_router


def routers() -> list[APIRouter]:
    return [health.router, ingest_router, readings.router, devices.router]
