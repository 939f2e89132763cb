"""The routers the cloud application mounts; each part adds its own here."""

from __future__ import annotations

from fastapi import APIRouter

from cloud.api import health


def routers() -> list[APIRouter]:
    return [health.router]
