"""The images' runtime lock is the dev lock's runtime part, current with pyproject (issue 21.2)."""

from __future__ import annotations

from packaging.requirements import Requirement

from scripts import runtime_lock


def test_the_runtime_lock_is_current() -> None:
    current = runtime_lock.RUNTIME_LOCK.read_text(encoding="utf-8")
    assert current == runtime_lock.render(), "run: python scripts/runtime_lock.py"


def test_every_runtime_pin_is_the_dev_lock_pin() -> None:
    dev = runtime_lock.read_lock(runtime_lock.DEV_LOCK)
    runtime = runtime_lock.read_lock(runtime_lock.RUNTIME_LOCK)
    assert runtime, "the runtime lock is empty"
    for name, (_, version) in runtime.items():
        assert name in dev, f"{name} is not in requirements.lock"
        assert dev[name][1] == version, f"{name}: {version} here, {dev[name][1]} in the dev lock"


def test_pyprojects_runtime_dependencies_are_pinned_within_their_ranges() -> None:
    runtime = runtime_lock.read_lock(runtime_lock.RUNTIME_LOCK)
    for requirement in runtime_lock.runtime_requirements():
        name = runtime_lock.canonical(requirement.name)
        assert name in runtime, f"{requirement} is not in the runtime lock"
        assert requirement.specifier.contains(runtime[name][1], prereleases=True), requirement


def test_development_tools_stay_out_of_the_images() -> None:
    runtime = runtime_lock.read_lock(runtime_lock.RUNTIME_LOCK)
    for tool in ("pytest", "playwright", "mypy", "ruff", "schemathesis", "hypothesis"):
        assert tool not in runtime


def test_extras_of_a_runtime_dependency_are_followed() -> None:
    # psycopg[binary,pool]: the extras' packages are part of the closure
    names = runtime_lock.closure([Requirement("psycopg[binary,pool]")])
    assert {"psycopg", "psycopg-binary", "psycopg-pool"} <= names
