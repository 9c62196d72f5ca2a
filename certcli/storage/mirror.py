"""This host's copy of each lineage's current version, for its web server (a PostgreSQL
store keeps the versions; a web server reads files).

`live/<name>` is a link to `archive/<name>/NNNN`, a directory with certbot's four names,
switched by rename like the file store's `live`: a reader sees the old version or the new
one, whole. The version before stays until the next switch (a server that has not reloaded
yet keeps reading it)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from pathlib import Path

from certcli.domains import is_lineage_name, validate_lineage_name
from certcli.errors import CertcliError
from certcli.storage import fsio
from certcli.storage.fsio import DIR_MODE, FILE_MODE, KEY_MODE, fsync_dir, make_dirs
from certcli.trust import read_trusted

_TARGET = re.compile(r"\.\./archive/[^/]+/([0-9]{4,})")


class LocalLive:
    """`live/` and `archive/` under the config dir: what this host serves."""

    def __init__(self, root: Path) -> None:
        self.live_dir = root / "live"
        self.archive_dir = root / "archive"
        self._index = root / "live-index.json"

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
        """`serving` of every lineage in live/. A link is never edited, only replaced, so
        live/ unchanged (its inode, mtime and ctime) means every link unchanged: then the
        answer is live-index.json's, else each link is read (10,000: ~50 ms) and the index
        written anew."""
        try:
            st = os.stat(self.live_dir)
        except FileNotFoundError:
            return {}
        stamp = [st.st_ino, st.st_mtime_ns, st.st_ctime_ns]
        known = self._indexed(stamp)
        if known is not None:
            return known
        base = f"{self.live_dir}{os.sep}"
        found: dict[str, int | None] = {}
        for entry in sorted(os.listdir(self.live_dir)):
            if not is_lineage_name(entry):
                continue
            try:
                match = _TARGET.fullmatch(os.readlink(base + entry))
            except OSError:
                match = None
            found[entry] = int(match.group(1)) if match else None
        # a change within the clock tick of the stamp would leave the stamp as it is: only a
        # live/ whose entries have not changed for a second is indexed
        if time.time_ns() - st.st_mtime_ns > 1_000_000_000:
            with contextlib.suppress(OSError):
                data = {"format": 1, "live": stamp, "serving": found}
                fsio.atomic_write(self._index, json.dumps(data).encode())
        return found

    def _indexed(self, stamp: list[int]) -> dict[str, int | None] | None:
        try:
            data = json.loads(read_trusted(self._index))
        except (OSError, ValueError, CertcliError):
            return None
        if not isinstance(data, dict) or data.get("format") != 1 or data.get("live") != stamp:
            return None
        serving = data.get("serving")
        if not isinstance(serving, dict) or not all(
            v is None or type(v) is int for v in serving.values()
        ):
            return None
        return serving

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
