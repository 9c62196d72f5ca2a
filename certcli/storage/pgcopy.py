"""Copying a file store into the PostgreSQL store (`certcli store copy --to URL`).

Everything is read from the file store first (it is only read), then written in one
transaction: a row that exists with other content is a conflict that rolls everything
back, and a row that exists with the same content is left alone, so a second copy changes
nothing. Keys are kept only encrypted (certcli/keycrypt.py), under the passphrase given.
Before the commit every version is read back and compared, and one key decrypted."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from certcli.errors import StoreError
from certcli.storage.postgres import LATEST, SCHEMA, StoreUrl, connected, schema_version

if TYPE_CHECKING:
    import psycopg

    from certcli.storage.protocol import Storage

#: One advisory lock key for copies: two copies into one database take turns.
COPY_LOCK = 0x6365_7274_636C_6902  # "certcli" + 2


@dataclass
class Version:
    number: int
    cert: bytes
    chain: bytes
    key: bytes  # plaintext, only in memory
    meta: dict[str, Any]

    @property
    def sha256(self) -> str:
        """SHA-256 hex of cert + chain + key (plaintext): what makes a version that one."""
        return hashlib.sha256(self.cert + self.chain + self.key).hexdigest()


class Pending(NamedTuple):
    """The key and CSR `csr` made, waiting for `upload` (equal to read_pending's tuple)."""

    key: bytes  # plaintext, only in memory
    csr: bytes
    meta: dict[str, Any]


@dataclass
class Lineage:
    name: str
    settings: str  # lineage.toml's text, as certcli writes it
    state: dict[str, Any]
    live_version: int | None
    versions: list[Version] = field(default_factory=list)
    pending: Pending | None = None


@dataclass
class AccountRow:
    directory_url: str
    account: dict[str, Any]  # without the key
    key: bytes
    directory: dict[str, Any] | None


@dataclass
class Snapshot:
    """What the PostgreSQL store keeps, as read from the file store."""

    lineages: list[Lineage]
    accounts: list[AccountRow]
    installation_id: str | None  # None: the file store has made none yet

    def copied(self, unchanged: bool) -> Copied:
        return Copied(
            len(self.lineages),
            sum(len(lineage.versions) for lineage in self.lineages),
            len(self.accounts),
            sum(lineage.pending is not None for lineage in self.lineages),
            unchanged,
        )


@dataclass(frozen=True)
class Copied:
    lineages: int
    versions: int
    accounts: int
    pending: int  # keys waiting for their certificate
    unchanged: bool  # nothing was written: the database held it all already


def read_store(store: Storage, passphrase: bytes) -> Snapshot:
    """Everything a store keeps, read through the Storage protocol (the file store for
    `--to`, the PostgreSQL store for `--from`); nothing is written."""
    import tomli_w

    from certcli.keycrypt import decrypt

    lineages = []
    for name in store.names():
        settings = tomli_w.dumps(store.read_settings(name).to_toml())
        state = json.loads(json.dumps(store.read_lineage_state(name).to_json()))
        lineage = Lineage(name, settings, state, store.live_version(name))
        waiting = store.read_pending(name)
        lineage.pending = None if waiting is None else Pending(*waiting)
        for number in store.versions(name):
            files = [store.read_version_file(name, number, f) for f in ("cert.pem", "chain.pem")]
            key = store.read_version_file(name, number, "privkey.pem")
            if key is None:
                sealed = store.read_version_file(name, number, "privkey.pem.enc")
                if sealed is not None:
                    key = decrypt(sealed, passphrase, f"the key of {name!r} version {number}")
            if files[0] is None or key is None:
                raise StoreError(
                    f"version {number} of {name!r} is not whole in the file store",
                    "`certcli renew` repairs the live version; copy again after",
                )
            meta = store.version_meta(name, number)
            lineage.versions.append(Version(number, files[0], files[1] or b"", key, meta))
        lineages.append(lineage)
    accounts = []
    for url in store.account_urls():
        account = store.read_account(url)
        if account is None:
            continue
        kept = store.read_directory(url, math.inf)  # a cache: copied as kept, however old
        accounts.append(AccountRow(url, account.to_json(), account.key_pem, kept))
    # made on first use: a file store that has none yet keeps having none (it is only read)
    made = store.shared or (store.root / "installation-id").exists()
    return Snapshot(lineages, accounts, store.installation_id() if made else None)


def copy_to(url: StoreUrl, snapshot: Snapshot, passphrase: bytes) -> Copied:
    """Write what was read into the database in one transaction; StoreError (nothing
    written) for a schema not at this certcli's version, or for a conflicting row."""
    with connected(url) as connection, connection.transaction():
        found = schema_version(connection)
        if found != LATEST:
            raise StoreError(
                f"the PostgreSQL store at {url.shown} has schema version {found}, and this "
                f"certcli writes version {LATEST}",
                "run `certcli store migrate` first"
                if found < LATEST
                else "upgrade certcli on this host",
            )
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (COPY_LOCK,))
        writes = 0
        if snapshot.installation_id is not None:
            writes += _copy_installation_id(connection, url, snapshot.installation_id)
        for lineage in snapshot.lineages:
            writes += _copy_lineage(connection, url, lineage, passphrase)
        for account in snapshot.accounts:
            writes += _copy_account(connection, url, account, passphrase)
        _verify(connection, url, snapshot.lineages, passphrase)
    return snapshot.copied(writes == 0)


