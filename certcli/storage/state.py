"""lineage.toml and state.json."""

from __future__ import annotations

import json
import tomllib

from certcli.errors import StoreError
from certcli.models import (
    STATE_TYPES,
    LineageSettings,
    LineageState,
    StateUpdate,
    is_state_value,
)
from certcli.storage.fsio import atomic_write, make_dirs, store_error
from certcli.storage.status_cache import StatusCacheStore
from certcli.trust import check_path, read_trusted

_KIND_NAMES = {str: "a string", dict: "a table", int: "a number"}


class StateStore(StatusCacheStore):
    """A lineage's settings and state, each one file replaced whole."""

    def read_settings(self, name: str) -> LineageSettings:
        path = self._path(name, "lineage.toml")
        self.check_trusted()
        try:
            # Its hooks run as certcli's user: only a directory and a file nobody else can
            # change are read (a stat and an fstat, cheap enough for `status` over thousands).
            check_path(self._path(name))
            data = tomllib.loads(read_trusted(path).decode())
            settings = LineageSettings.from_toml(data, path)
        except (FileNotFoundError, NotADirectoryError):
            self.require(name)
            raise
        except (OSError, ValueError, TypeError) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from None
        if settings.name != name:
            raise StoreError(f"cannot read {path}: its name {settings.name!r} is not {name!r}")
        return settings

    def write_settings(self, settings: LineageSettings) -> None:
        try:
            self._write_config_file(settings)
        except OSError as exc:
            raise store_error("write", self.lineage_dir(settings.name), exc) from None

    def _write_config_file(self, settings: LineageSettings) -> None:
        import tomli_w

        directory = self.lineage_dir(settings.name)
        make_dirs(directory)
        atomic_write(directory / "lineage.toml", tomli_w.dumps(settings.to_toml()).encode())

    def state_where(self, name: str) -> str:
        return self._path(name, "state.json")

    def read_lineage_state(self, name: str) -> LineageState:
        path = self._path(name, "state.json")
        try:
            # it names URLs renew fetches (ARI) and what an order replaces: nobody else's
            state = json.loads(read_trusted(path))
        except FileNotFoundError:
            return LineageState()
        except (OSError, ValueError) as exc:
            raise StoreError(f"cannot read {path}: {exc}") from None
        if not isinstance(state, dict):
            raise StoreError(f"cannot read {path}: not a JSON object", "remove the file")
        for key, kind in STATE_TYPES.items():
            value = state.get(key)
            if value is not None and not is_state_value(key, value):
                raise StoreError(
                    f"cannot read {path}: {key} is {value!r}, not {_KIND_NAMES[kind]}",
                    "remove the key (or the file)",
                )
        return LineageState.from_json(state)

    def update_state(self, name: str, update: StateUpdate) -> LineageState:
        """Read state.json, apply `update`, write the result whole; under the lineage lock,
        taken here unless this thread holds it already (so no other process's update is
        lost in between). Returns the state written."""
        with self._holding(name):
            state = update(self.read_lineage_state(name))
            path = self.lineage_dir(name) / "state.json"
            data = json.dumps(state.to_json(), indent=2, sort_keys=True).encode()
            try:
                atomic_write(path, data)
            except OSError as exc:
                raise store_error("write", path, exc) from None
            return state
