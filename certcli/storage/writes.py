"""Writing a new version of a lineage, switching `live` to it, and removing leftovers."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

from certcli.errors import StoreError
from certcli.models import LineageSettings
from certcli.storage import fsio
from certcli.storage.fsio import (
    DIR_MODE,
    FILE_MODE,
    KEY_MODE,
    atomic_write,
    fsync_dir,
    make_dirs,
    read_if_exists,
    store_error,
)
from certcli.storage.versions import VERSION_FILES, VersionReader


class VersionWriter(VersionReader):
    """New versions, written whole under a temporary name; `live` switches by rename."""

    def add_version(
        self,
        name: str,
        files: dict[str, bytes],
        meta: dict[str, Any],
        config: LineageSettings | None = None,
    ) -> int:
        """Write a complete new version and switch `live` to it; return its number.

        The caller holds the lineage lock. `config`, when given, becomes lineage.toml before
        the switch: the switch is the commit, so a failure (a full disk) leaves `live` and
        lineage.toml as they were, and a kill between the two leaves the new settings with
        the old certificate, which the same command, repeated, completes (settings after the
        switch would leave, say, an uploaded certificate in a lineage still renewed by ACME).
        """
        directory = self.lineage_dir(name)
        archive = directory / "archive"
        self._infos = {k: v for k, v in self._infos.items() if k[0] != name}
        passphrase = self._passphrase()
        sealed = None
        if passphrase is not None:
            from certcli.keycrypt import encrypt

            sealed = encrypt(files["privkey.pem"], passphrase)
        settings = directory / "lineage.toml"
        try:
            previous = read_if_exists(settings) if config is not None else None
            make_dirs(archive)
            self._repair(name)
            version = max(self.versions(name), default=0) + 1
            partial = archive / f".{version:04d}.partial.{os.getpid()}"
            os.mkdir(partial, DIR_MODE)
            for filename in VERSION_FILES:
                mode = KEY_MODE if filename == "privkey.pem" else FILE_MODE
                fsio.write_new(partial / filename, files[filename], mode)
            if sealed is not None:
                fsio.write_new(partial / "privkey.pem.enc", sealed, KEY_MODE)
            fsio.write_new(
                partial / "meta.json",
                json.dumps({**meta, "version": version}, indent=2).encode(),
                FILE_MODE,
            )
            fsync_dir(partial)
        except OSError as exc:
            raise store_error("write a new version in", archive, exc) from None
        final = archive / f"{version:04d}"
        try:
            os.rename(partial, final)
            fsync_dir(archive)
            if config is not None:
                self._write_config_file(config)
            self._switch_live(directory, version)
        except OSError as exc:
            # switched, and only a later fsync failed: the new version stands
            if self._live_target(directory) != f"archive/{version:04d}":
                self._undo_version(final, settings, previous, config is not None)
                raise store_error("write a new version in", archive, exc) from None
        if sealed is not None:
            try:
                self._strip_plain_keys(name, keep=version)
            except OSError as exc:
                raise store_error("remove older plaintext keys in", archive, exc) from None
        return version

    @staticmethod
    def _live_target(directory: Path) -> str | None:
        try:
            return os.readlink(directory / "live")
        except OSError:
            return None

    @staticmethod
    def _undo_version(final: Path, settings: Path, previous: bytes | None, wrote: bool) -> None:
        """Best effort, after a failed switch: the version never made live goes, and
        lineage.toml gets its earlier content back (or goes, for a lineage that had none)."""
        shutil.rmtree(final, ignore_errors=True)
        if not wrote:
            return
        with contextlib.suppress(OSError):
            if previous is None:
                settings.unlink(missing_ok=True)
            elif read_if_exists(settings) != previous:
                atomic_write(settings, previous)

    def _strip_plain_keys(self, name: str, keep: int) -> None:
        """With encryption on, only the live version keeps a plaintext key (for the web
        server); older ones keep only their encrypted copy."""
        for version in self.versions(name):
            directory = self.lineage_dir(name) / "archive" / f"{version:04d}"
            if version != keep and (directory / "privkey.pem.enc").exists():
                with contextlib.suppress(FileNotFoundError):
                    (directory / "privkey.pem").unlink()

    def _switch_live(self, directory: Path, version: int) -> Path | None:
        """Point `live` at a version, by rename. A directory where `live` should be (a copy
        made by hand, say) cannot be renamed over: it is moved aside, and returned."""
        tmp = directory / f".live.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(f"archive/{version:04d}", tmp)
        live = directory / "live"
        kept = None
        if live.exists() and not live.is_symlink():  # a directory, or a file: kept
            kept = self._move_aside(live)
        os.replace(tmp, live)
        fsync_dir(directory)
        return kept

    def _repair(self, name: str) -> list[Path]:
        """Remove what an interrupted write left behind; return what was removed."""
        removed: list[Path] = []
        directory = self.lineage_dir(name)
        for parent in (directory, directory / "archive", directory / "pending"):
            try:
                entries = os.listdir(parent)
            except FileNotFoundError:
                continue
            for entry in entries:
                if (
                    entry.startswith(".pending-old.partial.")
                    and not self.pending_dir(name).exists()
                ):
                    # killed while replacing pending/: the earlier key comes back
                    os.rename(parent / entry, self.pending_dir(name))
                    continue
                if entry.startswith(".") and (".partial." in entry or entry.endswith(".tmp")):
                    path = parent / entry
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
                    removed.append(path)
        return removed

    @staticmethod
    def _move_aside(path: Path) -> Path:
        for n in range(1, 1000):
            target = path.with_name(f"{path.name}.broken-{n}")
            if not os.path.lexists(target):
                os.rename(path, target)
                return target
        raise FileExistsError(errno.EEXIST, "too many earlier copies", str(path))

    def delete_lineage(self, name: str) -> None:
        directory = self.require(name)
        doomed = self.certs_dir / f".{name}.deleted.partial.{os.getpid()}"
        try:
            os.rename(directory, doomed)
            fsync_dir(self.certs_dir)
            shutil.rmtree(doomed)
        except OSError as exc:
            raise StoreError(f"cannot delete {directory}: {exc.strerror}") from None
        self.remove_lineage_lock(name)
