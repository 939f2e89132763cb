"""The cloud service's FastAPI application, built from settings (no module-level state).

The lifespan opens the pool and, unless the settings turn them off, runs the processor and the
maintenance scheduler beside the HTTP API, under one task group: shutdown stops them, lets the
processor finish the batch in hand, and closes the pool last. The ledger signing key is read
once here and bound for every task and request (``cloud.ledger.signing``), so every ledger entry
the service writes is signed; with the scheduler, the signed chain head is exported at intervals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from cloud.admin.writes import KINDS
from cloud.alarms.channels import AppriseNotifier
from cloud.alarms.worker import AlarmWorker
from cloud.api.registry import routers
from cloud.coldchain.alerts import AlertDeliverer
from cloud.config import CloudSettings
from cloud.jobs.scheduler import running_scheduler
from cloud.ledger import signing
from cloud.ledger.anchoring import run_anchoring
from cloud.limits.budget import ByteBudget
from cloud.limits.middleware import RequestLimitMiddleware, RouteLimits
from cloud.processing.processor import Processor
from cloud.processing.registry import default_steps
from cloud.storage.database import make_pool
from cloud.web.cross_site import CrossSiteWriteGuard
from cloud.web.errors import install_error_pages
from cloud.web.headers import SecurityHeadersMiddleware

log = logging.getLogger(__name__)


def _ledger_signer(settings: CloudSettings) -> signing.LedgerSigner | None:
    signer = settings.ledger.signer()  # an unreadable key stops the start here, by name
    if signer is None:
        log.warning(
            "no ledger signing key (COLDTRACE_CLOUD_LEDGER__SIGNING_KEY_FILE): ledger entries"
            " are written unsigned, and a forged entry cannot be told from a real one"
        )
    return signer


def create_app(settings: CloudSettings) -> FastAPI:
    signer = _ledger_signer(settings)
    pool = make_pool(
        str(settings.database_url),
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        timeout=settings.pool_timeout,
        timeouts=settings.read_timeouts,
    )
    # Bulkheads: the processor and the jobs have pools of their own, with their own bounds, so
    # neither a burst of requests nor a long job can take the other's connections.
    processor_pool = make_pool(
        str(settings.database_url), min_size=1, max_size=2, timeout=settings.pool_timeout,
        timeouts=settings.processor.timeouts, name="coldtrace-processor",
    )  # fmt: skip
    jobs_pool = make_pool(
        str(settings.database_url), min_size=1, max_size=4, timeout=settings.pool_timeout,
        timeouts=settings.jobs.timeouts, name="coldtrace-jobs",
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # wait=False: the service starts (and /healthz answers 503) while the database is down.
        await pool.open(wait=False)
        if settings.run_processor:
            await processor_pool.open(wait=False)
        if settings.run_scheduler:
            await jobs_pool.open(wait=False)
        stop = asyncio.Event()
        try:
            async with AsyncExitStack() as stack, asyncio.TaskGroup() as group:
                stack.enter_context(signing.bound(signer))  # the tasks below inherit it
                if settings.run_processor:
                    processor = Processor(
                        processor_pool,
                        default_steps(),
                        settings.processor,
                        listen_url=str(settings.database_url),
                    )
                    group.create_task(processor.run(stop))
                if settings.run_scheduler:
                    group.create_task(
                        running_scheduler(jobs_pool, settings.jobs, stop, alarms=settings.alarms)
                    )
                if settings.alerts.webhook_url is not None:
                    client = await stack.enter_async_context(httpx.AsyncClient())
                    deliverer = AlertDeliverer(pool, client, settings.alerts)
                    group.create_task(deliverer.run(stop))
                if settings.alarms.run_worker:
                    notifier = AppriseNotifier(settings.alarms.send_timeout)
                    worker = AlarmWorker(pool, notifier, settings.alarms)
                    group.create_task(worker.run(stop, str(settings.database_url)))
                if settings.run_scheduler:
                    client = await stack.enter_async_context(httpx.AsyncClient())
                    anchor = settings.ledger.anchor
                    group.create_task(run_anchoring(pool, signer, anchor, client, stop))
                try:
                    yield
                finally:
                    stop.set()
        finally:
            await processor_pool.close()
            await jobs_pool.close()
            await pool.close()

    # API docs served from a package, not a CDN: /docs and /redoc work on an offline site.
    # Error pages for people under /ui; the API keeps its JSON errors.
    app = install_error_pages(FastAPIOffline(title="coldtrace", version="0.1.0", lifespan=lifespan))
    app.state.settings = settings
    app.state.pool = pool
    for router in routers():
        app.include_router(router)
    budget = ByteBudget(settings.limits.inflight_bytes, retry_after=settings.limits.retry_after)
    app.state.body_budget = budget
    _add_middleware(app, settings, budget)
    app.add_middleware(signing.BindSigner, signer=signer)  # every request signs as the service
    return app


def _add_middleware(app: FastAPI, settings: CloudSettings, budget: ByteBudget) -> None:
    app.add_middleware(
        RequestLimitMiddleware,
        limits=settings.limits,
        route_limits=route_limits(settings),
        budget=budget,
    )
    # Before any body is read: a dashboard write another site's page sent is refused at once.
    app.add_middleware(CrossSiteWriteGuard)
    # Added after those, so outside them: their refusals carry the headers too.
    app.add_middleware(SecurityHeadersMiddleware)


DOCUMENT_ROUTES = (
    ("POST", "/v1/asns"),
    ("POST", "/v1/asns/import"),
    ("POST", "/v1/counts"),
    ("POST", "/v1/shipment-loggers/import"),
)
"""Routes whose bodies may exceed the ordinary limit: each reads its body only after the role
check (``cloud.api.documents``, or ``request.body()`` in the handler), so an anonymous client
never gets them parsed. A logger's trip at 5-minute intervals for 90 days is some 700 KB."""

IMPORT_ROUTES = tuple(
    ("POST", f"{prefix}/{kind}")
    for prefix in ("/v1/import", "/ui/admin/api/import")
    for kind in KINDS
)
"""The master-data CSV imports (a distribution centre's catalogue or lots): read, like the
documents, only after the admin check, and held to ``limits.import_bytes``."""


def route_limits(settings: CloudSettings) -> RouteLimits:
    """Body limits above the ordinary one, by method and exact path; all else gets
    ``settings.limits.body_bytes``."""
    documents = dict.fromkeys(DOCUMENT_ROUTES, settings.limits.document_bytes)
    imports = dict.fromkeys(IMPORT_ROUTES, settings.limits.import_bytes)
    return {("POST", "/v1/batches"): settings.max_batch_bytes, **documents, **imports}
