"""What the Dockerfiles copy and run exists, in the repository and in the runtime lock (21.4).

Without an engine the images are not built here, so each claim an image's build or start would
test is checked from the files: every COPY source exists, the lock installed is the runtime lock,
the programs CMD, ENTRYPOINT and HEALTHCHECK start are copied scripts (executable, valid shell),
coldtrace commands that parse, or Python that compiles; and every module the copied packages
import comes from the standard library, the packages themselves or the runtime lock.
"""

from __future__ import annotations

import ast
import functools
import re
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from coldtrace.cli import build_parser
from scripts import runtime_lock
from tests.deploy.dockerfiles import Dockerfile

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(ROOT.glob("deploy/**/Dockerfile*"))
BASE_IMAGE_PROGRAMS = {"python", "mosquitto", "mosquitto_sub", "sh"}
"""Programs the base images provide (python:3.11 slim, eclipse-mosquitto)."""
DEBIAN_PROGRAMS = {
    "patroni": "patroni",
    "etcd": "etcd-server",
    "haproxy": "haproxy",
    "python3": "python3",
}
"""Programs of Debian packages (the database image) and the package that has each."""


def test_there_are_dockerfiles() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in DOCKERFILES}
    assert names >= {
        "deploy/cloud/Dockerfile",
        "deploy/balena/Dockerfile.template",
        "deploy/balena/mosquitto/Dockerfile",
    }


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_copied_file_exists(path: Path) -> None:
    dockerfile = Dockerfile.read(path)
    assert dockerfile.copies
    for sources, _ in dockerfile.copies:
        for source in sources:
            assert (ROOT / source).exists(), f"{path.name}: COPY {source}: not in the repository"


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_images_install_the_runtime_lock_only(path: Path) -> None:
    dockerfile = Dockerfile.read(path)
    for requirements in dockerfile.requirement_files():
        assert requirements == "requirements-runtime.lock", f"{path.name} installs {requirements}"
        assert any(requirements in sources for sources, _ in dockerfile.copies)


@pytest.mark.parametrize("path", DOCKERFILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_what_the_image_starts_exists(path: Path) -> None:
    dockerfile = Dockerfile.read(path)
    commands = [c for c in (dockerfile.cmd, dockerfile.entrypoint, dockerfile.healthcheck) if c]
    assert commands, f"{path.name} starts nothing"
    assert dockerfile.healthcheck, f"{path.name} has no HEALTHCHECK"
    for command in commands:
        program = command[0]
        if program == "coldtrace":
            build_parser().parse_args(command[1:])  # exits (fails the test) when unknown
        elif program in ("python", "python3") and command[1:2] == ["-c"]:
            if program == "python3":
                assert _apt_installs(dockerfile, program), f"{path.name}: who provides python3?"
            compile(command[2], f"{path.name} command", "exec")
            for module in _imports(ast.parse(command[2])):
                assert _provided(module), f"{path.name}: {module} is not in the runtime lock"
        elif program.startswith("/"):
            copied = dockerfile.destination_of(program)
            assert copied is not None, f"{path.name}: {program} is not copied into the image"
            script = ROOT / copied[0]
            assert script.stat().st_mode & 0o111, f"{script} is not executable"
            check = subprocess.run(["sh", "-n", str(script)], capture_output=True, check=False)
            assert check.returncode == 0, check.stderr
        elif program in DEBIAN_PROGRAMS:
            assert _apt_installs(dockerfile, program), f"{path.name}: who provides {program}?"
        else:
            assert program in BASE_IMAGE_PROGRAMS, f"{path.name}: who provides {program}?"


def _apt_installs(dockerfile: Dockerfile, program: str) -> bool:
    """Whether the image's last stage installs the Debian package that has ``program`` (patroni
    pulls in python3)."""
    package = DEBIAN_PROGRAMS[program]
    installed = {p for run in dockerfile.last_stage_runs for p in dockerfile_apt_packages(run)}
    return package in installed or (package == "python3" and "patroni" in installed)


def dockerfile_apt_packages(run: str) -> list[str]:
    return [
        word
        for command in re.findall(r"apt-get install ([^&;]*)", run)
        for word in command.split()
        if not word.startswith("-")
    ]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="not a Debian system")
def test_the_debian_programs_are_in_the_packages_named() -> None:
    # this machine runs the same Debian 12 packages (`make` installs them for the HA tests)
    for program, package in DEBIAN_PROGRAMS.items():
        found = shutil.which(program, path="/usr/sbin:/usr/bin:/sbin:/bin")
        assert found is not None, f"{program}: apt-get install {package}"
        owner = subprocess.run(["dpkg", "-S", found], capture_output=True, text=True,
                               check=False)  # fmt: skip
        assert owner.stdout.split(":")[0] in (package, f"{package}-minimal"), owner.stdout


