"""Atomic file writes, directory fsyncs and the store's error messages.

Every write lands whole or not at all: a temp file in the same directory, fsync, rename, and
an fsync of the directory; directories are made 0700 and keys 0600, with those modes from the
start (never a chmod after).
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from certcli.errors import StoreError
from certcli.safepath import create_at, replace_at

DIR_MODE = 0o700
KEY_MODE = 0o600
FILE_MODE = 0o644


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Create `path` (which must not exist) with `mode`, write and fsync it. The store calls
    it as `fsio.write_new`, so that a test can fail or stop a write half-way."""
    create_at(None, os.fspath(path), data, mode)


def atomic_write(path: Path, data: bytes, mode: int = FILE_MODE) -> None:
    """Replace `path` with `data` so that readers see the old or the new content, whole."""
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        replace_at(fd, path.name, data, mode)
    finally:
        os.close(fd)


def make_dirs(path: Path) -> None:
    """Create `path` and any missing parents with mode 0700 (os.makedirs gives the mode to the
    leaf only)."""
    missing: list[Path] = []
    while not path.is_dir():
        missing.append(path)
        path = path.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory, DIR_MODE)


def read_if_exists(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def store_error(action: str, path: Path, exc: OSError) -> StoreError:
    """The StoreError for a failed `action` on `path`, with what to do about it."""
    reason = exc.strerror or str(exc)
    hint = None
    if exc.errno == errno.EROFS:
        reason = os.strerror(errno.EROFS)  # "Read-only file system", never "Permission denied"
        hint = (
            "remount it read-write, or choose another --config-dir; under systemd's "
            "ProtectSystem=, add the store to the unit's ReadWritePaths="
        )
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.ENOTDIR):
        hint = "choose a writable directory with --config-dir or CERTCLI_CONFIG_DIR"
    return StoreError(f"cannot {action} {path}: {reason}", hint)


def not_writable(directory: Path) -> OSError:
    """Why `directory` is not writable: a read-only mount, else permissions."""
    try:
        read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        read_only = False
    code = errno.EROFS if read_only else errno.EACCES
    return OSError(code, os.strerror(code))