def _conflict(url: StoreUrl, what: str) -> StoreError:
    return StoreError(
        f"{what} exists in the PostgreSQL store at {url.shown} with other content: "
        "nothing was copied",
        "compare the two stores; delete the row, or copy into another database",
    )


def _copy_installation_id(connection: psycopg.Connection, url: StoreUrl, value: str) -> int:
    row = connection.execute(
        f"SELECT value FROM {SCHEMA}.store WHERE key = 'installation_id'"
    ).fetchone()
    if row is None:
        connection.execute(
            f"INSERT INTO {SCHEMA}.store (key, value) VALUES ('installation_id', %s)", (value,)
        )
        return 1
    if row[0] != value:
        raise _conflict(url, "the installation id")
    return 0


def _copy_lineage(
    connection: psycopg.Connection, url: StoreUrl, lineage: Lineage, passphrase: bytes
) -> int:
    from psycopg.types.json import Jsonb

    from certcli.keycrypt import encrypt

    writes = 0
    row = connection.execute(
        f"SELECT settings, state, live_version FROM {SCHEMA}.lineages WHERE name = %s FOR UPDATE",
        (lineage.name,),
    ).fetchone()
    if row is None:
        # live_version last: the versions it names must exist first
        connection.execute(
            f"INSERT INTO {SCHEMA}.lineages (name, settings, state) VALUES (%s, %s, %s)",
            (lineage.name, lineage.settings, Jsonb(lineage.state)),
        )
        writes += 1
    elif (row[0], row[1], row[2]) != (lineage.settings, lineage.state, lineage.live_version):
        raise _conflict(url, f"lineage {lineage.name!r}")
    kept = {
        number: (sha, meta)
        for number, sha, meta in connection.execute(
            f"SELECT version, sha256, meta FROM {SCHEMA}.versions WHERE name = %s",
            (lineage.name,),
        ).fetchall()
    }
    numbers = {version.number for version in lineage.versions}
    extra = sorted(set(kept) - numbers)
    if extra:
        raise _conflict(url, f"version {extra[0]} of {lineage.name!r}, which the file store lacks,")
    for version in lineage.versions:
        if version.number in kept:
            if kept[version.number] != (version.sha256, version.meta):
                raise _conflict(url, f"version {version.number} of {lineage.name!r}")
            continue
        connection.execute(
            f"INSERT INTO {SCHEMA}.versions (name, version, cert, chain, key_encrypted, meta, "
            "sha256) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (
                lineage.name,
                version.number,
                version.cert,
                version.chain,
                encrypt(version.key, passphrase),
                Jsonb(version.meta),
                version.sha256,
            ),
        )
        writes += 1
    if row is None and lineage.live_version is not None:
        connection.execute(
            f"UPDATE {SCHEMA}.lineages SET live_version = %s WHERE name = %s",
            (lineage.live_version, lineage.name),
        )
    return writes + _copy_pending(connection, url, lineage, passphrase)


