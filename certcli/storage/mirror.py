"""This host's copy of each lineage's current version, for its web server (a PostgreSQL
store keeps the versions; a web server reads files).

`live/<name>` is a link to `archive/<name>/NNNN`, a directory with certbot's four names,
switched by rename like the file store's `live`: a reader sees the old version or the new
one, whole. The version before stays until the next switch (a server that has not reloaded
yet keeps reading it)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from certcli.domains import is_lineage_name, validate_lineage_name
from certcli.storage import fsio
from certcli.storage.fsio import DIR_MODE, FILE_MODE, KEY_MODE, fsync_dir, make_dirs

_TARGET = re.compile(r"\.\./archive/[^/]+/([0-9]{4,})")


class LocalLive:
    """`live/` and `archive/` under the config dir: what this host serves."""

    def __init__(self, root: Path) -> None:
        self.live_dir = root / "live"
        self.archive_dir = root / "archive"

    def path(self, name: str) -> Path:
        """Where the web server reads the lineage's files."""
        return self.live_dir / validate_lineage_name(name)

    def serving(self, name: str) -> int | None:
        """The version this host serves; None for none (or for a `live` certcli did not
        make, which the next `put` replaces)."""
        try:
            match = _TARGET.fullmatch(os.readlink(self.path(name)))
        except OSError:
            return None
        return int(match.group(1)) if match else None

    def all_serving(self) -> dict[str, int | None]:
        """`serving` of every lineage in live/, read as one pass: plain strings, not a
        Path and a name check per link (10,000 links: ~40 ms instead of ~150)."""
        try:
            entries = os.listdir(self.live_dir)
        except FileNotFoundError:
            return {}
        base = f"{self.live_dir}{os.sep}"
        found: dict[str, int | None] = {}
        for entry in sorted(entries):
            if not is_lineage_name(entry):
                continue
            try:
                match = _TARGET.fullmatch(os.readlink(base + entry))
            except OSError:
                match = None
            found[entry] = int(match.group(1)) if match else None
        return found

    def names(self) -> list[str]:
        try:
            entries = os.listdir(self.live_dir)
        except FileNotFoundError:
            return []
        return sorted(e for e in entries if is_lineage_name(e))

    def put(self, name: str, version: int, files: dict[str, bytes]) -> None:
        """Write the version's files and switch `live/<name>` to them; older copies but the
        one before go."""
        versions = self.archive_dir / validate_lineage_name(name)
        final = versions / f"{version:04d}"
        make_dirs(self.live_dir)
        make_dirs(versions)
        if not self._whole(final, files):
            partial = versions / f".{version:04d}.partial.{os.getpid()}"
            shutil.rmtree(partial, ignore_errors=True)
            os.mkdir(partial, DIR_MODE)
            for filename, data in files.items():
                fsio.write_new(
                    partial / filename, data, KEY_MODE if "privkey" in filename else FILE_MODE
                )
            fsync_dir(partial)
            shutil.rmtree(final, ignore_errors=True)  # one left whole but different
            os.rename(partial, final)
            fsync_dir(versions)
        previous = self.serving(name)
        tmp = self.live_dir / f".{name}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(f"../archive/{name}/{version:04d}", tmp)
        live = self.path(name)
        if os.path.lexists(live) and not os.path.islink(live):
            # a directory or file put there by hand cannot be renamed over: kept aside
            os.rename(live, self.live_dir / f".{name}.replaced-{os.getpid()}")
        os.replace(tmp, live)
        fsync_dir(self.live_dir)
        keep = {f"{version:04d}", f"{previous:04d}" if previous is not None else ""}
        for entry in os.listdir(versions):
            if entry not in keep:
                shutil.rmtree(versions / entry, ignore_errors=True)

    @staticmethod
    def _whole(directory: Path, files: dict[str, bytes]) -> bool:
        try:
            return all((directory / f).read_bytes() == data for f, data in files.items())
        except OSError:
            return False

    def remove(self, name: str) -> None:
        """The lineage gone from the store: its files go from this host."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(name))
            fsync_dir(self.live_dir)
        shutil.rmtree(self.archive_dir / validate_lineage_name(name), ignore_errors=True)
