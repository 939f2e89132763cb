"""Settings of the dashboard, from ``COLDTRACE_WEB_*`` environment variables or arguments."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Positive = Annotated[timedelta, Field(gt=timedelta(0))]


class WebSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COLDTRACE_WEB_", extra="forbid", frozen=True)

    poll_interval: Positive = timedelta(seconds=2)
    """How often each open event stream checks whether the data behind the page changed."""
    stream_lifetime: Positive = timedelta(seconds=15)
    """How long one event stream lasts before the browser reconnects (``retry`` 1 s). Uvicorn's
    graceful shutdown waits for open responses, so a stream must end by itself for the service
    to stop promptly while dashboards are open."""
    keepalive: Positive = timedelta(seconds=15)
    """A comment line on an idle stream, so proxies do not close it."""
    trend_window: Positive = timedelta(hours=24)
    trend_bucket: Positive = timedelta(minutes=15)
    kpi_period: Positive = timedelta(days=30)
    default_silence: Positive = timedelta(minutes=15)
    """Silence interval of a unit without a storage profile."""
    exposure_bucket: Positive = timedelta(hours=1)
    secure_cookie: bool = False
    """Always mark the session cookie ``Secure`` (it is anyway when the request came over HTTPS,
    directly or, with ``trust_forwarded_proto``, through a TLS proxy)."""
    trust_forwarded_proto: bool = False
    """Believe ``X-Forwarded-Proto: https`` from the proxy in front (set it only when a proxy
    that overwrites the header is the sole way in: any client can send it)."""
    session_idle_timeout: Positive = timedelta(minutes=30)
    """A dashboard session unused this long ends (the live event stream does not count)."""
    session_lifetime: Positive = timedelta(hours=12)
    """A dashboard session ends this long after sign-in: one shift."""
    vendor_dir: Path | None = None
    """Where the npm packages of ``cloud/web/vendor`` (uPlot) are installed; default: its
    ``node_modules`` beside the source (``make web-deps``). The image sets it (Dockerfile)."""
