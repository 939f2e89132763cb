"""``coldtrace sim <simulator>``: device simulators as processes.

Each simulator adds one subcommand to the ``sim`` parser through its own ``_add_<name>``
function (``llrp`` here; others add theirs beside it).

``coldtrace sim llrp`` serves an LLRP reader at a dock door: pallets (an SSCC tag and SGTIN case
tags) pass in and out every ``--interval`` scene seconds, ``--parked`` stray tags stand nearby,
and faults can be scheduled: ``--fault drop@30`` (reset connections with a TCP RST 30 s after
start), ``--fault close@30`` (close them in order: ConnectionCloseEvent, then FIN),
``--fault silent@60+10`` (go silent for 10 s), ``--fault malformed@90`` (a frame with a bad body),
``--fault malformed-header@120`` (a broken header).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import re
import signal
from dataclasses import dataclass
from itertools import count
from typing import Literal

from simulators.llrp_reader import LlrpReaderSimulator, MalformedKind, SimulatorConfig
from simulators.scene import PalletPass, ParkedTags, Scene, dock_door, pallet, sscc18

log = logging.getLogger("simulators")

_FAULT = re.compile(
    r"^(drop|close|silent|malformed|malformed-header)@(\d+(?:\.\d+)?)(?:\+(\d+(?:\.\d+)?))?$"
)


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault scheduled ``at`` wall seconds after start (``lasts`` for silence)."""

    kind: str
    at: float
    lasts: float = 0.0


def parse_fault(text: str) -> Fault:
    """``drop@30``, ``close@30``, ``silent@60+10``, ``malformed@90``, ``malformed-header@120``.

    >>> parse_fault("silent@60+10")
    Fault(kind='silent', at=60.0, lasts=10.0)
    """
    m = _FAULT.match(text)
    if m is None:
        raise argparse.ArgumentTypeError(
            f"bad fault {text!r}: use drop@T, close@T, silent@T+D, malformed@T or "
            "malformed-header@T"
        )
    return Fault(m.group(1), float(m.group(2)), float(m.group(3) or 0))


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sim`` and its simulator subcommands."""
    sim = sub.add_parser("sim", help="device simulators (LLRP reader, ...)")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)
    _add_llrp(sim_sub)
    _add_opcua(sim_sub)
    _add_mqtt(sim_sub)
    _add_fleet(sim_sub)


def _add_fleet(sim_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from simulators.fleet_cli import add_arguments, run_from_args

    p = sim_sub.add_parser(
        "fleet", help="N gateways with M sensors each, through the cloud's HTTP ingest"
    )
    add_arguments(p)
    p.set_defaults(handler=run_from_args)


def _add_opcua(sim_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from simulators.site import add_opcua_arguments

    p = sim_sub.add_parser("opcua", help="OPC-UA server of the site's temperature probes")
    add_opcua_arguments(p)
    p.set_defaults(handler=_cmd_opcua)


def _cmd_opcua(args: argparse.Namespace) -> int:
    from simulators.opcua_server import run_from_args  # asyncua loads only when used

    return run_from_args(args)


def _add_mqtt(sim_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from simulators.site import add_mqtt_arguments

    p = sim_sub.add_parser("mqtt", help="MQTT temperature loggers (plain, ChirpStack, ...)")
    add_mqtt_arguments(p)
    p.set_defaults(handler=_cmd_mqtt)


def _cmd_mqtt(args: argparse.Namespace) -> int:
    from simulators.mqtt_loggers import run_from_args  # paho loads only when used

    return run_from_args(args)


def _add_llrp(sim_sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sim_sub.add_parser("llrp", help="an LLRP RFID reader at a dock door")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5084)
    p.add_argument("--speed", type=float, default=1.0, help="scene seconds per wall second")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--interval", type=float, default=30.0, help="scene seconds between pallets")
    p.add_argument("--cases", type=int, default=24, help="case tags per pallet")
    p.add_argument("--pallets", type=int, default=0, help="pallets to send (0 = endless)")
    p.add_argument("--parked", type=int, default=10, help="stray tags parked near the door")
    p.add_argument("--duration", type=float, default=0.0, help="wall seconds to run (0 = forever)")
    p.add_argument("--fault", type=parse_fault, action="append", default=[])
    p.add_argument(
        "--clock",
        choices=("utc", "uptime"),
        default="utc",
        help="uptime: a reader whose clock was never set (times since boot only)",
    )
    p.set_defaults(handler=_cmd_llrp)


def _cmd_llrp(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = SimulatorConfig(host=args.host, port=args.port, speed=args.speed, clock=args.clock)
    scene = dock_door(seed=args.seed)
    if args.parked:
        strays = pallet(sscc18("0614141", 999_999), "00614141000029", args.parked - 1)
        scene.add(ParkedTags(strays))
    return asyncio.run(_serve_llrp(scene, config, args))


async def _serve_llrp(scene: Scene, config: SimulatorConfig, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with LlrpReaderSimulator(scene, config) as sim:
        log.info("LLRP reader listening on %s:%d", config.host, sim.port)
        async with asyncio.TaskGroup() as tg:
            feeder = tg.create_task(_feed_pallets(sim, scene, args))
            faults = [tg.create_task(_fault(sim, f)) for f in args.fault]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(args.duration or None):
                    await stop.wait()
            for task in (feeder, *faults):
                task.cancel()
    log.info("reads %d, reports %d", sim.reads, sim.reports)
    return 0


async def _feed_pallets(sim: LlrpReaderSimulator, scene: Scene, args: argparse.Namespace) -> None:
    for n in count(1):
        if args.pallets and n > args.pallets:
            return
        tags = pallet(sscc18("0614141", n), "00614141000012", args.cases, first_serial=n * 1000)
        direction: Literal["in", "out"] = "in" if n % 2 else "out"
        scene.add(PalletPass(tags, start=sim.now() + 1.0, direction=direction))
        log.info("pallet %d (%d tags) going %s", n, len(tags), direction)
        await asyncio.sleep(args.interval / sim.config.speed)


async def _fault(sim: LlrpReaderSimulator, fault: Fault) -> None:
    await asyncio.sleep(fault.at)
    log.info("fault: %s", fault)
    if fault.kind == "drop":
        await sim.drop_connections()
    elif fault.kind == "close":
        await sim.close_connections()
    elif fault.kind == "silent":
        sim.go_silent()
        await asyncio.sleep(fault.lasts)
        sim.resume()
    else:
        kind = MalformedKind.HEADER if fault.kind == "malformed-header" else MalformedKind.BODY
        await sim.send_malformed(kind)
