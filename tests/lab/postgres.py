"""PostgreSQL for the test lab: a real server (Debian `postgresql`) on a free 127.0.0.1 port,
with a data directory of its own, run as the unprivileged `postgres` user (see
../../docs/testing.md).

The data directory and the server's unix socket live in a directory of /tmp owned by
`postgres` (0700): pytest's temporary directories are root's alone (0700), which `postgres`
could not enter. The superuser is reached only over that socket, by peer authentication (as
the `postgres` user); TCP on 127.0.0.1 takes passwords by SCRAM only. certcli connects as the
role `certcli`, owner of the database `certcli`, with a random password per server.
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
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.lab import LabError, _alive, free_port

USER = "postgres"
ROLE = "certcli"
DATABASE = "certcli"
TEMPLATE = "certcli_template"  # migrated once; each test's database is a copy
INSTALL_HINT = (
    "the PostgreSQL lab needs Debian's postgresql: run `make test` as root (it installs it) "
    "or `sudo apt-get install -y postgresql libpq5`"
)
# No PG* variable of the caller's (a PGPASSWORD, a PGHOST) reaches the lab's own commands.
_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "HOME": "/"}


def bindir() -> Path:
    """Debian's /usr/lib/postgresql/<version>/bin, the newest version if several: initdb and
    postgres are not on PATH there (CERTCLI_LAB_PG_BINDIR names another directory)."""
    if override := os.environ.get("CERTCLI_LAB_PG_BINDIR"):
        found = [Path(override) / "postgres"]
    else:
        found = sorted(
            Path("/usr/lib/postgresql").glob("*/bin/postgres"),
            key=lambda path: _version(path.parent.parent.name),
        )
    found = [path for path in found if os.access(path, os.X_OK)]
    if not found:
        raise LabError(f"PostgreSQL is not installed; {INSTALL_HINT}")
    return found[-1].parent


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


@dataclass
class Postgres:
    """One PostgreSQL server: `create` makes its cluster, `start` runs it."""

    directory: Path  # root's: the log
    home: Path  # postgres's (0700): data/ and sock/
    port: int
    password: str  # the certcli role's
    provisioned: bool = False  # the role and database exist
    pid: int | None = None
    _template: bool = False

    @classmethod
    def create(cls, directory: Path) -> Postgres:
        """A new cluster (initdb) whose server listens on a free 127.0.0.1 port; root only,
        since the server runs as `postgres`."""
        if os.geteuid() != 0:
            raise LabError(
                "the PostgreSQL lab runs its server as the `postgres` user, which needs root: "
                "run the tests as root"
            )
        try:
            account = pwd.getpwnam(USER)
        except KeyError:
            raise LabError(f"there is no `{USER}` user; {INSTALL_HINT}") from None
        binaries = bindir()
        directory.mkdir(parents=True, exist_ok=True)
        home = Path(tempfile.mkdtemp(prefix="certcli-pg-", dir="/tmp"))
        for path in (home, home / "data", home / "sock"):
            path.mkdir(mode=0o700, exist_ok=True)
            os.chown(path, account.pw_uid, account.pw_gid)
        instance = cls(directory, home, free_port(), secrets.token_urlsafe(24))
        argv = ["runuser", "-u", USER, "--", str(binaries / "initdb"), "-D", str(home / "data")]
        argv += ["-U", USER, "--auth-host=scram-sha-256", "--auth-local=peer"]
        argv += ["--encoding=UTF8", "--locale=C", "--no-sync"]  # a lab's data: no fsync
        try:
            instance._run(argv, "initdb")
        except BaseException:
            shutil.rmtree(home, ignore_errors=True)
            raise
        return instance

    # -- what tests use -----------------------------------------------------------------

    @property
    def url(self) -> str:
        """certcli's connection URL, with no password in it (see `env`)."""
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{DATABASE}"

    def database_url(self, database: str) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh database owned by the certcli role, at certcli's schema (copied from a
        template migrated once by `certcli store migrate`); its URL."""
        if not self._template:
            self.psql(f"CREATE DATABASE {TEMPLATE} OWNER {ROLE}")
            env = {**os.environ, **self.env(), "CERTCLI_STORE_URL": self.database_url(TEMPLATE)}
            argv = [str(Path(sys.executable).with_name("certcli")), "store", "migrate"]
            subprocess.run(argv, env=env, check=True, capture_output=True, timeout=60)
            self._template = True
        name = f"store_{secrets.token_hex(6)}"
        self.psql(f"CREATE DATABASE {name} OWNER {ROLE} TEMPLATE {TEMPLATE}")
        return self.database_url(name)

    def env(self) -> dict[str, str]:
        """The environment that gives a client (certcli, psycopg) the role's password."""
        return {"PGPASSWORD": self.password}

    @property
    def log(self) -> Path:
        return self.directory / "postgres.log"

    @property
    def socket_dir(self) -> Path:
        return self.home / "sock"

    def connect(self, **options: Any) -> Any:
        """A psycopg connection as the certcli role over TCP (autocommit unless told)."""
        import psycopg

        options.setdefault("autocommit", True)
        options.setdefault("connect_timeout", 5)
        options.setdefault("password", self.password)
        return psycopg.connect(self.url, **options)

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL as the superuser over the unix socket (peer authentication, as `postgres`);
        return psql's unaligned, tuples-only output."""
        argv = ["runuser", "-u", USER, "--", str(bindir() / "psql"), "-X", "-q", "-A", "-t"]
        argv += ["-v", "ON_ERROR_STOP=1", "-h", str(self.socket_dir), "-p", str(self.port)]
        argv += ["-d", database, "-c", sql]
        return self._run(argv, "psql").rstrip("\n")

    # -- persistence for `python -m tests.lab up --postgres` ------------------------------

    def save(self) -> None:
        data = {"home": str(self.home), "port": self.port, "password": self.password}
        data |= {"provisioned": self.provisioned, "pid": self.pid}
        path = self.directory / "postgres.json"
        path.write_text(json.dumps(data))
        path.chmod(0o600)  # it holds the role's password

    @classmethod
    def load(cls, directory: Path) -> Postgres | None:
        """The server that `up --postgres` started with its log in `directory`, if any."""
        path = directory / "postgres.json"
        if not path.exists():
            return None
        data = json.loads(path.read_text())
        return cls(directory, Path(data.pop("home")), **data)

    def forget(self) -> None:
        (self.directory / "postgres.json").unlink(missing_ok=True)

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        """Run the server in the foreground of its own process group, wait until it accepts
        connections, and make the certcli role and database the first time."""
        log = self.log.open("ab")
        # setpriv execs postgres itself, so the pid is the postmaster's and SIGINT reaches
        # it (under runuser it did not)
        argv = ["setpriv", f"--reuid={USER}", f"--regid={USER}", "--init-groups", "--"]
        argv += [str(bindir() / "postgres"), "-D", str(self.home / "data"), "-p", str(self.port)]
        argv += ["-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1"]
        # no fsync: a commit survives a crash of the server (it is written to the kernel;
        # the tests' kill), not of the machine; synchronous_commit stays on, or a commit
        # would still sit in the server's memory when it is killed
        argv += ["-c", "fsync=off", "-c", "full_page_writes=off"]
        argv += ["-c", "log_connections=on", "-c", "log_disconnections=on"]
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_ENV,
            cwd=self.home,  # a directory postgres may enter
            start_new_session=True,
        )
        log.close()
        self.pid = proc.pid
        try:
            self._wait_ready()
            if not self.provisioned:
                self.psql(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{self.password}'")
                self.psql(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
                self.provisioned = True
        except BaseException:
            self.kill()
            raise

    def stop(self) -> None:
        """A fast shutdown (SIGINT: sessions are ended, the data kept); SIGKILL after 10 s."""
        self._signal(signal.SIGINT, timeout=10)

    def restart(self) -> None:
        """Stop and start again on the same port and data: every session is dropped."""
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL the server, as a crash would: `start` then recovers the data."""
        self._signal(signal.SIGKILL, timeout=10)

    def remove(self) -> None:
        """Stop the server and delete its data directory."""
        self.stop()
        shutil.rmtree(self.home, ignore_errors=True)

    # -- helpers ------------------------------------------------------------------------

    def _signal(self, signum: signal.Signals, timeout: float) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)
        deadline = time.monotonic() + timeout
        while _alive(self.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            while _alive(self.pid):
                time.sleep(0.02)
        self.pid = None
        self._wait_backends_gone()

    def _wait_backends_gone(self, timeout: float = 10) -> None:
        """After the postmaster dies its backends notice and exit; a new postmaster refuses to
        start while one still holds the old shared memory, so wait for them."""
        data = str((self.home / "data").resolve())
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _processes_using(data):
            time.sleep(0.02)

    def _wait_ready(self, timeout: float = 30) -> None:
        argv = [str(bindir() / "pg_isready"), "-q", "-h", str(self.socket_dir)]
        argv += ["-p", str(self.port), "-t", "1"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid is None or not _alive(self.pid):
                break
            if subprocess.run(argv, env=_ENV, capture_output=True).returncode == 0:
                return
            time.sleep(0.05)
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        raise LabError(f"postgres did not come up on 127.0.0.1:{self.port}; its log ends:\n{tail}")

    def _run(self, argv: list[str], what: str) -> str:
        proc = subprocess.run(
            argv, env=_ENV, cwd=self.home, capture_output=True, text=True, timeout=120
        )
        if proc.returncode != 0:
            raise LabError(f"{what} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        return proc.stdout


def _processes_using(data: str) -> list[int]:
    """The pids of processes whose working directory is `data`: the postmaster and its
    backends work there (their command lines are rewritten into status lines)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(entry / "cwd") == data:
                found.append(int(entry.name))
    return found
