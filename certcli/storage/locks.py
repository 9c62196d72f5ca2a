"""The store's locks: flock on files in locks/, one per lineage, per account, and the store.

flock conflicts between two open file descriptions even in one process, so a second
`lock(name)` while the first is held waits and fails (LockedError). What needs the lineage
lock whether or not its caller holds it (update_state) asks `_holding`, which knows the
locks this thread holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from certcli.errors import LockedError, StoreError
from certcli.storage.fsio import FILE_MODE, KEY_MODE, make_dirs, store_error
from certcli.storage.layout import StoreLayout

_LOCK_WAIT_DEFAULT = 5.0

#: Where a lineage's lock holder leaves its name, for the renew index (renew_index.py).
CHANGES = "changes"

#: The lineage locks held, per (process, thread, lock file), by any Store of this process
#: (never twice: a second flock of the same file waits, then fails).
_HELD: set[tuple[int, int, str]] = set()


def lock_wait(wait: float | None) -> float:
    """How long to wait for a lock: `wait`, else CERTCLI_LOCK_WAIT, else 5 seconds."""
    if wait is not None:
        return wait
    try:
        return float(os.environ.get("CERTCLI_LOCK_WAIT", _LOCK_WAIT_DEFAULT))
    except ValueError:
        return _LOCK_WAIT_DEFAULT


def _held_key(path: Path) -> tuple[int, int, str]:
    return os.getpid(), threading.get_ident(), os.fspath(path)


class LockingStore(StoreLayout):
    """Exclusive locks, safe between processes on one host (not over NFS)."""

    def _lineage_lock(self, name: str) -> Path:
        return self.locks_dir / f"lineage-{self._checked(name)}.lock"

    @contextlib.contextmanager
    def lock(self, name: str, wait: float | None = None) -> Iterator[None]:
        """Exclusive lock of one lineage, for issue/upload/csr/san."""
        path = self._lineage_lock(name)
        key = _held_key(path)
        with self._flock(path, f"certificate {name!r}", wait):
            _HELD.add(key)
            self._note_change(name)  # before what is changed under the lock, and after it
            try:
                yield
            finally:
                _HELD.discard(key)
                with contextlib.suppress(StoreError):  # the first note stands for it
                    self._note_change(name)

    def _note_change(self, name: str) -> None:
        """Leave `changes/NAME`: whatever a lineage's lock holder changed, the next renew
        reads that lineage again, not its index entry (renew_index.py)."""
        directory = self.root / CHANGES
        path = os.path.join(directory, name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW
        try:
            try:
                fd = os.open(path, flags, FILE_MODE)
            except FileNotFoundError:
                make_dirs(directory)
                fd = os.open(path, flags, FILE_MODE)
            os.close(fd)
        except OSError as exc:
            raise store_error("write", Path(path), exc) from None

    @contextlib.contextmanager
    def _holding(self, name: str) -> Iterator[None]:
        """The lineage lock, taken unless this thread already holds it."""
        if _held_key(self._lineage_lock(name)) in _HELD:
            yield
        else:
            with self.lock(name):
                yield

    @contextlib.contextmanager
    def lock_store(self, wait: float | None = None) -> Iterator[None]:
        """Exclusive lock of the whole store, for renew."""
        with self._flock(self.locks_dir / "store.lock", f"the store {self.root}", wait):
            yield

    def remove_lineage_lock(self, name: str) -> None:
        """Remove the lock file of a lineage that is gone; the caller holds that lock (safe:
        whoever waits on the removed file notices once it has the lock, and locks anew)."""
        with contextlib.suppress(FileNotFoundError):
            self._lineage_lock(name).unlink()

    @contextlib.contextmanager
    def _flock(self, path: Path, what: str, wait: float | None = None) -> Iterator[None]:
        self.ensure()
        deadline = time.monotonic() + lock_wait(wait)
        while True:
            fd = self._lock_fd(path, what, deadline)
            # Locked; but if the file was removed meanwhile (`delete` removes a lineage's),
            # this lock guards nothing: lock the file now at that path instead.
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(path))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            try:  # who holds it, for the message of the next one; the lock holds regardless
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError:
                pass
            yield
        finally:
            os.close(fd)

    @staticmethod
    def _lock_fd(path: Path, what: str, deadline: float) -> int:
        """The lock file at `path` opened (created if need be) and flocked, by `deadline`."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, KEY_MODE)
        except OSError as exc:
            raise store_error("open the lock", path, exc) from None
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    return fd
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                        raise LockedError(
                            f"{what} is locked by PID {holder}",
                            "another certcli is working on it; try again when it has finished",
                            holder=f"PID {holder}",
                        ) from None
                    time.sleep(0.05)
        except BaseException:
            os.close(fd)
            raise
