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
import json
from typing import TYPE_CHECKING, Any

from certcli.errors import StoreError
from certcli.models import (
    Account,
)
from certcli.storage.pgbase import _REAL, _T
from certcli.storage.pgversions import PgVersions

if TYPE_CHECKING:
    pass


class PostgresStore(PgVersions):
    """The Storage protocol on a PostgreSQL database; `host` names this host in the store."""

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
        key = self._sealer.open(bytes(row[1]), f"the account key in {self.where}")
        try:
            return Account.from_json(row[0], key)
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

    # -- hosts -----------------------------------------------------------------------------

    def current(self) -> tuple[dict[str, int], dict[str, int]]:
        """Every lineage's live version and what this host was last recorded serving, in one
        statement, which notes this host's sync time too."""
        # two JSON texts, one row: decoded by json.loads, not value by value by psycopg
        row = self._one(
            f"WITH seen AS (INSERT INTO {_T}hosts (host, synced_at) VALUES (%s, now()) "
            "ON CONFLICT (host) DO UPDATE SET synced_at = now() RETURNING serving) "
            "SELECT (SELECT coalesce(json_object_agg(name, live_version), '{}')::text "
            f"FROM {_T}lineages WHERE {_REAL} AND live_version IS NOT NULL), "
            "(SELECT serving::text FROM seen)",
            (self.host,),
        )
        current, recorded = (json.loads(t or "{}") for t in (row or (None, None)))
        return current, recorded if isinstance(recorded, dict) else {}

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
