"""The Typer app: global options, and one module per command."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated

import typer

from certcli import package_version
from certcli.cli.output import Output
from certcli.cli.runtime import Runtime

# name: (module in certcli.cli, its attribute, a group of subcommands). Imported on demand:
# a run needs one command, and building every command's parameters costs more than a
# `renew` with nothing to do.
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "issue": ("cmd_issue", "issue", False),
    "renew": ("cmd_renew", "renew", False),
    "csr": ("cmd_csr", "csr", False),
    "upload": ("cmd_upload", "upload", False),
    "status": ("cmd_status", "status", False),
    "download": ("cmd_download", "download", False),
    "san": ("cmd_san", "app", True),
    "dns": ("cmd_dns", "app", True),
    "revoke": ("cmd_manage", "revoke", False),
    "delete": ("cmd_manage", "delete", False),
    "account": ("cmd_manage", "account_app", True),
    "config": ("cmd_manage", "config_app", True),
    "import": ("cmd_import", "app", True),
    "store": ("cmd_store", "app", True),
    "sync": ("cmd_sync", "sync", False),
}


def _version(value: bool) -> None:
    if value:
        print(f"certcli {package_version()}")
        raise typer.Exit()


def root(
    ctx: typer.Context,
    config_dir: Annotated[
        str | None,  # text: Path("") would be the current directory
        typer.Option(
            "--config-dir",
            envvar="CERTCLI_CONFIG_DIR",
            metavar="<path>",
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
    if config_dir == "":  # "--config-dir $UNSET": never the current directory
        from certcli.errors import UsageError

        raise UsageError("--config-dir is empty", "give the store's directory, or leave it out")
    ctx.obj = Runtime(
        Path(config_dir) if config_dir is not None else None,
        Output(json_mode=json_mode, quiet=quiet, verbose=verbose, color=not no_color),
        passphrase_file,
        ctx.invoked_subcommand,
    )


def build(only: str | None = None) -> typer.Typer:
    """The app with every command (for help and completion), or with just `only`."""
    app = typer.Typer(
        name="certcli",
        help="Obtain, renew, import, inspect and export TLS certificates.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    app.callback()(root)
    for name, (module, attribute, group) in COMMANDS.items():
        if only is None or name == only:
            target = getattr(importlib.import_module(f"certcli.cli.{module}"), attribute)
            if group:
                app.add_typer(target, name=name)
            else:
                app.command(name)(target)
    return app
