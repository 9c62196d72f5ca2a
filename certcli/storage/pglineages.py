"""The PostgreSQL store's lineages (the store itself: pgstore.py)."""

from __future__ import annotations

import contextlib
import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from certcli.domains import validate_lineage_name
from certcli.errors import NotFoundError, StoreError
from certcli.models import (
    STATE_TYPES,
    LineageSettings,
    LineageState,
    StateUpdate,
    is_state_value,
)
from certcli.storage.fsio import atomic_write
from certcli.storage.pgbase import _REAL, _T, PgBase
from certcli.storage.status_cache import NoStatusCache
from certcli.trust import read_trusted

if TYPE_CHECKING:
    import psycopg


class PgLineages(PgBase):
    """The lineages: their names, settings and state, and the renew index's stamps."""

    def names(self) -> list[str]:
        # One JSON text, not a row per lineage: psycopg decodes each value in Python
        # (10,000 rows of three: ~90 ms; this: ~20 ms). The stamps of `renew`'s index come
        # from the same one question.
        row = self._one(
            "SELECT coalesce(json_agg(json_build_array(name, xmin::text, live_version) "
            f"ORDER BY name), '[]')::text FROM {_T}lineages WHERE {_REAL}"
        )
        rows = json.loads(row[0]) if row else []
        self._stamps = {name: [xmin, live] for name, xmin, live in rows}
        return [name for name, _, _ in rows]

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

    def state_where(self, name: str) -> str:
        return f"the state of {name!r} in {self.where}"

    def _state(self, name: str, data: Any) -> LineageState:
        where = self.state_where(name)
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

    # A database's status reads its lineages in few queries; it keeps no status cache.
    def report_stamp(self, name: str) -> str | None:
        return None

    def status_cache(self) -> NoStatusCache:
        return NoStatusCache()
