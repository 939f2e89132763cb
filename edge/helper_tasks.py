"""The agent's helper loops (door list, remote configuration, browse requests, notifications)
restarted after an unexpected error, as the supervisor restarts a source.

Each loop already turns the failures it knows (an unreachable cloud, a refused document, a full
disk) into a log line and goes on. Anything else (a bug, an answer nobody foresaw) used to end
its task silently: the gateway kept an old door list or configuration and nobody was told. Now
it is logged with its traceback and the loop starts again after a backoff.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable

from edge.backoff import backoff_delay
from edge.clock import Clock
from edge.config import SupervisionConfig

log = logging.getLogger(__name__)


async def kept_running(
    name: str,
    run: Callable[[], Awaitable[None]],
    *,
    clock: Clock,
    supervision: SupervisionConfig,
    rng: random.Random | None = None,
) -> None:
    """Runs ``run`` until it returns, again after each unexpected error (cancellation ends it)."""
    rng = rng or random.Random()  # noqa: S311 - jitter, not security
    failures = 0
    while True:
        started = clock.monotonic()
        try:
            await run()
        except Exception:  # isolated like a source: a helper's bug must not end it for good
            if clock.monotonic() - started >= supervision.restart_reset_after.total_seconds():
                failures = 0
            failures += 1
            delay = backoff_delay(
                failures - 1, supervision.restart_initial, supervision.restart_max, rng
            )
            log.exception("%s crashed; restarting in %.1f s", name, delay)
            await clock.sleep(delay)
        else:
            return
