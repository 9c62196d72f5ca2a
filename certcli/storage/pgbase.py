"""The PostgreSQL store's connections and locks (the store itself: pgstore.py)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certcli.domains import validate_lineage_name
from certcli.errors import LockedError, StoreError
from certcli.keycrypt import Sealer
from certcli.models import (
    CertInfo,
)
from certcli.storage.fsio import make_dirs
from certcli.storage.locks import LockingStore, lock_wait
from certcli.storage.mirror import LocalLive
from certcli.storage.postgres import LATEST, SCHEMA, StoreUrl, open_connection, reason
from certcli.trust import check_chain, check_path

if TYPE_CHECKING:
    import psycopg

#: The first key of each kind of advisory lock (the second is the item's hash).
_LINEAGE_LOCK, _ACCOUNT_LOCK = 0x63657201, 0x63657202
_T = f"{SCHEMA}."
#: The lineages that exist (an interrupted first issuance may leave a row without settings).
_REAL = "settings <> ''"


def _lock_key(kind: int, item: str) -> tuple[int, int]:
    """Two int4 keys: PostgreSQL's pg_locks shows them as classid and objid."""
    digest = int.from_bytes(hashlib.sha256(item.encode()).digest()[:4], "big", signed=True)
    return kind, digest


def _sha256(cert: bytes, chain: bytes, key: bytes) -> str:
    return hashlib.sha256(cert + chain + key).hexdigest()


class _LocalLocks(LockingStore):
    """This host's own flocks (under the config dir's locks/): one renew per host at a time,
    and one writer of a lineage's local files."""

    def ensure(self) -> None:
        make_dirs(self.root)
        make_dirs(self.locks_dir)


class PgBase:
    """The connections, the locks and what is made once per store (see pgstore.py)."""

    shared = True  # other hosts use this store too (renew moves on past their locks)

    def __init__(self, url: StoreUrl, root: Path, passphrase: bytes, host: str) -> None:
        self.url = url
        self.root = root
        self.host = host
        self.local = LocalLive(root)
        self.certs_dir = self.local.live_dir
        self.where = url.shown
        self._sealer = Sealer(passphrase)
        self._local_locks = _LocalLocks(root)
        self._threads = threading.local()
        self._infos: dict[tuple[str, int], CertInfo] = {}
        self._stamps: dict[str, list[Any]] | None = None
        self._trusted = False

    # -- connections ---------------------------------------------------------------------

    @property
    def label(self) -> str:
        """How other hosts name this process: `HOST (PID N)`."""
        return f"{self.host} (PID {os.getpid()})"

    def _connect(self) -> psycopg.Connection:
        return open_connection(self.url, application_name=f"certcli {self.label}")

    @contextlib.contextmanager
    def _db(self) -> Iterator[psycopg.Connection]:
        """This thread's connection; a failure of the database is one StoreError, and the
        connection is opened anew next time."""
        import psycopg

        connection = getattr(self._threads, "connection", None)
        if connection is None or connection.closed:
            connection = self._connect()
            self._check_schema(connection)
            self._threads.connection = connection
        try:
            yield connection
        except psycopg.Error as exc:
            if connection.broken or isinstance(exc, psycopg.OperationalError):
                connection.close()
            raise StoreError(
                f"the PostgreSQL store at {self.where} failed: {reason(exc)}",
                "check the database server; nothing was changed by the failed step",
            ) from None

    def _check_schema(self, connection: psycopg.Connection) -> None:
        from certcli.storage.postgres import schema_version

        found = schema_version(connection)
        if found != LATEST:
            connection.close()
            raise StoreError(
                f"the PostgreSQL store at {self.where} has schema version {found}, and this "
                f"certcli uses version {LATEST}",
                "run `certcli store migrate`" if found < LATEST else "upgrade certcli on this host",
            )

    def _one(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        with self._db() as connection:
            return connection.execute(sql, params).fetchone()

    def _all(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._db() as connection:
            return connection.execute(sql, params).fetchall()

    def _changed(self, name: str) -> None:
        self._stamps = None
        self._infos = {k: v for k, v in self._infos.items() if k[0] != name}

    # -- the store and its lineages ------------------------------------------------------

    def ensure(self) -> None:
        self.check_trusted()
        try:
            make_dirs(self.root)
        except OSError as exc:
            raise StoreError(
                f"cannot write to the config dir {self.root}: {exc.strerror}"
            ) from None
        self._one("SELECT 1")  # reachable, and at this certcli's schema
        self.check_trusted()

    def check_trusted(self) -> None:
        if not self._trusted:
            check_chain(self.root)
            # locks/ too: whoever owns it could swap this host's lock files (a renew's)
            local = (self.local.live_dir, self.local.archive_dir, self._local_locks.locks_dir)
            for directory in local:
                if directory.exists():
                    check_path(directory)
            self._trusted = self.root.is_dir()

    def check_key_protection(self) -> None:
        """Keys are always encrypted here, and the store exists only with a passphrase."""

    # -- what is made once per store -----------------------------------------------------

    def installation_id(self) -> str:
        import secrets

        with self._db() as connection:
            connection.execute(
                f"INSERT INTO {_T}store (key, value) VALUES ('installation_id', %s) "
                "ON CONFLICT DO NOTHING",
                (f"certcli-{secrets.token_hex(5)}",),
            )
            row = connection.execute(
                f"SELECT value FROM {_T}store WHERE key = 'installation_id'"
            ).fetchone()
        return str(row[0]) if row else ""

    def leftovers_dir(self) -> Path:
        return self.root / "leftovers"

    # -- locks ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def lock(self, name: str, wait: float | None = None) -> Iterator[None]:
        """The lineage's lock in the database, for every host."""
        validate_lineage_name(name)
        with self._advisory(_lock_key(_LINEAGE_LOCK, name), f"certificate {name!r}", wait):
            yield

    @contextlib.contextmanager
    def lock_account(self, directory_url: str) -> Iterator[None]:
        with self._advisory(_lock_key(_ACCOUNT_LOCK, directory_url), "the ACME account"):
            yield

    @contextlib.contextmanager
    def lock_store(self, wait: float | None = None) -> Iterator[None]:
        """One `renew` at a time on this host; other hosts renew at once, each lineage under
        its own lock."""
        with self._local_locks.lock_store(wait):
            yield

    @contextlib.contextmanager
    def _advisory(
        self, key: tuple[int, int], what: str, wait: float | None = None
    ) -> Iterator[None]:
        import psycopg

        deadline = time.monotonic() + lock_wait(wait)
        connection = self._connect()
        try:
            try:
                unseen = 0
                while True:
                    row = connection.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()
                    if row and row[0]:
                        break
                    holder = self._holder(connection, key)
                    if holder is None and unseen < 20:  # released in between: try again
                        unseen += 1
                        continue
                    if time.monotonic() >= deadline:
                        holder = holder or "another host"
                        raise LockedError(
                            f"{what} is locked by {holder}",
                            "another certcli is working on it; try again when it has finished",
                            holder=holder,
                        )
                    time.sleep(0.05)
            except psycopg.Error as exc:
                raise StoreError(
                    f"the PostgreSQL store at {self.where} failed: {reason(exc)}"
                ) from None
            yield
        finally:
            connection.close()  # the lock goes with its connection

    @staticmethod
    def _holder(connection: psycopg.Connection, key: tuple[int, int]) -> str | None:
        row = connection.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = %s::oid "
            "AND l.objid = %s::bigint::oid AND l.objsubid = 2",
            (key[0], key[1] & 0xFFFFFFFF),
        ).fetchone()
        return str(row[0]).removeprefix("certcli ") if row and row[0] else None
