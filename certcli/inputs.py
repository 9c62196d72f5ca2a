"""Reading the files a user points certcli at, with one clear error per failure."""

from __future__ import annotations

from pathlib import Path

from certcli.errors import InvalidInputError, NotFoundError

MAX_INPUT = 1 << 20  # no PEM file of a certificate or key is anywhere near 1 MiB


def read_input(path: Path, what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_INPUT + 1)
    except FileNotFoundError:
        raise NotFoundError(f"{what} file {path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInputError(f"{what} file {path} is a directory, not a file") from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read {what} file {path}: {exc.strerror}") from None
    if len(data) > MAX_INPUT:
        raise InvalidInputError(f"{what} file {path} is larger than 1 MiB; is it the right file?")
    return data
