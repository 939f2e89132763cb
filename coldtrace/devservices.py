"""Private PostgreSQL (with TimescaleDB) and Mosquitto for tests and the demo.

Both run on free loopback ports under the project's data folder, never touching a system cluster
or broker, and are reused when already running. initdb refuses root, so as root the cluster runs
as the ``postgres`` user (and Mosquitto drops to ``mosquitto``, as it does by itself).

Errors: ``ServiceError`` when a service cannot be set up or started.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


class ServiceError(RuntimeError):
    """A private service could not be prepared or started."""


def data_root() -> Path:
    return Path(os.environ.get("COLDTRACE_DATA", REPO_ROOT / ".data")).resolve()


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """Holds a lock beside ``directory`` while a service is set up and started: parallel test
    workers (and a demo started meanwhile) would otherwise initdb the same folder at once."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with (directory.parent / f".{directory.name}.lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _is_root() -> bool:
    return os.geteuid() == 0


def _run(cmd: list[str], user: str | None = None, check: bool = True) -> str:
    if user is not None and _is_root():
        cmd = ["runuser", "-u", user, "--", *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)  # noqa: S603
    if check and proc.returncode != 0:
        raise ServiceError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _service_dir(name: str, user: str | None) -> Path:
    """A folder for one service that its (possibly unprivileged) user can reach.

    The project's data folder is preferred; when the checkout sits under a folder the service
    user cannot enter (such as /root), a folder keyed by the checkout path is used instead.
    """
    preferred = data_root() / name
    preferred.mkdir(parents=True, exist_ok=True)
    if user is None or not _is_root():
        return preferred
    probe = subprocess.run(  # noqa: S603
        ["runuser", "-u", user, "--", "test", "-x", str(preferred.parent)],  # noqa: S607
        check=False,
    )
    if probe.returncode == 0:
        return preferred
    key = hashlib.sha256(str(data_root()).encode()).hexdigest()[:12]
    fallback = Path("/var/tmp") / f"coldtrace-{key}" / name  # noqa: S108
    fallback.mkdir(parents=True, exist_ok=True)
    fallback.parent.chmod(0o755)
    return fallback


def _chown(path: Path, user: str | None) -> None:
    if user is None or not _is_root():
        return
    entry = pwd.getpwnam(user)
    for p in [path, *path.rglob("*")]:
        os.chown(p, entry.pw_uid, entry.pw_gid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _wait_port(port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise ServiceError(f"nothing listens on 127.0.0.1:{port} after {timeout:.0f}s")


def _pg_bindir() -> Path:
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name)
    )
    if not candidates:
        found = shutil.which("initdb")
        if found is None:
            raise ServiceError("PostgreSQL server binaries not found (apt-get install postgresql)")
        return Path(found).parent
    return candidates[-1].parent


