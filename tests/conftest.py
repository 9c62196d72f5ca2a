"""Shared fixtures: the real `certcli` executable, a local CA, and the lab servers."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.lab import Lab, LabError, worker_index
from tests.lab.a2c import A2C
from tests.lab.localca import LocalCA
from tests.lab.postgres import Postgres

CERTCLI = Path(sys.executable).with_name("certcli")


@dataclass
class Run:
    """A finished certcli process."""

    code: int
    stdout: str
    stderr: str

    def json(self) -> dict:
        import json

        return json.loads(self.stdout)


class Certcli:
    """Runs the installed console script in a subprocess against one config dir."""

    def __init__(self, config_dir: Path, cwd: Path) -> None:
        self.config_dir = config_dir
        self.cwd = cwd
        self.env: dict[str, str] = {}

    def __call__(
        self, *args: str | Path, input: str | None = None, env: dict[str, str] | None = None
    ) -> Run:
        proc = subprocess.run(
            [str(CERTCLI), *map(str, args)],
            input=input,
            capture_output=True,
            text=True,
            env=self.environ(env),
            cwd=self.cwd,
            timeout=120,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def environ(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """The environment certcli runs in: this config dir, the lab's, and `env`."""
        full_env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CERTCLI_", "REQUESTS_CA_BUNDLE"))
        }
        full_env.update(
            {
                "CERTCLI_CONFIG_DIR": str(self.config_dir),
                "CERTCLI_LOCK_WAIT": "1",
                "CERTCLI_RENEWAL_JITTER": "0",  # tests are unattended runs: no random sleep
            }
        )
        full_env.update(self.env)
        full_env.update(env or {})
        return full_env

    def point_at(self, lab: Lab) -> Certcli:
        """Talk to the lab's Pebble, trusting its TLS, with a short order timeout."""
        self.env.update({**lab.env(), "CERTCLI_ACME_TIMEOUT": "30"})
        return self


PASSPHRASE = "a passphrase for the tests' keys"


def on_postgres(certcli: Certcli, url: str, postgres: Postgres, host: str) -> Certcli:
    """Make `certcli` a host named `host` of the PostgreSQL store at `url` (its keys
    encrypted with PASSPHRASE)."""
    certcli.env.update(
        {
            **postgres.env(),
            "CERTCLI_STORE_URL": url,
            "CERTCLI_STORE_HOST": host,
            "CERTCLI_PASSPHRASE": PASSPHRASE,
        }
    )
    return certcli


#: `CERTCLI_TEST_STORE=postgresql` (make test-postgres) runs the integration suite with a
#: PostgreSQL store, a fresh database per test; the tests of the file store's own layout
#: (marked `file_store`) are deselected (the summary counts them when run without -n).
ON_POSTGRES = os.environ.get("CERTCLI_TEST_STORE") == "postgresql"


@pytest.fixture
def certcli(tmp_path: Path, request: pytest.FixtureRequest) -> Certcli:
    found = Certcli(tmp_path / "config", tmp_path)
    if ON_POSTGRES and request.node.get_closest_marker("integration"):
        server = request.getfixturevalue("postgres")
        on_postgres(found, server.new_database(), server, "test-host")
        # the store helpers (tests/conftest.py) connect from this process too
        request.getfixturevalue("monkeypatch").setenv("PGPASSWORD", found.env["PGPASSWORD"])
    return found