def _copy_pending(
    connection: psycopg.Connection, url: StoreUrl, lineage: Lineage, passphrase: bytes
) -> int:
    from psycopg.types.json import Jsonb

    from certcli.keycrypt import decrypt, encrypt

    row = connection.execute(
        f"SELECT key_encrypted, csr, meta FROM {SCHEMA}.pending WHERE name = %s FOR UPDATE",
        (lineage.name,),
    ).fetchone()
    what = f"the pending key of {lineage.name!r}"
    waiting = lineage.pending
    if waiting is None:
        if row is not None:
            raise _conflict(url, f"{what}, which the file store lacks,")
        return 0
    if row is None:
        connection.execute(
            f"INSERT INTO {SCHEMA}.pending (name, key_encrypted, csr, meta) "
            "VALUES (%s, %s, %s, %s)",
            (lineage.name, encrypt(waiting.key, passphrase), waiting.csr, Jsonb(waiting.meta)),
        )
        return 1
    if (bytes(row[1]), row[2]) != (waiting.csr, waiting.meta) or decrypt(
        bytes(row[0]), passphrase, what
    ) != waiting.key:
        raise _conflict(url, what)
    return 0


def _copy_account(
    connection: psycopg.Connection, url: StoreUrl, account: AccountRow, passphrase: bytes
) -> int:
    from psycopg.types.json import Jsonb

    from certcli.keycrypt import decrypt, encrypt

    row = connection.execute(
        f"SELECT account, key_encrypted FROM {SCHEMA}.accounts WHERE directory_url = %s FOR UPDATE",
        (account.directory_url,),
    ).fetchone()
    what = f"the account at {account.directory_url}"
    if row is None:
        connection.execute(
            f"INSERT INTO {SCHEMA}.accounts (directory_url, account, key_encrypted, directory, "
            "directory_fetched_at) VALUES (%s, %s, %s, %s, %s)",
            (
                account.directory_url,
                Jsonb(account.account),
                encrypt(account.key, passphrase),
                None if account.directory is None else Jsonb(account.directory),
                None if account.directory is None else _now(),
            ),
        )
        return 1
    # the key is compared decrypted: each encryption has its own salt and nonce
    if row[0] != account.account or decrypt(bytes(row[1]), passphrase, what) != account.key:
        raise _conflict(url, what)
    return 0  # the kept directory is a cache: the database's stays


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _verify(
    connection: psycopg.Connection, url: StoreUrl, lineages: list[Lineage], passphrase: bytes
) -> None:
    """Read every version back before the commit; decrypt one key (scrypt is slow by
    design) to prove that the passphrase opens what was written."""
    from certcli.keycrypt import decrypt

    opened = False
    for lineage in lineages:
        rows = {
            number: (bytes(cert), bytes(chain), bytes(sealed), sha)
            for number, cert, chain, sealed, sha in connection.execute(
                f"SELECT version, cert, chain, key_encrypted, sha256 FROM {SCHEMA}.versions "
                "WHERE name = %s",
                (lineage.name,),
            ).fetchall()
        }
        for version in lineage.versions:
            cert, chain, sealed, sha = rows.get(version.number, (b"", b"", b"", ""))
            what = f"version {version.number} of {lineage.name!r}"
            if (cert, chain, sha) != (version.cert, version.chain, version.sha256):
                raise StoreError(f"{what} reads back otherwise from {url.shown}: nothing copied")
            if not opened:
                if decrypt(sealed, passphrase, f"{what} in {url.shown}") != version.key:
                    raise StoreError(f"the key of {what} reads back otherwise: nothing copied")
                opened = True