@dataclass
class PostgresService:
    """A private PostgreSQL cluster with TimescaleDB preloaded."""

    directory: Path
    user: str | None
    durable: bool = True
    """False: no fsync, asynchronous commits. Safe against any process being killed (the OS
    still writes everything out), not against the machine losing power: for throw-away data."""

    @classmethod
    def default(cls) -> PostgresService:
        """The cluster of the demo and the benchmarks, durable as a real one."""
        user = cls._user()
        return cls(_service_dir("postgres", user), user)

    @classmethod
    def for_tests(cls) -> PostgresService:
        """The test suite's own cluster, not durable: each test database is dropped after use,
        and a durable DROP DATABASE waits for a checkpoint (1.8 s against 0.1 s here)."""
        user = cls._user()
        return cls(_service_dir("postgres-test", user), user, durable=False)

    @staticmethod
    def _user() -> str | None:
        user = "postgres" if _is_root() else None
        if user is not None:
            try:
                pwd.getpwnam(user)
            except KeyError as err:
                raise ServiceError("running as root needs the 'postgres' system user") from err
        return user

    @property
    def pgdata(self) -> Path:
        return self.directory / "pgdata"

    @property
    def state_file(self) -> Path:
        return self.directory / "service.json"

    @property
    def port(self) -> int:
        state = json.loads(self.state_file.read_text())
        port: int = state["port"]
        return port

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, check: bool = True) -> str:
        return _run([str(_pg_bindir() / "pg_ctl"), "-D", str(self.pgdata), *args], self.user, check)

    def running(self) -> bool:
        if not (self.pgdata / "postmaster.pid").exists():
            return False
        out = subprocess.run(  # noqa: S603
            [
                *(["runuser", "-u", self.user, "--"] if self.user and _is_root() else []),
                str(_pg_bindir() / "pg_ctl"),
                "-D",
                str(self.pgdata),
                "status",
            ],
            capture_output=True,
            check=False,
        )
        return out.returncode == 0

    def _init(self) -> None:
        port = free_port()
        self.pgdata.mkdir(parents=True, exist_ok=True)
        _chown(self.directory, self.user)
        _run(
            [
                str(_pg_bindir() / "initdb"),
                "-D",
                str(self.pgdata),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
            self.user,
        )
        conf = [
            f"port = {port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{self.directory}'",
            "shared_preload_libraries = 'timescaledb'",
            "timescaledb.telemetry_level = off",
            "max_connections = 300",
            "max_locks_per_transaction = 256",
            "shared_buffers = 256MB",
            "log_min_messages = warning",
            "timezone = 'UTC'",
        ]
        if not self.durable:
            conf += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        with (self.pgdata / "postgresql.conf").open("a") as fh:
            fh.write("\n# coldtrace private cluster\n" + "\n".join(conf) + "\n")
        self.state_file.write_text(json.dumps({"port": port}))
        _chown(self.directory, self.user)

    def start(self) -> str:
        with _exclusive(self.directory):
            if self.running():
                return self.url
            if not (self.pgdata / "PG_VERSION").exists():
                _ensure_timescaledb()
                self._init()
            self._pg_ctl("-l", str(self.directory / "postgres.log"), "-w", "-t", "60", "start")
            _wait_port(self.port, 30)
            return self.url

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._pg_ctl("-m", mode, "-w", "stop")

    def kill(self) -> None:
        """Stops the postmaster with SIGKILL, as a crash would."""
        pidfile = self.pgdata / "postmaster.pid"
        if pidfile.exists():
            pid = int(pidfile.read_text().splitlines()[0])
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)


def _ensure_timescaledb() -> None:
    script = REPO_ROOT / "scripts" / "build-timescaledb.sh"
    if any(Path("/usr/share/postgresql").glob("*/extension/timescaledb.control")):
        return
    if script.exists():
        subprocess.run(["bash", str(script)], check=True)  # noqa: S603, S607


GATEWAY_BROKER = REPO_ROOT / "deploy" / "balena" / "mosquitto"
"""The gateway broker's policy (conf.d/coldtrace.conf) and ACL, shared with the balena image."""


