"""The PostgreSQL store's database: its URL (never with a password in it), the connection,
and the schema certcli creates and migrates itself, versioned and idempotent
(`certcli store migrate`). The lineages' rows follow the schema below; the store that reads
and writes them comes next.

psycopg is imported here and in pgcopy.py (`store copy`) only, and only when a PostgreSQL
store is used."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from certcli.errors import StoreError, UsageError

if TYPE_CHECKING:
    import psycopg

#: The schema (namespace) that holds certcli's tables, so that they never meet others'.
SCHEMA = "certcli"

#: One advisory lock key for migrations: two hosts migrating at once take turns.
MIGRATION_LOCK = 0x6365_7274_636C_6901  # "certcli" + 1

#: Each migration, by the version it brings the schema to. Never edited once released: a
#: change is a new migration.
MIGRATIONS: dict[int, str] = {
    1: f"""
CREATE TABLE {SCHEMA}.store (
    key text PRIMARY KEY,
    value text NOT NULL
);
CREATE TABLE {SCHEMA}.lineages (
    name text PRIMARY KEY,
    settings text NOT NULL,
    state jsonb NOT NULL DEFAULT '{{}}',
    live_version integer,
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE {SCHEMA}.versions (
    name text NOT NULL REFERENCES {SCHEMA}.lineages ON DELETE CASCADE,
    version integer NOT NULL CHECK (version > 0),
    cert bytea NOT NULL,
    chain bytea NOT NULL,
    key_encrypted bytea NOT NULL,
    meta jsonb NOT NULL,
    sha256 text NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE {SCHEMA}.accounts (
    directory_url text PRIMARY KEY,
    account jsonb NOT NULL,
    key_encrypted bytea NOT NULL,
    staged_key_encrypted bytea,
    directory jsonb,
    directory_fetched_at timestamptz
);
CREATE TABLE {SCHEMA}.hosts (
    host text PRIMARY KEY,
    synced_at timestamptz NOT NULL,
    serving jsonb NOT NULL DEFAULT '{{}}'
);
""",
    2: f"""
CREATE TABLE {SCHEMA}.pending (
    name text PRIMARY KEY REFERENCES {SCHEMA}.lineages ON DELETE CASCADE,
    key_encrypted bytea NOT NULL,
    csr bytea NOT NULL,
    meta jsonb NOT NULL
);
CREATE TABLE {SCHEMA}.retired_accounts (
    directory_url text NOT NULL,
    retired_at timestamptz NOT NULL DEFAULT now(),
    account jsonb NOT NULL,
    key_encrypted bytea NOT NULL
);
""",
}

LATEST = max(MIGRATIONS)


@dataclass(frozen=True)
class StoreUrl:
    """A PostgreSQL store's URL, checked: `postgresql://USER@HOST:PORT/DB[?options]`."""

    url: str

    @classmethod
    def parse(cls, value: str, source: str) -> StoreUrl:
        """The URL from `source` (`[store] url`, `--url`…); a usage error when it is not a
        PostgreSQL URL or carries a password, which belongs in PGPASSWORD or a passfile."""
        text = value.strip()
        if any(ord(c) < 32 or ord(c) == 127 for c in text):
            raise UsageError(f"{source} holds a control character", "give a postgresql:// URL")
        parts = urlsplit(text)
        if parts.scheme not in ("postgresql", "postgres") or not parts.netloc:
            raise UsageError(
                f"{source} is not a PostgreSQL URL",
                "write it as postgresql://USER@HOST:PORT/DATABASE",
            )
        query = parse_qs(parts.query)
        if parts.password is not None or "password" in query:
            raise UsageError(
                f"{source} holds a password, which others can read there",
                "give the password in PGPASSWORD or a passfile (PGPASSFILE, ~/.pgpass), "
                "and the URL without it",
            )
        return cls(text)

    @property
    def shown(self) -> str:
        """The URL as messages show it: host, port and database (no options)."""
        parts = urlsplit(self.url)
        user = f"{parts.username}@" if parts.username else ""
        return f"postgresql://{user}{parts.hostname or ''}{_port(parts.port)}{parts.path}"


def _port(port: int | None) -> str:
    return f":{port}" if port else ""


def open_connection(
    url: StoreUrl, timeout: float = 5, application_name: str = "certcli"
) -> psycopg.Connection:
    """A connection to the store's database, in autocommit (each statement its own
    transaction unless in `connection.transaction()`); one clear StoreError when there is
    none (the server down, a wrong password, no such database)."""
    import psycopg

    try:
        return psycopg.connect(
            url.url,
            connect_timeout=max(1, int(timeout)),
            autocommit=True,
            application_name=application_name[:63],
        )
    except psycopg.Error as exc:
        raise StoreError(
            f"cannot reach the PostgreSQL store at {url.shown}: {reason(exc)}",
            "check that the server runs, [store] url, and the password (PGPASSWORD or a passfile)",
        ) from None


@contextlib.contextmanager
def connected(url: StoreUrl, timeout: float = 5) -> Iterator[psycopg.Connection]:
    """A connection for one piece of work (`store migrate`, `store copy`)."""
    import psycopg

    connection = open_connection(url, timeout)
    try:
        with connection:
            yield connection
    except psycopg.Error as exc:
        raise StoreError(f"the PostgreSQL store at {url.shown} failed: {reason(exc)}") from None
    finally:
        connection.close()


def reason(exc: Exception) -> str:
    """libpq's words, first line only (it may quote the server's full message)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    found = lines[-1] if lines and lines[-1].startswith("FATAL") else (lines or ["failed"])[0]
    return found.removeprefix("FATAL:").strip()[:200]


def schema_version(connection: psycopg.Connection) -> int:
    """The schema's version in this database (0: certcli has never migrated it)."""
    row = connection.execute(
        "SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.schema_version",)
    ).fetchone()
    if not row or not row[0]:
        return 0
    found = connection.execute(f"SELECT max(version) FROM {SCHEMA}.schema_version").fetchone()
    return int(found[0] or 0) if found else 0


@dataclass(frozen=True)
class Migrated:
    before: int
    after: int

    @property
    def applied(self) -> list[int]:
        return list(range(self.before + 1, self.after + 1))


def migrate(url: StoreUrl) -> Migrated:
    """Bring the schema to the latest version, in one transaction under an advisory lock
    (hosts migrating at once take turns, and the second finds nothing to do). A database
    newer than this certcli is refused, never changed."""
    with connected(url) as connection, connection.transaction():
        connection.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        connection.execute(
            f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_version ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        before = schema_version(connection)
        if before > LATEST:
            raise StoreError(
                f"the PostgreSQL store at {url.shown} has schema version {before}, newer "
                f"than this certcli knows ({LATEST})",
                "upgrade certcli on this host",
            )
        for version in range(before + 1, LATEST + 1):
            connection.execute(MIGRATIONS[version])
            connection.execute(
                f"INSERT INTO {SCHEMA}.schema_version (version) VALUES (%s)", (version,)
            )
    return Migrated(before, LATEST)
