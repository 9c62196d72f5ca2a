"""The PostgreSQL store's versions and pending keys (the store itself: pgstore.py)."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certcli.domains import validate_lineage_name
from certcli.errors import LockedError, NotFoundError, StoreError
from certcli.models import (
    CertInfo,
    LineageSettings,
)
from certcli.storage.pgbase import _T, _sha256
from certcli.storage.pglineages import PgLineages

if TYPE_CHECKING:
    pass


class PgVersions(PgLineages):
    """The versions of each lineage, and the pending key and CSR."""

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
