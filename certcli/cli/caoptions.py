"""The options that create an ACME account, shared by `issue` and `account register`:
declared once, so that both read the same flags, environment and key file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

EmailOption = Annotated[str | None, typer.Option(help="Contact for the new account.")]
AgreeTosOption = Annotated[bool, typer.Option(help="Accept the CA's terms of service.")]
EabKidOption = Annotated[
    str | None,
    typer.Option(help="External Account Binding key ID.", envvar="CERTCLI_EAB_KID"),
]
EabHmacKeyOption = Annotated[
    str | None,
    typer.Option(
        help="External Account Binding HMAC key (base64url); other users can see a "
        "command line: prefer --eab-hmac-key-file or the environment.",
        envvar="CERTCLI_EAB_HMAC_KEY",
        show_default=False,
    ),
]
EabHmacKeyFileOption = Annotated[
    Path | None,
    typer.Option(
        help="Read the EAB HMAC key from this file's first line ('-': stdin).",
        show_default=False,
    ),
]


def eab_hmac_key(kid: str | None, key: str | None, key_file: Path | None) -> str | None:
    """The EAB HMAC key from --eab-hmac-key or its file, checked against --eab-kid: both
    or neither, before anything is asked of the CA."""
    from certcli.errors import UsageError

    if key_file is not None:
        if key:
            raise UsageError("--eab-hmac-key and --eab-hmac-key-file exclude each other")
        key = _read_key_file(key_file)
    if bool(kid) != bool(key):
        raise UsageError(
            "External Account Binding needs both --eab-kid and --eab-hmac-key",
            "give the key ID and the HMAC key from your CA account "
            "(or CERTCLI_EAB_KID and CERTCLI_EAB_HMAC_KEY)",
        )
    return key


def _read_key_file(path: Path) -> str:
    """The first line of a key file, or of stdin for '-'."""
    from certcli.errors import UsageError
    from certcli.inputs import read_input

    data = sys.stdin.buffer.readline() if str(path) == "-" else read_input(path, "EAB HMAC key")
    key = data.decode(errors="replace").split("\n", 1)[0].strip()
    if not key:
        raise UsageError(f"the EAB HMAC key file {path} is empty")
    return key
