"""``coldtrace edge run --config FILE``: the gateway agent as a process.

Reads the configuration once (refusing a wrong one with exit code 2 and a message naming each
field), builds the sources it lists, and runs the agent until SIGTERM or SIGINT, after which it
stops the sources, flushes what it can and exits 0 (within about ``stop_grace +
shutdown_flush``, whatever the outbox and the cloud do). A second signal forces the stop: the
agent is cancelled at once and exits 3; what was committed is on disk (SQLite WAL survives any
stop) and what was not committed was not acknowledged to its device. If even cancelling hangs
for ``_FORCE_EXIT_AFTER`` seconds the process exits without cleanup. Exit code 1 means the agent
itself failed (the outbox could not be written): the process supervisor restarts it on the same
outbox.

asyncua logs every PublishResult at INFO (about 110 MB a day per node at 1 s publishing), so its
loggers are set to WARNING unless ``--log-level DEBUG`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from functools import partial
from pathlib import Path

from edge.agent import SourceSpec, run_agent
from edge.config import ConfigError, EdgeConfig, load_config
from edge.outbox import OutboxError

log = logging.getLogger("edge")

_FORCE_EXIT_AFTER = 5.0
EXIT_FORCED = 3
_NOISY_LIBRARIES = ("asyncua",)


def source_specs(config: EdgeConfig) -> list[SourceSpec]:
    """One spec per configured source, each building a fresh source on every (re)start; a
    spec carries its source's settings, so a new configuration restarts only what changed."""
    from edge.sources.llrp import LlrpSource
    from edge.sources.mqtt import MqttSource
    from edge.sources.opcua import OpcUaSource

    readers = [SourceSpec(f"llrp:{r.reader_id}", partial(LlrpSource, r), r) for r in config.llrp]
    brokers = [SourceSpec(f"mqtt:{m.name}", partial(MqttSource, m), m) for m in config.mqtt]
    servers = [SourceSpec(f"opcua:{o.name}", partial(OpcUaSource, o), o) for o in config.opcua]
    return readers + brokers + servers


class _Signals:
    """First signal: graceful stop. Second: cancel the agent; if that hangs, exit at once."""

    def __init__(self, stop: asyncio.Event) -> None:
        self.stop = stop
        self.task: asyncio.Task[None] | None = None
        self.forced = False

    def __call__(self) -> None:
        if not self.stop.is_set():
            self.stop.set()
            return
        if self.forced:
            return
        self.forced = True
        log.warning("second signal: forcing the stop (committed records are safe on disk)")
        if self.task is not None:
            self.task.cancel()
        loop = asyncio.get_running_loop()
        loop.call_later(_FORCE_EXIT_AFTER, os._exit, EXIT_FORCED)


async def _main(config: EdgeConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = _Signals(stop)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signals)
    running = run_agent(config, stop, source_specs(config), build_sources=source_specs)
    signals.task = asyncio.ensure_future(running)
    try:
        await signals.task
    except asyncio.CancelledError:
        if not signals.forced:
            raise
        log.warning("stopped by force")
        return EXIT_FORCED
    except OutboxError as err:  # raised while opening the outbox, before anything runs
        log.critical("cannot open the outbox: %s", err)
        return 1
    except OSError as err:  # the health port is taken, the outbox folder cannot be made
        log.critical("cannot start: %s", err)
        return 1
    except ExceptionGroup as group:
        failures, rest = group.split(OutboxError)
        if failures is None or rest is not None:
            raise
        for failure in failures.exceptions:
            log.critical("outbox failure, agent stops: %s", failure)
        return 1
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if args.log_level != "DEBUG":
        for name in _NOISY_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        config = load_config(Path(args.config))
    except ConfigError as err:
        print(err, file=sys.stderr)
        return 2
    log.info("edge agent %s starting, outbox %s", config.gateway_id, config.outbox.path)
    return asyncio.run(_main(config))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    edge = sub.add_parser("edge", help="the gateway agent")
    edge_sub = edge.add_subparsers(dest="edge_command", required=True)
    run = edge_sub.add_parser("run", help="run the agent until SIGTERM")
    run.add_argument("--config", required=True, help="YAML file (see docs/edge-agent.md)")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    run.set_defaults(handler=_cmd_run)
