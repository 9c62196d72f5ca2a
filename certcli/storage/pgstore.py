"""The Storage protocol on PostgreSQL (docs/many-hosts.md): one store for many hosts.

The database keeps the lineages, their versions, the pending keys, the accounts and the
installation id; each key only encrypted (AES-256-GCM under the passphrase, never in the
clear). Each host keeps what its web server reads, `live/<name>/`, in its config dir
(certcli/storage/mirror.py), written when this host makes a version and by `sync`.

Locks are PostgreSQL advisory locks, each held by a connection of its own for as long as
the lock is: a holder that dies loses its connection, and with it the lock. Every
connection is named `certcli HOST (PID N)` (application_name), which is how a waiter names
the holder. Each thread has its own connection (renew's pool works in threads).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certcli.domains import validate_lineage_name
from certcli.errors import LockedError, NotFoundError, StoreError
from certcli.keycrypt import Sealer
from certcli.models import (
    STATE_TYPES,
    Account,
    CertInfo,
    LineageSettings,
    LineageState,
    StateUpdate,
    is_state_value,
)
from certcli.storage.fsio import atomic_write, make_dirs
from certcli.storage.locks import LockingStore
from certcli.storage.mirror import LocalLive
from certcli.storage.postgres import LATEST, SCHEMA, StoreUrl, open_connection, reason
from certcli.trust import check_chain, check_path, read_trusted

if TYPE_CHECKING:
    import psycopg

#: The first key of each kind of advisory lock (the second is the item's hash).
_LINEAGE_LOCK, _ACCOUNT_LOCK = 0x63657201, 0x63657202
_LOCK_WAIT_DEFAULT = 5.0
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


class PostgresStore:
    """The Storage protocol on a PostgreSQL database; `host` names this host in the store."""

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

    def names(self) -> list[str]:
        rows = self._all(
            f"SELECT name, xmin::text, live_version FROM {_T}lineages WHERE {_REAL} ORDER BY name"
        )
        # the stamps of `renew`'s index, from the same one question
        self._stamps = {name: [xmin, live] for name, xmin, live in rows}
        return [row[0] for row in rows]

    def exists(self, name: str) -> bool:
        validate_lineage_name(name)
        return (
            self._one(f"SELECT 1 FROM {_T}lineages WHERE name = %s AND {_REAL}", (name,))
            is not None
        )

    def require(self, name: str) -> Path:
        if not self.exists(name):
            raise NotFoundError(
                f"no certificate named {name!r} in {self.where}",
                "`certcli status` lists the certificates",
            )
        return self.lineage_dir(name)

    def lineage_dir(self, name: str) -> Path:
        return self.local.archive_dir / validate_lineage_name(name)

    def live_dir(self, name: str) -> Path:
        return self.local.path(name)

    # -- settings and state --------------------------------------------------------------

    def read_settings(self, name: str) -> LineageSettings:
        validate_lineage_name(name)
        row = self._one(f"SELECT settings FROM {_T}lineages WHERE name = %s AND {_REAL}", (name,))
        if row is None:
            self.require(name)
        where = f"the settings of {name!r} in {self.where}"
        try:
            settings = LineageSettings.from_toml(tomllib.loads(row[0]), where)  # type: ignore[index]
        except (ValueError, TypeError) as exc:
            raise StoreError(f"cannot read {where}: {exc}") from None
        if settings.name != name:
            raise StoreError(f"cannot read {where}: its name {settings.name!r} is not {name!r}")
        return settings

    def write_settings(self, settings: LineageSettings) -> None:
        import tomli_w

        text = tomli_w.dumps(settings.to_toml())
        self._one(
            f"INSERT INTO {_T}lineages (name, settings) VALUES (%s, %s) ON CONFLICT (name) "
            "DO UPDATE SET settings = EXCLUDED.settings, changed_at = now() RETURNING 1",
            (validate_lineage_name(settings.name), text),
        )
        self._changed(settings.name)

    def _state(self, name: str, data: Any) -> LineageState:
        where = f"the state of {name!r} in {self.where}"
        if not isinstance(data, dict):
            raise StoreError(f"cannot read {where}: not a JSON object")
        for key in STATE_TYPES:
            value = data.get(key)
            if value is not None and not is_state_value(key, value):
                raise StoreError(f"cannot read {where}: {key} is {value!r}")
        return LineageState.from_json(data)

    def read_lineage_state(self, name: str) -> LineageState:
        validate_lineage_name(name)
        row = self._one(f"SELECT state FROM {_T}lineages WHERE name = %s", (name,))
        return LineageState() if row is None else self._state(name, row[0])

    def update_state(self, name: str, update: StateUpdate) -> LineageState:
        """Read, update and write the state in one transaction, the row locked meanwhile
        (FOR UPDATE): no other host's update is lost in between."""
        from psycopg.types.json import Jsonb

        validate_lineage_name(name)
        with self._db() as connection, connection.transaction():
            self._ensure_row(connection, name)
            row = connection.execute(
                f"SELECT state FROM {_T}lineages WHERE name = %s FOR UPDATE", (name,)
            ).fetchone()
            state = update(self._state(name, row[0] if row else {}))
            connection.execute(
                f"UPDATE {_T}lineages SET state = %s, changed_at = now() WHERE name = %s",
                (Jsonb(state.to_json()), name),
            )
        self._changed(name)
        return state

    @staticmethod
    def _ensure_row(connection: psycopg.Connection, name: str) -> None:
        connection.execute(
            f"INSERT INTO {_T}lineages (name, settings) VALUES (%s, '') ON CONFLICT DO NOTHING",
            (name,),
        )

    # -- versions ------------------------------------------------------------------------

    def versions(self, name: str) -> list[int]:
        validate_lineage_name(name)
        rows = self._all(f"SELECT version FROM {_T}versions WHERE name = %s ORDER BY 1", (name,))
        return [row[0] for row in rows]

    def live_version(self, name: str) -> int | None:
        validate_lineage_name(name)
        row = self._one(f"SELECT live_version FROM {_T}lineages WHERE name = %s", (name,))
        return None if row is None else row[0]

    def version_meta(self, name: str, version: int) -> dict[str, Any]:
        validate_lineage_name(name)
        row = self._one(
            f"SELECT meta FROM {_T}versions WHERE name = %s AND version = %s", (name, version)
        )
        if row is None or not isinstance(row[0], dict):
            raise StoreError(f"cannot read version {version} of {name!r} in {self.where}")
        return row[0]

    def read_version_file(self, name: str, version: int, filename: str) -> bytes | None:
        validate_lineage_name(name)
        row = self._one(
            f"SELECT cert, chain, key_encrypted, meta FROM {_T}versions "
            "WHERE name = %s AND version = %s",
            (name, version),
        )
        if row is None:
            return None
        cert, chain, sealed = bytes(row[0]), bytes(row[1]), bytes(row[2])
        files = {
            "cert.pem": lambda: cert,
            "chain.pem": lambda: chain,
            "fullchain.pem": lambda: cert + chain,
            "privkey.pem.enc": lambda: sealed,
            "privkey.pem": lambda: self._open(sealed, name, version),
            "meta.json": lambda: json.dumps(row[3], indent=2).encode(),
        }
        return files[filename]() if filename in files else None

    def _open(self, sealed: bytes, name: str, version: int) -> bytes:
        return self._sealer.open(sealed, f"the key of {name!r} version {version} in {self.where}")

    def version_info(self, name: str, version: int) -> CertInfo:
        known = self._infos.get((name, version))
        if known is None:
            known = self._info(name, version, self.version_meta(name, version))
        return known

    def _info(self, name: str, version: int, meta: Any) -> CertInfo:
        try:
            info = self._infos[name, version] = CertInfo.from_json(meta["certificate"])
            return info
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise StoreError(
                f"cannot read version {version} of {name!r} in {self.where}: {exc}"
            ) from None

    def live(self, name: str) -> tuple[int | None, CertInfo | None]:
        validate_lineage_name(name)
        row = self._one(
            f"SELECT l.live_version, v.meta FROM {_T}lineages l LEFT JOIN {_T}versions v "
            "ON v.name = l.name AND v.version = l.live_version WHERE l.name = %s",
            (name,),
        )
        if row is None or row[0] is None:
            return None, None
        return row[0], self._infos.get((name, row[0])) or self._info(name, row[0], row[1])

    def live_info(self, name: str) -> CertInfo | None:
        return self.live(name)[1]

    def read_live_file(self, name: str, filename: str) -> bytes:
        return self.read_live_files(name, filename)[0]

    def read_live_files(self, name: str, *filenames: str) -> list[bytes]:
        self.require(name)
        version = self.live_version(name)
        if version is None:
            raise NotFoundError(
                f"{name!r} has no certificate yet",
                "complete it with `certcli upload` (or issue one with `certcli issue`)",
            )
        found = [self.read_version_file(name, version, f) for f in filenames]
        return [data or b"" for data in found]

    def add_version(
        self,
        name: str,
        files: dict[str, bytes],
        meta: dict[str, Any],
        config: LineageSettings | None = None,
    ) -> int:
        """The version and (given) the settings in one transaction: the commit is the
        switch. Then this host's live/ follows."""
        import tomli_w
        from psycopg.types.json import Jsonb

        validate_lineage_name(name)
        cert, chain, key = files["cert.pem"], files["chain.pem"], files["privkey.pem"]
        sealed = self._sealer.seal(key)
        with self._db() as connection, connection.transaction():
            if config is not None:
                connection.execute(
                    f"INSERT INTO {_T}lineages (name, settings) VALUES (%s, %s) ON CONFLICT "
                    "(name) DO UPDATE SET settings = EXCLUDED.settings",
                    (name, tomli_w.dumps(config.to_toml())),
                )
            else:
                self._ensure_row(connection, name)
            connection.execute(f"SELECT 1 FROM {_T}lineages WHERE name = %s FOR UPDATE", (name,))
            row = connection.execute(
                f"SELECT coalesce(max(version), 0) + 1 FROM {_T}versions WHERE name = %s", (name,)
            ).fetchone()
            version = int(row[0]) if row else 1
            made = {**meta, "version": version, "host": self.host, "pid": os.getpid()}
            connection.execute(
                f"INSERT INTO {_T}versions (name, version, cert, chain, key_encrypted, meta, "
                "sha256) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                (name, version, cert, chain, sealed, Jsonb(made), _sha256(cert, chain, key)),
            )
            connection.execute(
                f"UPDATE {_T}lineages SET live_version = %s, changed_at = now() WHERE name = %s",
                (version, name),
            )
        self._changed(name)
        # The store has the version; a local write that fails is `sync`'s to redo.
        with contextlib.suppress(OSError, StoreError, LockedError):
            self.serve(name, version, files)
        return version

    def serve(self, name: str, version: int, files: dict[str, bytes]) -> None:
        """Write a version into this host's live/ (under this host's lock of the lineage's
        files: a sync and a renew on one host never write it at once)."""
        with self._local_locks._flock(
            self._local_locks.locks_dir / f"live-{name}.lock", f"the live files of {name!r}"
        ):
            self.local.put(name, version, files)

    def live_broken(self, name: str) -> bool:
        return False  # a version is whole in the database or not there at all

    def heal_live(self, name: str) -> tuple[str, bool] | None:
        return None  # this host's live/ is brought back by `certcli sync`

    # -- the pending key and CSR ---------------------------------------------------------

    def pending_dir(self, name: str) -> Path:
        return self.lineage_dir(name) / "pending"

    def has_pending(self, name: str) -> bool:
        validate_lineage_name(name)
        return self._one(f"SELECT 1 FROM {_T}pending WHERE name = %s", (name,)) is not None

    def write_pending(self, name: str, key_pem: bytes, csr_pem: bytes, meta: dict[str, Any]) -> str:
        from psycopg.types.json import Jsonb

        validate_lineage_name(name)
        sealed = self._sealer.seal(key_pem)
        with self._db() as connection, connection.transaction():
            self._ensure_row(connection, name)
            connection.execute(
                f"INSERT INTO {_T}pending (name, key_encrypted, csr, meta) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (name) DO UPDATE SET key_encrypted = EXCLUDED.key_encrypted, "
                "csr = EXCLUDED.csr, meta = EXCLUDED.meta",
                (name, sealed, csr_pem, Jsonb(meta)),
            )
        return f"{self.where}, encrypted, as the pending key of {name!r}"

    def read_pending(self, name: str) -> tuple[bytes, bytes, dict[str, Any]] | None:
        validate_lineage_name(name)
        row = self._one(
            f"SELECT key_encrypted, csr, meta FROM {_T}pending WHERE name = %s", (name,)
        )
        if row is None:
            return None
        key = self._sealer.open(bytes(row[0]), f"the pending key of {name!r} in {self.where}")
        return key, bytes(row[1]), dict(row[2])

    def clear_pending(self, name: str) -> None:
        validate_lineage_name(name)
        self._one(f"DELETE FROM {_T}pending WHERE name = %s RETURNING 1", (name,))

    # -- ACME accounts -------------------------------------------------------------------

    def account_urls(self) -> list[str]:
        return [r[0] for r in self._all(f"SELECT directory_url FROM {_T}accounts ORDER BY 1")]

    def read_account(self, directory_url: str) -> Account | None:
        row = self._one(
            f"SELECT account, key_encrypted FROM {_T}accounts WHERE directory_url = %s",
            (directory_url,),
        )
        if row is None:
            return None
        data = row[0]
        try:
            return Account(
                directory=data["directory"],
                uri=data["uri"],
                contact=tuple(data.get("contact", ())),
                terms_of_service=data.get("terms_of_service"),
                created=data["created"],
                key_pem=self._sealer.open(bytes(row[1]), f"the account key in {self.where}"),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise StoreError(
                f"cannot read the account at {directory_url} in {self.where}: {exc}"
            ) from None

    def write_account(self, account: Account) -> None:
        from psycopg.types.json import Jsonb

        self._one(
            f"INSERT INTO {_T}accounts (directory_url, account, key_encrypted) VALUES (%s, %s, %s) "
            "ON CONFLICT (directory_url) DO UPDATE SET account = EXCLUDED.account, "
            "key_encrypted = EXCLUDED.key_encrypted RETURNING 1",
            (account.directory, Jsonb(account.to_json()), self._sealer.seal(account.key_pem)),
        )

    def stage_account_key(self, account: Account, key_pem: bytes) -> None:
        self._one(
            f"UPDATE {_T}accounts SET staged_key_encrypted = %s WHERE directory_url = %s "
            "RETURNING 1",
            (self._sealer.seal(key_pem), account.directory),
        )

    def unstage_account_key(self, account: Account) -> None:
        self._one(
            f"UPDATE {_T}accounts SET staged_key_encrypted = NULL WHERE directory_url = %s "
            "RETURNING 1",
            (account.directory,),
        )

    def retire_account(self, account: Account) -> None:
        """Moved to retired_accounts in one transaction: the next issuance registers anew."""
        with self._db() as connection, connection.transaction():
            connection.execute(
                f"INSERT INTO {_T}retired_accounts (directory_url, account, key_encrypted) "
                f"SELECT directory_url, account, key_encrypted FROM {_T}accounts "
                "WHERE directory_url = %s",
                (account.directory,),
            )
            connection.execute(
                f"DELETE FROM {_T}accounts WHERE directory_url = %s", (account.directory,)
            )

    def read_directory(self, directory_url: str, max_age: float) -> dict[str, Any] | None:
        with contextlib.suppress(StoreError):
            row = self._one(
                f"SELECT directory, extract(epoch FROM now() - directory_fetched_at) "
                f"FROM {_T}accounts WHERE directory_url = %s",
                (directory_url,),
            )
            if row and isinstance(row[0], dict) and row[1] is not None:
                return row[0] if 0 <= float(row[1]) <= max_age else None
        return None

    def write_directory(self, directory_url: str, directory: dict[str, Any] | None) -> None:
        from psycopg.types.json import Jsonb

        with contextlib.suppress(StoreError):
            self._one(
                f"UPDATE {_T}accounts SET directory = %s, directory_fetched_at = "
                "CASE WHEN %s THEN now() END WHERE directory_url = %s RETURNING 1",
                (
                    None if directory is None else Jsonb(directory),
                    directory is not None,
                    directory_url,
                ),
            )

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

        if wait is None:
            try:
                wait = float(os.environ.get("CERTCLI_LOCK_WAIT", _LOCK_WAIT_DEFAULT))
            except ValueError:
                wait = _LOCK_WAIT_DEFAULT
        deadline = time.monotonic() + wait
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

    def delete_lineage(self, name: str) -> None:
        self.require(name)
        self._one(f"DELETE FROM {_T}lineages WHERE name = %s RETURNING 1", (name,))
        self._changed(name)
        with contextlib.suppress(OSError):
            self.local.remove(name)

    # -- the renew index (this host's cache) ---------------------------------------------

    def lineage_stamp(self, name: str) -> list[Any]:
        """The row's xmin (any change of settings, state or live version makes a new row
        version) and the live version: read for every lineage in one query."""
        if self._stamps is None or name not in self._stamps:
            self.names()
        return (self._stamps or {}).get(name, [None, None])

    def read_renew_index(self) -> dict[str, Any]:
        try:
            data = json.loads(read_trusted(self.root / "renew-index.json"))
        except (OSError, ValueError, StoreError):
            return {}
        ok = isinstance(data, dict) and data.get("format") == 1 and data.get("store") == self.where
        return data["lineages"] if ok and isinstance(data.get("lineages"), dict) else {}

    def write_renew_index(self, lineages: dict[str, Any]) -> None:
        with contextlib.suppress(OSError):
            payload = {"format": 1, "store": self.where, "lineages": lineages}
            atomic_write(self.root / "renew-index.json", json.dumps(payload).encode())

    # -- hosts -----------------------------------------------------------------------------

    def current(self) -> tuple[dict[str, int], dict[str, int]]:
        """Every lineage's live version and what this host was last recorded serving, in one
        statement, which notes this host's sync time too."""
        rows = self._all(
            f"WITH seen AS (INSERT INTO {_T}hosts (host, synced_at) VALUES (%s, now()) "
            "ON CONFLICT (host) DO UPDATE SET synced_at = now() RETURNING serving) "
            f"SELECT name, live_version, NULL FROM {_T}lineages "
            f"WHERE {_REAL} AND live_version IS NOT NULL "
            "UNION ALL SELECT NULL, NULL, serving FROM seen",
            (self.host,),
        )
        recorded = next((dict(s or {}) for n, _, s in rows if n is None), {})
        return {n: v for n, v, _ in rows if n is not None}, recorded

    def version_files(self, wanted: dict[str, int]) -> dict[str, dict[str, bytes]]:
        """The files of each (name, version), read in one query."""
        from certcli.storage.versions import version_files

        names = list(wanted)
        rows = self._all(
            f"SELECT v.name, v.cert, v.chain, v.key_encrypted FROM {_T}versions v "
            "JOIN unnest(%s::text[], %s::int[]) AS w(name, version) "
            "ON v.name = w.name AND v.version = w.version",
            (names, [wanted[n] for n in names]),
        )
        return {
            name: version_files(bytes(c), bytes(ch), self._open(bytes(k), name, wanted[name]))
            for name, c, ch, k in rows
        }

    def record_serving(self, serving: dict[str, int]) -> None:
        from psycopg.types.json import Jsonb

        self._one(
            f"INSERT INTO {_T}hosts (host, synced_at, serving) VALUES (%s, now(), %s) "
            "ON CONFLICT (host) DO UPDATE SET synced_at = now(), serving = EXCLUDED.serving "
            "RETURNING 1",
            (self.host, Jsonb(serving)),
        )

    def hosts(self) -> list[tuple[str, Any, dict[str, int]]]:
        """(host, last sync, what it serves) for every host that has synced."""
        return [
            (h, at, dict(serving or {}))
            for h, at, serving in self._all(
                f"SELECT host, synced_at, serving FROM {_T}hosts ORDER BY host"
            )
        ]
