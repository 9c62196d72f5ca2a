"""A journal of what a run creates outside the store (a TXT value at a DNS provider): each
thing is recorded before it is created and the record removed once it is cleaned up, so
that the next run removes what a killed run, or a request whose outcome is unknown (an add
that timed out and landed later), left behind.

One small file per thing, in `leftovers/` of the store, flocked by the process that made it
for as long as that process may still use the thing: a record whose lock can be taken
belongs to a run that has ended, and only such records are cleaned.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from certcli.storage.fsio import KEY_MODE, fsync_dir, make_dirs


class Record:
    """One journal entry, locked by its holder: `done()` once the thing is gone, `keep()`
    to leave it for a later run."""

    def __init__(self, path: Path, fd: int, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self._fd: int | None = fd

    def done(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.keep()

    def keep(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Journal:
    def __init__(self, directory: Path, kind: str) -> None:
        self.directory = directory
        self.kind = kind

    def record(self, data: dict[str, Any]) -> Record | None:
        """Write (and lock) a record of what is about to be created; None when the store
        cannot take it (the creation goes ahead: cleanup in the same run still happens)."""
        name = f"{self.kind}-{secrets.token_hex(8)}.json"
        tmp = self.directory / f".{name}.tmp"
        try:
            make_dirs(self.directory)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, KEY_MODE)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # before it has its name: never seen unlocked
            os.write(fd, json.dumps(data).encode())
            os.fsync(fd)
            os.rename(tmp, self.directory / name)
            fsync_dir(self.directory)
        except OSError:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            return None
        return Record(self.directory / name, fd, data)

    def orphans(self) -> Iterator[Record]:
        """The records of runs that have ended, each locked while the caller cleans it."""
        try:
            names = sorted(os.listdir(self.directory))
        except OSError:
            return
        for name in names:
            if not (name.startswith(f"{self.kind}-") and name.endswith(".json")):
                if name.startswith(f".{self.kind}-") and name.endswith(".tmp"):
                    self._remove_stale_tmp(self.directory / name)
                continue
            record = self._claim(self.directory / name)
            if record is not None:
                yield record

    @staticmethod
    def _claim(path: Path) -> Record | None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            # another cleaner may have finished with it between our open and our lock
            if not os.path.samestat(os.fstat(fd), os.stat(path)):
                raise FileNotFoundError(path)
            data = json.loads(os.pread(fd, 65536, 0))
        except ValueError:
            data = None
        except OSError:
            os.close(fd)
            return None
        if not isinstance(data, dict):  # unreadable: nothing to clean by it
            Record(path, fd, {}).done()
            return None
        return Record(path, fd, data)

    @staticmethod
    def _remove_stale_tmp(path: Path) -> None:
        """A record killed before it got its name: nothing was created after it."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)
