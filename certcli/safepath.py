"""Paths that other local users may have planted links in (a webroot, an export's directory).

Every component is opened relative to the descriptor of the one before, with `O_NOFOLLOW`:
a symbolic link is followed only when root or certcli's own user owns it (links another user
planted are refused), the link read from the very descriptor whose owner was checked, so no
swap between the check and the use changes what is followed. Files are then created, replaced
and removed relative to the directory's descriptor, never by path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

_MAX_LINKS = 40  # as the kernel: a loop ends with ELOOP


class PlantedLinkError(OSError):
    """A symbolic link owned by another user stands where certcli would follow it."""

    def __init__(self, link: str, uid: int) -> None:
        super().__init__(
            errno.EPERM, f"{link} is a symbolic link owned by another user (uid {uid})"
        )
        self.link = link  # as walked: relative to the directory the walk started from
        self.uid = uid


def trusted(uid: int) -> bool:
    """Whether a file owned by `uid` can only have been made by root or certcli's user."""
    return uid in (0, os.geteuid())


def kind(mode: int) -> str:
    """What a non-regular file is, for a message ("a FIFO")."""
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def open_dir(path: str | Path, *, dir_fd: int | None = None, create: int | None = None) -> int:
    """An `O_PATH` descriptor of the directory `path` (relative to `dir_fd`, else to the
    current directory), following only links root or certcli's user owns.

    With `create`, missing directories are made with that mode, set with `fchmod` on the
    new directory's own descriptor (whatever the umask). Raises `PlantedLinkError` for a
    link someone else owns, else the `OSError` of the component that failed.
    """
    text = os.fspath(path)
    base = "/" if text.startswith("/") else "."
    fd = os.open(
        base, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=None if base == "/" else dir_fd
    )
    pending = list(reversed(_parts(text)))
    walked = base  # the path opened so far, for messages
    links = 0
    try:
        while pending:
            part = pending.pop()
            try:
                child = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except FileNotFoundError:
                if create is None:
                    raise
                child = _make_dir(fd, part, create)
            st = os.fstat(child)
            if stat.S_ISLNK(st.st_mode):
                try:
                    if not trusted(st.st_uid):
                        raise PlantedLinkError(_shown(walked, part), st.st_uid)
                    links += 1
                    if links > _MAX_LINKS:
                        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP))
                    target = os.readlink("", dir_fd=child)  # the link whose owner was checked
                finally:
                    os.close(child)
                if target.startswith("/"):
                    os.close(fd)
                    fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                    walked = "/"
                pending.extend(reversed(_parts(target)))
                continue
            if not stat.S_ISDIR(st.st_mode):
                os.close(child)
                raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR))
            os.close(fd)
            fd = child
            walked = _shown(walked, part)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _shown(walked: str, part: str) -> str:
    return part if walked == "." else os.path.join(walked, part)


def _make_dir(parent: int, name: str, mode: int) -> int:
    with contextlib.suppress(FileExistsError):  # made meanwhile: opened like any other
        os.mkdir(name, mode, dir_fd=parent)
        new = os.open(
            name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent
        )
        try:
            if os.fstat(new).st_uid == os.geteuid():  # ours, not one swapped in meanwhile
                os.fchmod(new, mode)
        finally:
            os.close(new)
    return os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    """The entry `name` itself (a link is not followed), or None when there is none."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def create_at(
    dir_fd: int | None,
    name: str,
    data: bytes,
    mode: int,
    *,
    exact_mode: bool = False,
    sync: bool = True,
) -> None:
    """Create `name` (which must not exist, nor be a link) with `mode` from the start (a
    umask narrows it, unless `exact_mode`), write and (unless not `sync`) fsync it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, mode, dir_fd=dir_fd)
    try:
        if exact_mode:
            os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def replace_at(dir_fd: int, name: str, data: bytes, mode: int) -> None:
    """Replace the entry `name` in the directory `dir_fd` with a new file holding `data`:
    a temporary file, fsync, rename over `name` (which replaces the entry itself and never
    writes through it), fsync of the directory."""
    tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        create_at(dir_fd, tmp, data, mode)
        os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp, dir_fd=dir_fd)
        raise
    sync = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.fsync(sync)
    finally:
        os.close(sync)
