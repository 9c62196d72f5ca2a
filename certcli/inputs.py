"""Reading the files a user points certcli at, with one clear error per failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from certcli.errors import InvalidInputError, NotFoundError

MAX_INPUT = 1 << 20  # no PEM file of a certificate or key is anywhere near 1 MiB


class NotRegularFile(Exception):
    """The path names a FIFO, device, socket or directory."""

    def __init__(self, mode: int) -> None:
        super().__init__(mode)
        self.mode = mode


def read_regular(path: Path, limit: int) -> bytes:
    """Up to `limit` bytes of a regular file (a link to one is followed: it is the user's
    own choice). Anything else raises NotRegularFile before it is read, so nothing blocks
    for ever or reads without end; a failure to stat or open raises OSError."""
    mode = os.stat(path).st_mode  # before any open: opening a FIFO blocks
    if not stat.S_ISREG(mode):
        raise NotRegularFile(mode)
    # O_NONBLOCK: should a FIFO have replaced the file since, opening it returns
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(mode)
        return handle.read(limit)


def read_input(path: Path, what: str) -> bytes:
    """The content of a regular file of at most 1 MiB, or one clear error."""
    from certcli.safepath import kind

    try:
        data = read_regular(path, MAX_INPUT + 1)
    except FileNotFoundError:
        raise NotFoundError(f"{what} file {path} does not exist") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} file {path}: {exc.strerror}") from None
    except NotRegularFile as exc:
        raise InvalidInputError(
            f"{what} file {path} is {kind(exc.mode)}, not a regular file"
        ) from None
    if len(data) > MAX_INPUT:
        raise InvalidInputError(f"{what} file {path} is larger than 1 MiB; is it the right file?")
    return data