@dataclass
class MosquittoService:
    """A private Mosquitto broker with persistence.

    With ``accounts`` (user → password) it runs the gateway broker's own policy file and ACL
    from ``deploy/balena/mosquitto`` verbatim (logins required, the deployed queue limits and
    autosave); without, the anonymous development broker the other tests share.
    """

    directory: Path
    user: str | None
    accounts: dict[str, str] | None = None

    @classmethod
    def default(cls) -> MosquittoService:
        user: str | None = None
        if _is_root():
            try:
                pwd.getpwnam("mosquitto")
                user = "mosquitto"
            except KeyError:
                user = None
        return cls(_service_dir("mosquitto", user), user)

    @property
    def conf(self) -> Path:
        return self.directory / "mosquitto.conf"

    @property
    def pidfile(self) -> Path:
        return self.directory / "mosquitto.pid"

    @property
    def port(self) -> int:
        state = json.loads((self.directory / "service.json").read_text())
        port: int = state["port"]
        return port

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return self._find_running()

    def _find_running(self) -> int | None:
        """The broker started with our config file, found by its command line.

        A pid file can go missing (a second instance that failed to bind removes it on exit);
        the broker itself still runs and must be reused, not started twice.
        """
        conf = str(self.conf).encode()
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                argv = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if conf in argv and argv and argv[0].endswith(b"mosquitto"):
                return int(proc.name)
        return None

    def running(self) -> bool:
        pid = self._pid()
        return pid is not None and _pid_alive(pid) and (self.directory / "service.json").exists()

    def start(self) -> str:
        with _exclusive(self.directory):
            return self._start()

    def _start(self) -> str:
        if self.running():
            return self.url
        state = self.directory / "service.json"
        if state.exists():
            self._launch(json.loads(state.read_text())["port"])
            return self.url
        # A port free a moment ago can be taken before the broker binds it (parallel tests):
        # the broker then exits at once, so try another.
        for _ in range(3):
            if self._launch(free_port()):
                return self.url
        raise ServiceError(f"mosquitto did not start: see {self.directory / 'mosquitto.log'}")

    def _launch(self, port: int) -> bool:
        """Writes the config for ``port`` and starts the broker; whether it is running."""
        state = self.directory / "service.json"
        (self.directory / "db").mkdir(parents=True, exist_ok=True)
        common = [
            f"persistence_location {self.directory / 'db'}/",
            f"pid_file {self.pidfile}",
            f"log_dest file {self.directory / 'mosquitto.log'}",
            "log_type error",
            "log_type warning",
        ]
        if self.accounts is not None:
            lines = [*common, *self._gateway_policy(), f"listener {port} 127.0.0.1"]
        else:
            lines = [
                f"listener {port} 127.0.0.1",
                "allow_anonymous true",
                "persistence true",
                "autosave_interval 1",
                *common,
                "max_queued_messages 100000",
                "persistent_client_expiration 7d",
            ]
        if self.user:
            lines.append(f"user {self.user}")
        self.conf.write_text("\n".join(lines) + "\n")
        state.write_text(json.dumps({"port": port}))
        _chown(self.directory, self.user)
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        # -d: the broker daemonizes, so it is never our child (no zombie after a kill).
        subprocess.run([binary, "-c", str(self.conf), "-d"], check=True)  # noqa: S603
        # -d forks before the listener binds: something answering on the port proves nothing
        # until our own broker is seen running.
        deadline = time.monotonic() + 5
        while self._pid() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._pid() is None:
            return False
        _wait_port(port, 15)
        return self.running()

    def _gateway_policy(self) -> list[str]:
        """Password file from ``accounts``; the deployed ACL and policy file, included as is."""
        assert self.accounts is not None
        passwd = self.directory / "passwd"
        passwd.write_text("")
        passwd.chmod(0o600)
        binary = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        for name, password in self.accounts.items():
            subprocess.run([binary, "-b", str(passwd), name, password], check=True)  # noqa: S603
        return [
            f"password_file {passwd}",
            f"acl_file {GATEWAY_BROKER / 'acl'}",
            f"include_dir {GATEWAY_BROKER / 'conf.d'}",
        ]

    def stop(self, sig: int = signal.SIGTERM) -> None:
        pid = self._pid()
        if pid is None or not _pid_alive(pid):
            return
        os.kill(pid, sig)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                time.sleep(0.05)
        with contextlib.suppress(FileNotFoundError):
            self.pidfile.unlink()

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


def start_all() -> dict[str, str]:
    return {
        "database_url": PostgresService.default().start(),
        "mqtt_url": MosquittoService.default().start(),
    }


def stop_all() -> None:
    """Stops the demo's services and the test suite's cluster."""
    PostgresService.default().stop()
    PostgresService.for_tests().stop()
    MosquittoService.default().stop()
