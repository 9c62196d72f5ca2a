"""The Typer app: global options, and one module per command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from certcli import __version__
from certcli.cli import (
    cmd_csr,
    cmd_dns,
    cmd_download,
    cmd_import,
    cmd_issue,
    cmd_manage,
    cmd_renew,
    cmd_san,
    cmd_status,
    cmd_upload,
)
from certcli.cli.output import Output
from certcli.cli.runtime import Runtime

app = typer.Typer(
    name="certcli",
    help="Obtain, renew, import, inspect and export TLS certificates.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"certcli {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    config_dir: Annotated[
        Path | None,
        typer.Option(
            "--config-dir",
            envvar="CERTCLI_CONFIG_DIR",
            help="The store and config.toml (default: the platform's config dir).",
            show_default=False,
        ),
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--passphrase-file",
            help="Passphrase for keys at rest ([store] encrypt_keys); or CERTCLI_PASSPHRASE.",
            show_default=False,
        ),
    ] = None,
    json_mode: Annotated[
        bool, typer.Option("--json", help="Machine-readable output on stdout, nothing else.")
    ] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="Only errors and warnings.")] = False,
    verbose: Annotated[
        bool, typer.Option("-v", "--verbose", help="More detail; tracebacks on errors.")
    ] = False,
    no_color: Annotated[
        bool, typer.Option("--no-color", help="No colours (also NO_COLOR).")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_version, help="Print the version."),
    ] = False,
) -> None:
    """certcli keeps TLS certificates in a local store and exports them for your servers.
    Global options may also follow the command (certcli status --json)."""
    ctx.obj = Runtime(
        config_dir,
        Output(json_mode=json_mode, quiet=quiet, verbose=verbose, color=not no_color),
        passphrase_file,
    )


app.command("issue")(cmd_issue.issue)
app.command("renew")(cmd_renew.renew)
app.command("csr")(cmd_csr.csr)
app.command("upload")(cmd_upload.upload)
app.command("status")(cmd_status.status)
app.command("download")(cmd_download.download)
app.add_typer(cmd_san.app, name="san")
app.add_typer(cmd_dns.app, name="dns")
app.command("revoke")(cmd_manage.revoke)
app.command("delete")(cmd_manage.delete)
app.add_typer(cmd_manage.account_app, name="account")
app.add_typer(cmd_manage.config_app, name="config")
app.add_typer(cmd_import.app, name="import")
