"""A private replicated PostgreSQL for tests and trials: etcd and a two-member Patroni cluster.

``coldtrace services start --ha`` runs one etcd and two Patroni members on free loopback ports,
under the project's data folder (or a folder the service users can reach), as the ``etcd`` and
``postgres`` users when run as root. Both members use the Debian PostgreSQL binaries with
TimescaleDB preloaded, and the same Patroni file as production
(``deploy/cloud/patroni/patroni.yml``, synchronous mode); what differs per member is passed as
Patroni's own ``PATRONI_*`` variables. The cloud reaches the cluster with a libpq multi-host URL
and ``target_session_attrs=read-write``, so it always lands on the current primary.

Errors: ``devservices.ServiceError`` when something cannot be set up or does not come up.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coldtrace.devservices import (
    REPO_ROOT,
    ServiceError,
    _chown,
    _ensure_timescaledb,
    _is_root,
    _pg_bindir,
    _pid_alive,
    _service_dir,
    _wait_port,
    free_port,
)

PATRONI_CONFIG = REPO_ROOT / "deploy" / "cloud" / "patroni" / "patroni.yml"
MEMBERS = ("pg0", "pg1")


def _binary(name: str) -> str:
    found = shutil.which(name) or (
        f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None
    )
    if found is None:
        raise ServiceError(f"{name} not found: apt-get install patroni etcd-server")
    return found


def _user_ids(user: str | None) -> dict[str, Any]:
    if user is None or not _is_root():
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
"""The services this process started, kept so they are waited for rather than left as zombies
(and not collected while still running)."""


def _spawn(cmd: list[str], env: dict[str, str], log: Path, user: str | None) -> int:
    """Starts a long-running service in its own session (it outlives this process)."""
    with log.open("ab") as out:
        proc = subprocess.Popen(  # noqa: S603
            cmd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=str(log.parent),
            umask=0o077,  # PostgreSQL refuses a data directory others can read
            **_user_ids(user),
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def _alive(pid: int | None) -> bool:
    """Whether the process runs (``devservices._pid_alive`` takes 0 for our own group)."""
    return pid is not None and pid > 0 and _pid_alive(pid)


def _stop_pid(pid: int | None, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    if pid is None or not _alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while _pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        while _pid_alive(pid):
            _reap(pid)
            time.sleep(0.05)


def _reap(pid: int) -> None:
    """Collects our own child's exit status, so a stopped child does not stay a zombie."""
    child = _CHILDREN.get(pid)
    if child is not None and child.poll() is not None:
        del _CHILDREN[pid]


@dataclass(frozen=True)
class Member:
    name: str
    port: int
    api_port: int
    directory: Path

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"


