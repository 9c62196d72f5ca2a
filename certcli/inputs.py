"""Reading the files a user points certcli at, with one clear error per failure."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from certcli.errors import InvalidInputError, NotFoundError

MAX_INPUT = 1 << 20  # no PEM file of a certificate or key is anywhere near 1 MiB


def read_input(path: Path, what: str) -> bytes:
    """The content of a regular file (a link to one is followed: it is the user's own
    choice). A FIFO, device, socket or directory is refused before it is read, so nothing
    blocks for ever or reads without end."""
    from certcli.safepath import kind

    data = b""
    try:
        mode = os.stat(path).st_mode  # before any open: opening a FIFO blocks
        if stat.S_ISREG(mode):
            # O_NONBLOCK: should a FIFO have replaced the file since, opening it returns
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
            with os.fdopen(fd, "rb") as handle:
                mode = os.fstat(fd).st_mode
                if stat.S_ISREG(mode):
                    data = handle.read(MAX_INPUT + 1)
    except FileNotFoundError:
        raise NotFoundError(f"{what} file {path} does not exist") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} file {path}: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise InvalidInputError(f"{what} file {path} is {kind(mode)}, not a regular file")
    if len(data) > MAX_INPUT:
        raise InvalidInputError(f"{what} file {path} is larger than 1 MiB; is it the right file?")
    return data