def pytest_configure(config: pytest.Config) -> None:
    # The suite starts certcli thousands of times. Installed, its bytecode is compiled once
    # by pip; this editable one would be compiled again by every process wherever bytecode
    # is not written (PYTHONDONTWRITEBYTECODE), half of a short command's time.
    import compileall

    import certcli

    if not hasattr(config, "workerinput"):  # once, before pytest-xdist starts its workers
        compileall.compile_dir(Path(certcli.__file__).parent, quiet=1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not ON_POSTGRES:
        return
    kept = [item for item in items if not item.get_closest_marker("file_store")]
    dropped = [item for item in items if item.get_closest_marker("file_store")]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture
def acme(certcli: Certcli, lab: Lab) -> Certcli:
    """certcli pointed at the session's lab."""
    return certcli.point_at(lab)


@pytest.fixture
def target() -> str:
    """A delegation target of this test's own, so tests never see each other's values."""
    import secrets

    from tests.lab import DELEGATION_ZONE

    return f"t-{secrets.token_hex(4)}.{DELEGATION_ZONE}"


def dns_configured(certcli: Certcli, lab: Lab, target: str, extra: str = "") -> Certcli:
    """certcli pointed at the lab, delegating DNS-01 to `target` (updated by RFC 2136),
    with `extra` config.toml text."""
    certcli.point_at(lab)
    certcli.config_dir.mkdir(parents=True, exist_ok=True)
    path = certcli.config_dir / "config.toml"
    path.write_text(lab.dns_config(target) + extra)
    path.chmod(0o600)
    return certcli


@pytest.fixture
def dns(certcli: Certcli, lab: Lab, target: str) -> Certcli:
    """certcli pointed at the lab, delegating DNS-01 to `target` (updated by RFC 2136)."""
    return dns_configured(certcli, lab, target)


# -- what a test reads of the store, whichever store it is ---------------------------------
#
# A test that checks what certcli did (the live files, the state, the settings, the versions)
# reads it through these, so that it runs on the file store and on a PostgreSQL store
# (CERTCLI_TEST_STORE=postgresql). A test of the file store's own layout (archive/NNNN
# links, partial files, planted links in certs/) is marked `file_store` instead.


def on_pg(certcli: Certcli) -> bool:
    """Whether this certcli uses a PostgreSQL store."""
    return bool(certcli.env.get("CERTCLI_STORE_URL"))


def live_dir(certcli: Certcli, name: str) -> Path:
    """Where this host's web server reads the lineage's current files."""
    if on_pg(certcli):
        return certcli.config_dir / "live" / name
    return certcli.config_dir / "certs" / name / "live"


def store_query(certcli: Certcli, sql: str, params: tuple = ()) -> list[tuple]:
    """A question to the test's PostgreSQL store, from this process."""
    import psycopg

    password = certcli.env.get("PGPASSWORD")
    with psycopg.connect(certcli.env["CERTCLI_STORE_URL"], password=password, autocommit=True) as c:
        return c.execute(sql, params).fetchall()


def lineage_state(certcli: Certcli, name: str) -> dict:
    """The lineage's state (state.json); {} when it has none."""
    if on_pg(certcli):
        rows = store_query(certcli, "SELECT state FROM certcli.lineages WHERE name = %s", (name,))
        return dict(rows[0][0]) if rows else {}
    path = certcli.config_dir / "certs" / name / "state.json"
    return json.loads(path.read_text()) if path.exists() else {}


def lineage_settings(certcli: Certcli, name: str) -> str | None:
    """The lineage's settings as lineage.toml's text; None for no lineage."""
    if on_pg(certcli):
        rows = store_query(
            certcli,
            "SELECT settings FROM certcli.lineages WHERE name = %s AND settings <> ''",
            (name,),
        )
        return rows[0][0] if rows else None
    path = certcli.config_dir / "certs" / name / "lineage.toml"
    return path.read_text() if path.exists() else None


def lineage_names(certcli: Certcli) -> list[str]:
    """The lineages in the store, sorted."""
    if on_pg(certcli):
        rows = store_query(
            certcli, "SELECT name FROM certcli.lineages WHERE settings <> '' ORDER BY 1"
        )
        return [r[0] for r in rows]
    certs = certcli.config_dir / "certs"
    return sorted(p.parent.name for p in certs.glob("*/lineage.toml")) if certs.exists() else []


def has_account(certcli: Certcli) -> bool:
    """Whether the store holds any ACME account (on the file store, any part of one)."""
    if on_pg(certcli):
        return bool(store_query(certcli, "SELECT 1 FROM certcli.accounts"))
    accounts = certcli.config_dir / "accounts"
    return any(accounts.rglob("account.json")) or any(accounts.rglob("key.pem"))


def version_numbers(certcli: Certcli, name: str) -> list[int]:
    """The lineage's versions, in order."""
    if on_pg(certcli):
        rows = store_query(
            certcli, "SELECT version FROM certcli.versions WHERE name = %s ORDER BY 1", (name,)
        )
        return [r[0] for r in rows]
    archive = certcli.config_dir / "certs" / name / "archive"
    return sorted(int(e) for e in os.listdir(archive) if e.isdigit()) if archive.exists() else []


def live_version(certcli: Certcli, name: str) -> int | None:
    """The lineage's current version; None before the first."""
    if on_pg(certcli):
        rows = store_query(
            certcli, "SELECT live_version FROM certcli.lineages WHERE name = %s", (name,)
        )
        return rows[0][0] if rows else None
    link = certcli.config_dir / "certs" / name / "live"
    return int(os.readlink(link).rsplit("/", 1)[1]) if link.is_symlink() else None


def write_state(certcli: Certcli, name: str, state: dict) -> None:
    """Replace the lineage's state, as a test sets a scenario up (state.json by hand)."""
    if on_pg(certcli):
        from psycopg.types.json import Jsonb

        store_query(
            certcli,
            "UPDATE certcli.lineages SET state = %s WHERE name = %s RETURNING 1",
            (Jsonb(state), name),
        )
        return
    # as certcli writes it, under the lineage's lock: replaced by rename, and a note left for
    # the renew index (state.json is certcli's own; an edit in place is seen only by the
    # commands that read the lineage whatever their caches say)
    path = certcli.config_dir / "certs" / name / "state.json"
    tmp = path.with_name("state.json.test.tmp")
    tmp.write_text(json.dumps(state))
    os.replace(tmp, path)
    (certcli.config_dir / "changes").mkdir(mode=0o700, exist_ok=True)
    (certcli.config_dir / "changes" / name).touch()


def write_settings(certcli: Certcli, name: str, text: str) -> None:
    """Replace the lineage's settings with lineage.toml text, as an operator edits them."""
    if on_pg(certcli):
        store_query(
            certcli,
            "UPDATE certcli.lineages SET settings = %s WHERE name = %s RETURNING 1",
            (text, name),
        )
        return
    (certcli.config_dir / "certs" / name / "lineage.toml").write_text(text)


def store_contents(certcli: Certcli) -> dict[str, Any]:
    """Everything the store holds, to compare before and after a command that must change
    nothing: the file store's files, or every row of the database and this host's live/."""
    if not on_pg(certcli):
        return snapshot(certcli.config_dir / "certs")
    tables = ("lineages", "versions", "pending", "accounts", "retired_accounts", "store")
    found: dict[str, Any] = {
        table: sorted(map(repr, store_query(certcli, f"SELECT * FROM certcli.{table}")))
        for table in tables
    }
    # the lineages' xmin changes with any write, even of the same values
    found["xmin"] = sorted(store_query(certcli, "SELECT name, xmin::text FROM certcli.lineages"))
    for local in ("live", "archive"):
        found[local] = snapshot(certcli.config_dir / local)
    return found


def ok(run: Run) -> Run:
    """The run, once it is known to have succeeded (else its stderr is the failure)."""
    assert run.code == 0, run.stderr
    return run


@pytest.fixture(scope="session")
def ca() -> LocalCA:
    """A CA with two intermediates, like many commercial chains."""
    return LocalCA("certcli test", intermediates=2)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under a store with its mode, link target and content digest (lock files
    excluded: taking a lock is not a change)."""
    result: dict[str, tuple] = {}
    if not root.exists():
        return result
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if rel.startswith("locks"):
            continue
        st = path.lstat()
        if path.is_symlink():
            result[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            result[rel] = ("dir", st.st_mode)
        else:
            result[rel] = ("file", st.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return result


@pytest.fixture
def store_snapshot() -> Callable[[Path], dict[str, tuple]]:
    return snapshot


# -- the lab ------------------------------------------------------------------------------


def started_lab(factory: pytest.TempPathFactory, name: str, **options: Any) -> Iterator[Lab]:
    """A lab of its own for a fixture (`yield from started_lab(...)`), stopped afterwards;
    it fails the tests that need it, saying how to install what is missing."""
    instance = Lab.create(factory.mktemp(name), **options)
    try:
        instance.start()
    except LabError as exc:
        pytest.fail(str(exc), pytrace=False)
    _LABS.append(instance)
    yield instance
    instance.stop()
    _LABS.remove(instance)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Pebble, BIND and the webroot server, started once for the session (for each
    pytest-xdist worker: one lab each, and only the first's BIND answers on port 53)."""
    yield from started_lab(tmp_path_factory, "lab", port_53=worker_index() == 0)


_LABS: list[Lab] = []
_A2CS: list[A2C] = []
_POSTGRES: list[Postgres] = []


@pytest.fixture(scope="session")
def a2c(lab: Lab) -> Iterator[A2C]:
    """acme2certifier, a second real ACME CA, on the session lab's BIND and web server; it
    fails the tests that need it, saying how to install it, when its virtualenv is missing."""
    instance = A2C.create(lab)
    try:
        instance.start()
    except LabError as exc:
        pytest.fail(str(exc), pytrace=False)
    _A2CS.append(instance)
    yield instance
    instance.stop()
    _A2CS.remove(instance)


def started_postgres(factory: pytest.TempPathFactory, name: str) -> Iterator[Postgres]:
    """A PostgreSQL server of its own for a fixture (`yield from started_postgres(...)`),
    removed afterwards; it fails the tests that need it, saying how to install it."""
    try:
        instance = Postgres.create(factory.mktemp(name))
    except LabError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        instance.start()
    except LabError as exc:
        instance.remove()
        pytest.fail(str(exc), pytrace=False)
    _POSTGRES.append(instance)
    yield instance
    _POSTGRES.remove(instance)
    instance.remove()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A real PostgreSQL server on a loopback port, started once for the session, with the
    role and database `certcli` (`postgres.url`, its password in `postgres.env()`)."""
    yield from started_postgres(tmp_path_factory, "postgres")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """Attach the tail of each lab server's log to a failing test that used the lab."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and "lab" in getattr(item, "fixturenames", ()):
        for instance in _LABS:
            for service in instance.pids:
                log = instance.log(service)
                if log.exists():
                    tail = log.read_text(errors="replace")[-4000:]
                    report.sections.append((f"lab {service} log (tail)", tail))
        for server in _A2CS:
            if server.log.exists():
                tail = server.log.read_text(errors="replace")[-4000:]
                report.sections.append(("lab a2c log (tail)", tail))
    if report.failed and "postgres" in getattr(item, "fixturenames", ()):
        for server in _POSTGRES:
            if server.log.exists():
                tail = server.log.read_text(errors="replace")[-4000:]
                report.sections.append(("lab postgres log (tail)", tail))


# -- a second, unprivileged local user -----------------------------------------------------

OTHER_USER = "certcli-other"


@dataclass(frozen=True)
class OtherUser:
    """An unprivileged local account that the security tests act as: it plants links, files
    and directories where it may write, and certcli (run as root) meets them."""

    name: str
    uid: int
    gid: int

    def run(self, *argv: str | Path, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command as this user (setpriv: no supplementary groups, no capabilities)."""
        proc = subprocess.run(
            [
                "setpriv",
                f"--reuid={self.uid}",
                f"--regid={self.gid}",
                "--clear-groups",
                "--",
                *map(str, argv),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "HOME": "/", "LC_ALL": "C"},
            cwd="/",
        )
        if check:
            assert proc.returncode == 0, f"as {self.name}: {argv}: {proc.stderr}"
        return proc

    def sh(self, script: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("/bin/sh", "-c", script, check=check)


@pytest.fixture(scope="session")
def other_user(tmp_path_factory: pytest.TempPathFactory) -> OtherUser:
    """The account `certcli-other`, made once (useradd) if this machine lacks it."""
    import fcntl
    import pwd

    if os.geteuid() != 0:
        pytest.fail(
            "the security tests act as a second local user, which only root can create: "
            "run `make test` as root",
            pytrace=False,
        )
    # the directory all pytest-xdist workers share: one of them makes the user, once
    with open(tmp_path_factory.getbasetemp().parent / "other-user.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            entry = pwd.getpwnam(OTHER_USER)
        except KeyError:
            system = ["--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
            subprocess.run(["useradd", *system, OTHER_USER], check=True, capture_output=True)
            entry = pwd.getpwnam(OTHER_USER)
    return OtherUser(OTHER_USER, entry.pw_uid, entry.pw_gid)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user can traverse (pytest's tmp_path is root's alone, 0700), for
    what the other user owns and certcli meets; removed afterwards."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="certcli-shared-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def other_owned(other_user: OtherUser, shared_dir: Path) -> Path:
    """A directory owned by the other user (0755), inside `shared_dir`."""
    path = shared_dir / "other"
    path.mkdir(mode=0o755)
    os.chown(path, other_user.uid, other_user.gid)
    return path
