"""The Grafana provisioning files, read as Grafana reads them, inside deploy/cloud's container.

Grafana puts every string of a provisioning file through ``os.ExpandEnv`` after parsing the
YAML (pkg/services/provisioning/values), first splitting on ``$$`` (a literal ``$``). Go's
expansion knows only ``$VAR`` and ``${VAR}``: ``${VAR:-default}`` is a variable literally named
``VAR:-default``, so it expands to "" — the bug this test guards against. ``go_expand`` below
follows Go's ``os.Expand`` rules (special one-character names, ``${}`` eaten, a lone ``$`` kept)
and is checked against the vectors of Go's own ``os/env_test.go``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_compose_files import resolved

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "dashboards" / "grafana"
COMPOSE = ROOT / "deploy" / "cloud" / "docker-compose.yml"
PROVISIONING = "/etc/grafana/provisioning"  # the grafana image's GF_PATHS_PROVISIONING
MINIMUM_GRAFANA = (10, 2, 3)  # first release with plugin id grafana-postgresql-datasource

_SPECIAL = set("*#$@!?-0123456789")


def _is_alnum(c: str) -> bool:
    return c == "_" or ("0" <= c <= "9") or ("a" <= c <= "z") or ("A" <= c <= "Z")


def _shell_name(s: str) -> tuple[str, int]:
    """Go's getShellName: the variable name after a ``$`` and how many bytes it used."""
    if s[0] == "{":
        if len(s) > 2 and s[1] in _SPECIAL and s[2] == "}":
            return s[1:2], 3
        for i in range(1, len(s)):
            if s[i] == "}":
                return ("", 2) if i == 1 else (s[1:i], i + 1)  # "${}" is bad syntax
        return "", 1  # no closing brace: bad syntax, "${" is eaten
    if s[0] in _SPECIAL:
        return s[0:1], 1
    i = 0
    while i < len(s) and _is_alnum(s[i]):
        i += 1
    return s[:i], i


def go_expand(s: str, mapping: Callable[[str], str]) -> str:
    """Go's os.Expand."""
    out: list[str] = []
    start = 0
    j = 0
    while j < len(s):
        if s[j] == "$" and j + 1 < len(s):
            out.append(s[start:j])
            name, width = _shell_name(s[j + 1 :])
            if name:
                out.append(mapping(name))
            elif width == 0:
                out.append("$")  # "$" not followed by a name stays
            j += width
            start = j + 1
        j += 1
    return "".join(out) + s[start:]


def grafana_expand(s: str, env: dict[str, str]) -> str:
    """Grafana's provisioning interpolation: "$$" is a literal "$", the rest os.ExpandEnv."""
    return "$".join(go_expand(part, lambda name: env.get(name, "")) for part in s.split("$$"))


GO_VECTORS = [  # from Go's src/os/env_test.go (expandTests)
    ("", ""),
    ("$*", "all the args"),
    ("$$", "PID"),
    ("${*}", "all the args"),
    ("$1", "ARGUMENT1"),
    ("${1}", "ARGUMENT1"),
    ("now is the time", "now is the time"),
    ("$HOME", "/usr/gopher"),
    ("$home_1", "/usr/foo"),
    ("${HOME}", "/usr/gopher"),
    ("${H}OME", "(Value of H)OME"),
    ("A$$$#$1$H$home_1*B", "APIDNARGSARGUMENT1(Value of H)/usr/foo*B"),
    ("start$+middle$^end$", "start$+middle$^end$"),
    ("mixed$|bag$$$", "mixed$|bagPID$"),
    ("$", "$"),
    ("$}", "$}"),
    ("${", ""),
    ("${}", ""),
]


def _go_test_mapping(name: str) -> str:
    return {
        "*": "all the args", "#": "NARGS", "$": "PID", "1": "ARGUMENT1",
        "HOME": "/usr/gopher", "H": "(Value of H)", "home_1": "/usr/foo",
    }.get(name, "")  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), GO_VECTORS)
