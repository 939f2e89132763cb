"""``coldtrace sim fleet``: arguments and the run (``simulators.fleet`` does the work).

    coldtrace sim fleet --cloud http://127.0.0.1:8000 --admin-token "$ADMIN" \\
        --gateways 100 --sensors 50 --speed 60 --duration 30 --tokens fleet-tokens.json

Prints progress every 5 s on stderr and, at the end, one JSON object with what was offered,
acknowledged and how fast (stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from simulators.fleet import (
    FleetConfig,
    FleetError,
    FleetStats,
    load_tokens,
    percentile,
    register,
    run_fleet,
    save_tokens,
)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cloud", default="http://127.0.0.1:8000", help="the cloud's base URL")
    p.add_argument(
        "--admin-token",
        default=os.environ.get("COLDTRACE_ADMIN_TOKEN"),
        help="an admin's API token, to register gateways (default: $COLDTRACE_ADMIN_TOKEN)",
    )
    p.add_argument("--tokens", type=Path, help="JSON file of gateway tokens, read and updated")
    p.add_argument("--gateways", type=int, default=10)
    p.add_argument("--sensors", type=int, default=50, help="sensors per gateway")
    p.add_argument("--doors", type=int, default=2, help="sensors per gateway beside a door")
    p.add_argument("--interval", type=_positive, default=60.0, help="seconds between readings")
    p.add_argument("--upload-every", type=_positive, default=60.0, help="seconds between uploads")
    p.add_argument("--speed", type=_positive, default=60.0, help="simulated seconds per second")
    p.add_argument("--duration", type=_positive, default=30.0, help="simulated minutes to run")
    p.add_argument("--failing", type=int, default=0, help="gateways with a failing fridge")
    p.add_argument("--site", help="site the gateways are registered to")
    p.add_argument("--prefix", default="fleet", help="gateway and sensor ids start with it")
    p.add_argument("--seed", type=int, default=0)


def config_from_args(args: argparse.Namespace) -> FleetConfig:
    return FleetConfig(
        gateways=args.gateways,
        sensors=args.sensors,
        interval=timedelta(seconds=args.interval),
        upload_every=timedelta(seconds=args.upload_every),
        doors=min(args.doors, args.sensors),
        speed=args.speed,
        duration=timedelta(minutes=args.duration),
        start=datetime.now(UTC) - timedelta(minutes=args.duration),
        failing=args.failing,
        site=args.site,
        prefix=args.prefix,
        seed=args.seed,
    )


def summary(stats: FleetStats, wall_s: float) -> dict[str, object]:
    return {
        "offered": stats.offered,
        "acked": stats.acked,
        "batches": stats.batches,
        "retries": stats.retries,
        "wall_seconds": round(wall_s, 2),
        "readings_per_second": round(stats.acked / wall_s, 1) if wall_s else None,
        "ack_p50_ms": round(percentile(stats.latencies, 50) * 1000, 1),
        "ack_p95_ms": round(percentile(stats.latencies, 95) * 1000, 1),
    }


def run_from_args(args: argparse.Namespace) -> int:
    if not args.gateways > 0 or not args.sensors > 0:
        print("--gateways and --sensors must be positive", file=sys.stderr)
        return 2
    cfg = config_from_args(args)
    try:
        known = load_tokens(args.tokens)
        missing = any(cfg.gateway_id(g) not in known for g in range(cfg.gateways))
        if missing and args.admin_token is None:
            print("--admin-token (or $COLDTRACE_ADMIN_TOKEN) is needed to register gateways",
                  file=sys.stderr)  # fmt: skip
            return 2
        tokens = asyncio.run(register(cfg, args.cloud, args.admin_token or "", known))
        if args.tokens is not None:
            save_tokens(args.tokens, tokens)
        return asyncio.run(_run(cfg, args.cloud, tokens))
    except ExceptionGroup as group:
        errors = group.subgroup(FleetError)
        if errors is None:
            raise
        for err in errors.exceptions:
            print(f"coldtrace sim fleet: {err}", file=sys.stderr)
        return 1
    except (FleetError, httpx.TransportError) as err:
        print(f"coldtrace sim fleet: {err}", file=sys.stderr)
        return 1


async def _run(cfg: FleetConfig, cloud: str, tokens: dict[str, str]) -> int:
    def progress(stats: FleetStats, wall_s: float) -> None:
        print(json.dumps(summary(stats, wall_s)), file=sys.stderr, flush=True)

    started = time.monotonic()
    stats = await run_fleet(cfg, cloud, tokens, progress=progress)
    print(json.dumps(summary(stats, time.monotonic() - started)))
    return 0