def _imports(tree: ast.AST) -> set[str]:
    """Top-level modules imported at run time (not those under ``if TYPE_CHECKING:``, such as
    typeshed's ``_typeshed``, which exist only for the type checker)."""
    found: set[str] = set()
    pending = [tree]
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


FIRST_PARTY = {"protocols", "edge", "cloud", "simulators", "coldtrace"}


@functools.cache
def _installed_by_runtime_lock() -> frozenset[str]:
    """Top-level modules the runtime lock's distributions provide."""
    runtime = runtime_lock.read_lock(runtime_lock.RUNTIME_LOCK)
    return frozenset(
        module
        for module, distributions in metadata.packages_distributions().items()
        if any(runtime_lock.canonical(d) in runtime for d in distributions)
    )


def _provided(module: str) -> bool:
    if module in sys.stdlib_module_names or module in FIRST_PARTY or module == "__future__":
        return True
    return module in _installed_by_runtime_lock()


def test_every_module_the_images_import_is_in_the_runtime_lock() -> None:
    missing: dict[str, set[str]] = {}
    for package in sorted(FIRST_PARTY):
        for source in (ROOT / package).rglob("*.py"):
            tree = ast.parse(source.read_text(encoding="utf-8"))
            for module in _imports(tree):
                if not _provided(module):
                    missing.setdefault(module, set()).add(source.relative_to(ROOT).as_posix())
    assert missing == {}, f"imported but not installed in the images: {missing}"


BALENA_ARCH = {
    "raspberrypi4-64": "aarch64",
    "raspberrypi5": "aarch64",
    "generic-aarch64": "aarch64",
    "jetson-orin-nano-devkit-nvme": "aarch64",
    "genericx86-64-ext": "amd64",
    "intel-nuc": "amd64",
    "raspberrypi3": "armv7hf",
    "beaglebone-black": "armv7hf",
}
"""balena device types and their architectures (balena's device type list)."""


INDEX_PLATFORMS = {
    "python@sha256:d29f48a31a8b408ed19272ca1e7b10ebae13b240a27e862d3d4217c528e2e0c3": {
        "amd64",
        "arm/v7",
        "aarch64",
        "386",
        "ppc64le",
    },
    "eclipse-mosquitto@sha256:05b5c328c11046613c4b8137b27021c15342c9fc90ae9c2f4750ed3ece5967bd": {
        "amd64",
        "arm/v6",
        "aarch64",
        "386",
        "ppc64le",
        "s390x",
    },
    "debian@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251": {
        "amd64",
        "arm/v7",
        "aarch64",
        "386",
        "ppc64le",
    },
}
"""The Linux platforms of each pinned multi-arch index, as docker-library/repo-info lists them
(``aarch64`` for Docker's arm64/v8). A new base digest needs its line here."""


@pytest.mark.parametrize(
    "name",
    [
        "deploy/balena/Dockerfile.template",
        "deploy/balena/mosquitto/Dockerfile",
        "deploy/cloud/patroni/Dockerfile",
    ],
)
def test_the_pinned_bases_exist_for_every_architecture_claimed(name: str) -> None:
    dockerfile = Dockerfile.read(ROOT / name)
    label = re.search(r'io\.coldtrace\.architectures="([^"]+)"', (ROOT / name).read_text())
    assert label is not None, f"{name} does not say which architectures it is built for"
    for base in dockerfile.bases:
        index = base.split(":")[0] + "@" + base.split("@")[1]
        assert index in INDEX_PLATFORMS, f"{name}: which platforms does {base} have?"
        missing = set(label.group(1).split()) - INDEX_PLATFORMS[index]
        assert missing == set(), f"{name}: {base} has no {missing} image"


def test_the_gateway_images_claim_the_architectures_balena_yml_lists() -> None:
    import yaml

    manifest = yaml.safe_load((ROOT / "deploy" / "balena" / "balena.yml").read_text())
    devices = manifest["data"]["supportedDeviceTypes"]
    unknown = [d for d in devices if d not in BALENA_ARCH]
    assert unknown == [], f"add the architecture of {unknown} to BALENA_ARCH"
    wanted = {BALENA_ARCH[d] for d in devices}
    for name in ("deploy/balena/Dockerfile.template", "deploy/balena/mosquitto/Dockerfile"):
        text = (ROOT / name).read_text()
        label = re.search(r'io\.coldtrace\.architectures="([^"]+)"', text)
        assert label is not None, f"{name} does not say which architectures it is built for"
        assert set(label.group(1).split()) == wanted, name