@dataclass
class HaCluster:
    """The private etcd + Patroni cluster; its state (ports, passwords, pids) in service.json."""

    directory: Path
    user: str | None
    etcd_user: str | None

    @classmethod
    def default(cls) -> HaCluster:
        user = "postgres" if _is_root() else None
        etcd_user: str | None = None
        if _is_root():
            try:
                pwd.getpwnam("etcd")
                etcd_user = "etcd"
            except KeyError:
                etcd_user = user
        return cls(_service_dir("postgres-ha", user), user, etcd_user)

    @property
    def state_file(self) -> Path:
        return self.directory / "service.json"

    def state(self) -> dict[str, Any]:
        if not self.state_file.exists():
            ports = {"etcd": free_port(), "etcd_peer": free_port()}
            for name in MEMBERS:
                ports[name] = free_port()
                ports[f"{name}_api"] = free_port()
            state = {
                "ports": ports,
                "password": secrets.token_urlsafe(18),
                "replication_password": secrets.token_urlsafe(18),
                "pids": {},
            }
            self._save(state)
        loaded: dict[str, Any] = json.loads(self.state_file.read_text())
        return loaded

    def _save(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state, indent=2))
        self.state_file.chmod(0o600)

    def members(self) -> list[Member]:
        ports = self.state()["ports"]
        return [
            Member(name, ports[name], ports[f"{name}_api"], self.directory / name)
            for name in MEMBERS
        ]

    def url(self, database: str = "postgres") -> str:
        """The multi-host URL: whichever member is primary takes the writes."""
        password = self.state()["password"]
        hosts = ",".join(f"127.0.0.1:{m.port}" for m in self.members())
        return (
            f"postgresql://postgres:{password}@{hosts}/{database}"
            "?target_session_attrs=read-write&connect_timeout=5"
        )

    def member_url(self, member: Member, database: str = "postgres") -> str:
        password = self.state()["password"]
        return f"postgresql://postgres:{password}@127.0.0.1:{member.port}/{database}"

    # --- etcd ---------------------------------------------------------------------------------

    def _etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.state()['ports']['etcd']}"

    def _start_etcd(self, state: dict[str, Any]) -> None:
        if _alive(state["pids"].get("etcd")) and self._etcd_healthy():
            return
        data = self.directory / "etcd"
        data.mkdir(exist_ok=True)
        _chown(data, self.etcd_user)
        client, peer = state["ports"]["etcd"], state["ports"]["etcd_peer"]
        cmd = [
            _binary("etcd"),
            "--name=coldtrace",
            f"--data-dir={data}",
            f"--listen-client-urls=http://127.0.0.1:{client}",
            f"--advertise-client-urls=http://127.0.0.1:{client}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=coldtrace=http://127.0.0.1:{peer}",
            "--log-level=warn",
        ]
        env = {"PATH": "/usr/bin:/bin", "ETCD_UNSUPPORTED_ARCH": ""}
        log = self.directory / "etcd.log"
        log.touch()
        _chown(log, self.etcd_user)
        state["pids"]["etcd"] = _spawn(cmd, env, log, self.etcd_user)
        self._save(state)
        _wait_port(client, 30)
        self._wait(self._etcd_healthy, 30, "etcd did not become healthy")

    @staticmethod
    def _own(path: Path, user: str | None) -> None:
        """Gives ``path`` alone (not what is inside) to ``user``."""
        if user is not None and _is_root():
            entry = pwd.getpwnam(user)
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def _etcd_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self._etcd_url()}/health", timeout=2) as resp:  # noqa: S310
                return bool(json.loads(resp.read()).get("health") == "true")
        except (OSError, ValueError):
            return False

    # --- Patroni ------------------------------------------------------------------------------

    def _member_env(self, member: Member, state: dict[str, Any]) -> dict[str, str]:
        pg = f"127.0.0.1:{member.port}"
        api = f"127.0.0.1:{member.api_port}"
        return {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": str(member.directory),
            "PATRONI_NAME": member.name,
            "PATRONI_RESTAPI_LISTEN": api,
            "PATRONI_RESTAPI_CONNECT_ADDRESS": api,
            "PATRONI_ETCD3_HOSTS": f"127.0.0.1:{state['ports']['etcd']}",
            "PATRONI_POSTGRESQL_LISTEN": pg,
            "PATRONI_POSTGRESQL_CONNECT_ADDRESS": pg,
            "PATRONI_POSTGRESQL_DATA_DIR": str(member.data_dir),
            "PATRONI_POSTGRESQL_BIN_DIR": str(_pg_bindir()),
            "PATRONI_POSTGRESQL_PGPASS": str(member.directory / "pgpass"),
            "PATRONI_SUPERUSER_USERNAME": "postgres",
            "PATRONI_SUPERUSER_PASSWORD": state["password"],
            "PATRONI_REPLICATION_USERNAME": "replicator",
            "PATRONI_REPLICATION_PASSWORD": state["replication_password"],
            "PATRONI_REWIND_USERNAME": "postgres",
            "PATRONI_REWIND_PASSWORD": state["password"],
            "PATRONI_LOG_LEVEL": "INFO",
        }

    def _start_member(self, member: Member, state: dict[str, Any]) -> None:
        if _alive(state["pids"].get(member.name)):
            return
        member.directory.mkdir(exist_ok=True)
        member.directory.chmod(0o700)
        log = member.directory / "patroni.log"
        log.touch()
        _chown(member.directory, self.user)
        cmd = [_binary("patroni"), str(PATRONI_CONFIG)]
        state["pids"][member.name] = _spawn(cmd, self._member_env(member, state), log, self.user)
        self._save(state)

    def start(self) -> str:
        """Starts etcd and both members (reusing what runs); returns the multi-host URL once
        there is a leader and a synchronous standby streaming from it."""
        _ensure_timescaledb()
        state = self.state()
        self._own(self.directory, self.user)
        self._own(self.state_file, self.user)
        self._start_etcd(state)
        for member in self.members():
            self._start_member(member, state)
        self.wait_ready(180)
        return self.url()

    def wait_ready(self, timeout: float) -> None:
        """Waits for one leader and every other member replicating from it."""

        def ready() -> bool:
            pids = self.state()["pids"]
            dead = [name for name in ("etcd", *MEMBERS) if not _alive(pids.get(name))]
            if dead:
                raise ServiceError(f"{', '.join(dead)} exited: see the logs in {self.directory}")
            members = self.cluster().get("members", [])
            leaders = [m for m in members if m.get("role") == "leader" and m["state"] == "running"]
            # Patroni 3.0 reports a replica "running" once it replays from the leader.
            standbys = [
                m for m in members
                if m.get("role") in ("sync_standby", "replica")
                and m.get("state") in ("running", "streaming")
                and isinstance(m.get("lag"), int)
            ]  # fmt: skip
            return len(leaders) == 1 and len(standbys) == len(MEMBERS) - 1

        self._wait(ready, timeout, f"the HA cluster did not come up: {self.cluster()}")

    def cluster(self) -> dict[str, Any]:
        """Patroni's view of the cluster (GET /cluster on any member that answers)."""
        for member in self.members():
            url = f"{member.api}/cluster"
            with (
                contextlib.suppress(OSError, ValueError),
                urllib.request.urlopen(url, timeout=3) as resp,  # noqa: S310
            ):
                found: dict[str, Any] = json.loads(resp.read())
                return found
        return {}

    def leader(self) -> Member | None:
        for item in self.cluster().get("members", []):
            if item.get("role") == "leader" and item.get("state") == "running":
                return next(m for m in self.members() if m.name == item["name"])
        return None

    def role_of(self, name: str) -> str | None:
        for item in self.cluster().get("members", []):
            if item.get("name") == name:
                return str(item.get("role"))
        return None

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> int:
        """A request to the leader's REST API (switchover, config); returns the status."""
        leader = self.leader()
        if leader is None:
            raise ServiceError("no leader to ask")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(  # noqa: S310
            f"{leader.api}{path}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
                return int(resp.status)
        except urllib.error.HTTPError as err:
            raise ServiceError(f"{method} {path}: {err.code} {err.read()[:300]!r}") from err

    def postmaster_pid(self, member: Member) -> int:
        pidfile = member.data_dir / "postmaster.pid"
        return int(pidfile.read_text().splitlines()[0])

    def running(self) -> bool:
        if not self.state_file.exists():
            return False
        pids = self.state()["pids"]
        return all(_alive(pids.get(name)) for name in ("etcd", *MEMBERS))

    def stop(self) -> None:
        """Stops both members (each stops its PostgreSQL) and then etcd."""
        if not self.state_file.exists():
            return
        state = self.state()
        for name in MEMBERS:
            _stop_pid(state["pids"].get(name), signal.SIGTERM, 60)
        _stop_pid(state["pids"].get("etcd"))
        state["pids"] = {}
        self._save(state)

    def destroy(self) -> None:
        """Stops everything and deletes the cluster's folder (tests)."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    @staticmethod
    def _wait(check: Any, timeout: float, message: str | Any) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.2)
        raise ServiceError(message if isinstance(message, str) else str(message))
