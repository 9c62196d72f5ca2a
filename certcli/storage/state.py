"""lineage.toml, state.json and the renew index."""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from os import readlink, stat
from typing import Any

from certcli.errors import StoreError
from certcli.models import (
    STATE_TYPES,
    LineageSettings,
    LineageState,
    StateUpdate,
    is_state_value,
)
from certcli.storage.fsio import atomic_write, make_dirs, store_error
from certcli.storage.locks import LockingStore
from certcli.trust import check_path, read_trusted

RENEW_INDEX = "renew-index.json"

_KIND_NAMES = {str: "a string", dict: "a table", int: "a number"}


class StateStore(LockingStore):
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

    # -- the renew index: what `renew` found not due, and until when ---------------------

    def lineage_stamp(self, name: str) -> str:
        """What changes whenever a lineage's settings, state or live version change: the
        inode, mtime and size of lineage.toml and state.json (certcli replaces files by
        rename, an editor writes them), where `live` points, the files of that version (a
        removed one, its meta.json) so that `renew` heals what `status` shows Damaged.

        One string, as `renew` takes it of every lineage and its index keeps 100,000 of
        them: five system calls, paths joined by hand (os.path.join costs as much as a
        stat), nothing else."""
        base = self._path(name) + "/"
        parts: list[str] = []
        for path in (base + "lineage.toml", base + "state.json"):
            try:
                st = stat(path)
                parts.append(f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}")
            except OSError:
                parts.append("-")
        live = base + "live"
        try:
            parts.append(readlink(live))
            st = stat(live)  # the version it points at, gone or not, and its files
            parts.append(f"{st.st_ino}:{st.st_mtime_ns}")
        except OSError:
            parts.append("-")
        try:  # a live version's meta.json garbled in place (status: Damaged) is healed
            st = stat(live + "/meta.json")
            parts.append(f"{st.st_ino}:{st.st_mtime_ns}:{st.st_size}")
        except OSError:
            parts.append("-")
        return "|".join(parts)

    def read_renew_index(self) -> dict[str, Any]:
        """The index `renew` keeps (a cache: anything odd in it means an empty one)."""
        try:
            data = json.loads(read_trusted(os.path.join(self.root, RENEW_INDEX)))
        except (OSError, ValueError, StoreError):  # another user's index is no index
            return {}
        ok = isinstance(data, dict) and data.get("format") == 1
        return data["lineages"] if ok and isinstance(data.get("lineages"), dict) else {}

    def write_renew_index(self, lineages: dict[str, Any]) -> None:
        """Best effort: without the index `renew` reads every lineage, and is still right."""
        with contextlib.suppress(OSError):
            payload = {"format": 1, "lineages": lineages}
            atomic_write(self.root / RENEW_INDEX, json.dumps(payload).encode())
