"""Files other users can change are not trusted, as OpenSSH's StrictModes: the store, every
directory above it, and each file that holds settings, hooks or the account key must be owned
by the invoking user (or root) and writable by nobody else. Otherwise whoever can write there
could plant a `[hooks] deploy` that certcli runs as its user (root, often).

Files are opened without following a link and checked on the opened descriptor (`fstat`), so
what is checked is what is read.
"""

from __future__ import annotations

import errno
import os
import shlex
import stat
from pathlib import Path
from typing import BinaryIO

from certcli.errors import StoreError, UntrustedError

#: Group- or world-writable.
_WRITABLE_BY_OTHERS = stat.S_IWGRP | stat.S_IWOTH


def _user(uid: int) -> str | None:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def distrust(
    st: os.stat_result, path: str, euid: int, *, parent: bool = False
) -> UntrustedError | None:
    """Why `path` (whose stat is `st`) must not be trusted by user `euid`, with the command that
    fixes it; None when it may be. A `parent` directory (above the store) may be writable by
    all when its sticky bit is set, as /tmp is: others can then add entries, not replace ours."""
    if st.st_uid not in (euid, 0):
        owner, where = _user(st.st_uid), shlex.quote(path)
        return UntrustedError(
            f"{path} is owned by uid {st.st_uid}{f' ({owner})' if owner else ''}, not by you",
            f"chown {_user(euid) or euid} {where}",
        )
    mode = stat.S_IMODE(st.st_mode)
    sticky_parent = parent and stat.S_ISDIR(st.st_mode) and mode & stat.S_ISVTX
    if mode & _WRITABLE_BY_OTHERS and not sticky_parent:
        return UntrustedError(
            f"{path} is writable by other users (mode {mode:04o})",
            f"chmod go-w {shlex.quote(path)}",
        )
    return None


def check(st: os.stat_result, path: str | Path, *, parent: bool = False) -> None:
    """Raise UntrustedError when `path` (whose stat is `st`) must not be trusted."""
    if st.st_uid == 0 and not st.st_mode & _WRITABLE_BY_OTHERS:
        return  # the common case, without the cost of a message (status reads thousands)
    problem = distrust(st, str(path), os.geteuid(), parent=parent)
    if problem is not None:
        raise problem


def check_path(path: str | Path) -> None:
    """A directory or a file by its path, inside a directory already checked (so no one else
    can swap it before it is used); a link is followed and what it names checked. A path
    missing yet is skipped: certcli makes it with its own modes, or says it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return
    check(st, path)


def check_chain(root: Path) -> None:
    """The store's directory and every directory above it, up to /: where it resolves to (a
    link's target and the target's parents) and where it is named (the link's own parents,
    whose owner could replace the link). Directories not made yet are skipped."""
    seen: set[tuple[int, int]] = set()
    for start in (Path(os.path.realpath(root)), Path(os.path.abspath(root))):
        for depth, directory in enumerate((start, *start.parents)):
            try:
                st = os.stat(directory)
            except OSError:  # not made yet, or unusable: what uses it says so
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            check(st, directory, parent=depth > 0)


def read_trusted(path: str | Path) -> bytes:
    """The content of a file that holds settings or a key: a regular file, not a link, owned
    by the invoking user or root, writable by nobody else. FileNotFoundError when missing."""
    with open_trusted(path) as file:
        return file.read()


def open_trusted(path: str | Path) -> BinaryIO:
    """The file read_trusted reads, opened and checked, for reading as it goes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the name is a symbolic link
            raise UntrustedError(
                f"{path} is a symbolic link, which certcli does not follow inside the store",
                f"replace it with the file it points to ({os.path.realpath(path)})",
            ) from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StoreError(f"{path} is not a regular file", "replace it with a file")
        check(st, path)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")
