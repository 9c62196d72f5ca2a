"""certcli download: export the live certificate material."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from certcli.cli import completion
from certcli.cli.runtime import runtime


def download(
    ctx: typer.Context,
    name: Annotated[
        str, typer.Argument(help="The lineage to export.", autocompletion=completion.lineage_names)
    ],
    what: Annotated[
        str,
        typer.Option(
            help="cert, chain, fullchain, key, bundle (fullchain + key) or pkcs12.",
            autocompletion=completion.exports,
        ),
    ] = "fullchain",
    out: Annotated[str, typer.Option(help="A file, or - for stdout.")] = "-",
    include_key: Annotated[
        bool, typer.Option(help="Allow the private key to leave the store (key, bundle, pkcs12).")
    ] = False,
    password_file: Annotated[
        Path | None,
        typer.Option(
            help="PKCS#12 password, first line of this file (or CERTCLI_PKCS12_PASSWORD).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Write the live certificate, chain or key; a file holding the key is created 0600."""
    from certcli.errors import UsageError
    from certcli.export import (
        check_export_target,
        export,
        password_from_env,
        read_password_file,
        write_export,
    )

    rt = runtime(ctx)
    to_stdout = out == "-"
    if to_stdout and rt.out.json_mode:
        raise UsageError("--json describes the written file; give --out FILE")
    if to_stdout and what == "pkcs12" and rt.out.stdout_tty:
        raise UsageError("a PKCS#12 file is binary; give --out FILE or redirect stdout")
    if not to_stdout:
        check_export_target(Path(out))
    password = read_password_file(password_file) if password_file else password_from_env()
    exported = export(rt.store, name, what, include_key=include_key, password=password)
    if to_stdout:
        sys.stdout.buffer.write(exported.data)
        sys.stdout.flush()
        return
    write_export(Path(out), exported)
    if rt.out.json_mode:
        rt.out.emit_json(
            {"name": name, "what": what, "path": out, "mode": "0600" if exported.secret else "0644"}
        )
    else:
        rt.out.info(
            f"Wrote {what} of {name!r} to {out}" + (" (mode 0600)" if exported.secret else "")
        )
