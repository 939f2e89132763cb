"""Derives requirements-runtime.lock (what the images install) from requirements.lock (dev).

The runtime lock is the closure of ``pyproject.toml``'s runtime ``dependencies`` (with their
extras) over the requirements the installed distributions declare, evaluated for this Python on
Linux like the images, each pinned at the dev lock's version: the images run exactly the
versions the tests ran, without pytest, Playwright, mypy or schemathesis.

    python scripts/runtime_lock.py           # rewrite requirements-runtime.lock
    python scripts/runtime_lock.py --check   # exit 1 when it is out of date (CI, tests)
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
DEV_LOCK = ROOT / "requirements.lock"
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"
HEADER = (
    "# Runtime dependencies of the images, derived from requirements.lock by\n"
    "# scripts/runtime_lock.py; do not edit by hand (tests/deploy/test_runtime_lock.py).\n"
)


def canonical(name: str) -> str:
    """PEP 503 normalised name.

    >>> canonical("Ruamel.YAML"), canonical("psycopg_binary")
    ('ruamel-yaml', 'psycopg-binary')
    """
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, tuple[str, str]]:
    """Canonical name → (name as written, version) of a ``name==version`` lock file."""
    pins: dict[str, tuple[str, str]] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        if not sep:
            raise ValueError(f"{path}: not pinned with ==: {line!r}")
        pins[canonical(name)] = (name.strip(), version.strip())
    return pins


def runtime_requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[Requirement]:
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return [Requirement(r) for r in data["project"]["dependencies"]]


def closure(roots: list[Requirement]) -> set[str]:
    """Canonical names of the roots and everything they need here, extras included."""
    seen: set[str] = set()
    pending: list[tuple[Requirement, frozenset[str]]] = [(r, frozenset(r.extras)) for r in roots]
    expanded: set[tuple[str, frozenset[str]]] = set()
    while pending:
        requirement, extras = pending.pop()
        name = canonical(requirement.name)
        if (name, extras) in expanded:
            continue
        expanded.add((name, extras))
        seen.add(name)
        for text in metadata.requires(requirement.name) or []:
            child = Requirement(text)
            wanted = [{"extra": e} for e in extras] or [{"extra": ""}]
            if child.marker is None or any(child.marker.evaluate(env) for env in wanted):
                pending.append((child, frozenset(child.extras)))
    return seen


def render() -> str:
    pins = read_lock(DEV_LOCK)
    names = closure(runtime_requirements())
    missing = sorted(names - set(pins))
    if missing:
        raise SystemExit(f"not pinned in requirements.lock: {', '.join(missing)}")
    lines = [f"{pins[n][0]}=={pins[n][1]}" for n in sorted(names, key=lambda n: pins[n][0].lower())]
    return HEADER + "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = RUNTIME_LOCK.read_text(encoding="utf-8") if RUNTIME_LOCK.exists() else ""
        if current != text:
            print(f"{RUNTIME_LOCK.name} is out of date: run python scripts/runtime_lock.py")
            return 1
        return 0
    RUNTIME_LOCK.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