def test_expansion_follows_go(text: str, expected: str) -> None:
    assert go_expand(text, _go_test_mapping) == expected


def test_shell_style_defaults_expand_to_nothing_in_grafana() -> None:
    env = {"HOST": "db:5432"}
    assert grafana_expand("${HOST:-db:5432}", env) == ""
    assert grafana_expand("$HOST", env) == grafana_expand("${HOST}", env) == "db:5432"
    assert grafana_expand("pa$$word", {}) == "pa$word"


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


@pytest.fixture(scope="module")
def grafana_service() -> dict[str, Any]:
    service: dict[str, Any] = resolved(COMPOSE)["services"]["grafana"]
    return service


def _mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container target -> host source of the service's bind mounts."""
    return {v["target"]: Path(v["source"]) for v in service["volumes"] if v["type"] == "bind"}


def test_datasource_fields_are_all_set_in_the_grafana_container(
    grafana_service: dict[str, Any],
) -> None:
    env = {k: str(v) for k, v in grafana_service["environment"].items()}
    mounts = _mounts(grafana_service)
    folder = mounts[f"{PROVISIONING}/datasources"]
    assert folder.resolve() == (GRAFANA / "provisioning" / "datasources").resolve()
    raw = yaml.safe_load((folder / "coldtrace.yml").read_text(encoding="utf-8"))
    used: set[str] = set()
    for where, value in _strings(raw):
        assert not re.search(r"\$\{[^}]*[:?+-][^}]*\}", value), f"{where}: shell syntax {value}"
        used |= set(re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", value))
        expanded = grafana_expand(value, env)
        assert expanded.strip(), f"{where} ({value}) expands to nothing in the container"
        assert "$" not in expanded, where
    assert used, "the datasource takes its connection from the environment"
    assert used <= env.keys(), f"not set for grafana: {used - env.keys()}"
    ds = yaml.safe_load(grafana_expand(yaml.safe_dump(raw), env))["datasources"][0]
    assert ds["user"] == "coldtrace_readonly"  # docs/security.md: SELECT only
    assert re.fullmatch(r"[a-z0-9.-]+:\d+", ds["url"]), ds["url"]
    assert ds["url"].split(":")[0] in resolved(COMPOSE)["services"]  # the compose db service
    assert ds["jsonData"]["database"] == "coldtrace"
    assert ds["jsonData"]["sslmode"] in {"disable", "require", "verify-ca", "verify-full"}
    assert ds["secureJsonData"]["password"] == env["COLDTRACE_GRAFANA_DB_PASSWORD"]


def test_dashboards_provider_reads_the_mounted_dashboards(
    grafana_service: dict[str, Any],
) -> None:
    mounts = _mounts(grafana_service)
    assert "GF_PATHS_PROVISIONING" not in grafana_service["environment"]
    providers = mounts[f"{PROVISIONING}/dashboards"]
    assert providers.resolve() == (GRAFANA / "provisioning" / "dashboards").resolve()
    config = yaml.safe_load((providers / "coldtrace.yml").read_text(encoding="utf-8"))
    [provider] = config["providers"]
    assert provider["type"] == "file"
    path = grafana_expand(provider["options"]["path"], grafana_service["environment"])
    assert path in mounts, f"provider reads {path}, compose mounts {sorted(mounts)}"
    assert mounts[path].resolve() == (GRAFANA / "dashboards").resolve()
    assert sorted(mounts[path].glob("*.json")), "no dashboards where the provider reads"


def test_the_image_is_new_enough_for_the_panels(grafana_service: dict[str, Any]) -> None:
    match = re.search(r":(\d+)\.(\d+)\.(\d+)", grafana_service["image"])
    assert match, grafana_service["image"]
    assert tuple(int(g) for g in match.groups()) >= MINIMUM_GRAFANA
