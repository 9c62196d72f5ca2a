"""certcli delete, revoke, account and config: managing what exists."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from certcli.cli import caoptions, completion
from certcli.cli.caoptions import (
    AgreeTosOption,
    EabHmacKeyFileOption,
    EabHmacKeyOption,
    EabKidOption,
    EmailOption,
)
from certcli.cli.runtime import Runtime, runtime, session

if TYPE_CHECKING:
    from certcli.models import Account


def delete(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="The lineage to delete, all versions included.",
            autocompletion=completion.lineage_names,
        ),
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Delete a lineage from the store (its certificates are not revoked)."""
    from certcli.errors import NotConfirmedError
    from certcli.flows.lineages import delete_lineage

    rt = runtime(ctx)

    def confirm(question: str) -> bool:
        if yes:
            return True
        if not rt.out.stdin_tty:
            raise NotConfirmedError(f"deleting {name!r} needs confirmation", "add --yes")
        return rt.out.confirm(question)

    delete_lineage(rt.store, name, confirm)
    if rt.out.json_mode:
        rt.out.emit_json({"name": name, "deleted": True})
    rt.out.info(f"Deleted {name!r}.")


def revoke(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="The lineage whose live certificate to revoke.",
            autocompletion=completion.lineage_names,
        ),
    ],
    reason: Annotated[
        str,
        typer.Option(
            help="unspecified, keyCompromise, affiliationChanged, superseded, "
            "cessationOfOperation.",
            autocompletion=completion.reasons,
        ),
    ] = "unspecified",
) -> None:
    """Revoke the live certificate at the CA that issued it; `renew` then replaces it."""
    from certcli.flows.revoke import revoke as do_revoke

    rt = runtime(ctx)
    done = do_revoke(rt.store, rt.config, name, reason)
    if rt.out.json_mode:
        rt.out.emit_json(done.to_json())
    if done.already:
        rt.out.info(
            f"{name!r} (serial {done.serial}) was already revoked at the CA; recorded now: "
            "`certcli renew` replaces it."
        )
    else:
        rt.out.info(f"Revoked {name!r} (serial {done.serial}); `certcli renew` replaces it.")


account_app = typer.Typer(help="The ACME account at a CA.", no_args_is_help=True)
ServerOption = Annotated[
    str | None,
    typer.Option(
        "--server",
        help="The CA (default: as for issue).",
        show_default=False,
        autocompletion=completion.servers,
    ),
]


# What an account change does to the dns-persist-01 records that name the account's URL.
_PERSIST_KEPT = (
    "dns-persist-01 records name the account URL, which a key rollover keeps: they stay valid."
)
_PERSIST_ENDED = (
    "dns-persist-01 records name this account's URL: deactivating it ends every one of "
    "them; re-publish them with the new account's URL (`certcli account register` prints it)."
)


def _show_account(rt: Runtime, account: Account, verb: str, *notes: str, **extra: bool) -> None:
    """The account's fields (and `extra`, in JSON only), after `verb` and `notes`."""
    data = account.to_json()
    if rt.out.json_mode:
        rt.out.emit_json(data | extra)
        return
    for message in (verb, *notes):
        if message:
            rt.out.info(message)
    for key, value in data.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        rt.out.line(f"{key + ':':<18} {shown or '-'}")


@account_app.command("register")
def account_register(
    ctx: typer.Context,
    server: ServerOption = None,
    email: EmailOption = None,
    agree_tos: AgreeTosOption = False,
    eab_kid: EabKidOption = None,
    eab_hmac_key: EabHmacKeyOption = None,
    eab_hmac_key_file: EabHmacKeyFileOption = None,
) -> None:
    """Create the account at the CA before any issuance and print its URL (an account
    already stored is reported, not an error)."""
    from certcli.flows.account import register
    from certcli.flows.plan import AcmeOptions

    rt = runtime(ctx)
    options = AcmeOptions(
        server=server,
        email=email,
        agree_tos=agree_tos,
        eab_kid=eab_kid,
        eab_hmac_key=caoptions.eab_hmac_key(eab_kid, eab_hmac_key, eab_hmac_key_file),
    )
    account, created = register(rt.store, rt.config, options, session(rt).accept_tos, rt.out.warn)
    already = "This CA's account is already registered (the CA was not asked)."
    verb = "Registered a new account at the CA." if created else already
    _show_account(rt, account, verb, created_now=created)


@account_app.command("show")
def account_show(ctx: typer.Context, server: ServerOption = None) -> None:
    """The stored account (no request to the CA; the key is never shown)."""
    from certcli.flows.account import show_account

    rt = runtime(ctx)
    _show_account(rt, show_account(rt.store, rt.config, server), "")


@account_app.command("update")
def account_update(
    ctx: typer.Context,
    email: Annotated[str, typer.Option(help="The new contact address ('' for none).")],
    server: ServerOption = None,
) -> None:
    """Change the account's contact at the CA."""
    from certcli.flows.account import update_contact

    rt = runtime(ctx)
    account = update_contact(rt.store, rt.config, server, email)
    _show_account(rt, account, "Contact updated at the CA.")


@account_app.command("rollover")
def account_rollover(ctx: typer.Context, server: ServerOption = None) -> None:
    """Replace the account key at the CA (RFC 8555 key change)."""
    from certcli.flows.account import rollover

    rt = runtime(ctx)
    account = rollover(rt.store, rt.config, server)
    _show_account(
        rt,
        account,
        "The account key was replaced at the CA.",
        _PERSIST_KEPT,
        persist_records_valid=True,
    )


@account_app.command("deactivate")
def account_deactivate(
    ctx: typer.Context,
    server: ServerOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Deactivate the account at the CA, for good; the next issuance creates a new one."""
    from certcli.errors import NotConfirmedError
    from certcli.flows.account import deactivate

    rt = runtime(ctx)
    if not yes and not (rt.out.stdin_tty and rt.out.confirm("Deactivate the account for good?")):
        raise NotConfirmedError("the account was not deactivated", "add --yes")
    account = deactivate(rt.store, rt.config, server)
    _show_account(
        rt, account, "The account was deactivated.", _PERSIST_ENDED, persist_records_valid=False
    )


config_app = typer.Typer(help="Read or change config.toml.", no_args_is_help=True)


@config_app.command("get")
def config_get(
    ctx: typer.Context, key: Annotated[str, typer.Argument(help="A dotted name: dns.target.")]
) -> None:
    """Print a setting of config.toml."""
    from certcli.flows.configfile import config_get as get

    rt = runtime(ctx)
    value = get(rt.config, key)
    if rt.out.json_mode:
        rt.out.emit_json({"key": key, "value": value})
    elif isinstance(value, str):
        rt.out.line(value)
    else:
        import json

        from certcli.cli.output import json_default

        # TOML and JSON agree on numbers, booleans, lists; a date prints as RFC 3339 text
        text = json.dumps(value, default=json_default)
        rt.out.line(text[1:-1] if text.startswith('"') else text)


@config_app.command("set")
def config_set(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="A dotted name: dns.target, hooks.deploy, …")],
    value: Annotated[
        str | None,
        typer.Argument(
            help='A TOML value (60, true, ["a"]) or text; read from stdin when left out '
            "(asked without echo at a terminal for a secret).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Set a setting in config.toml (the file is written 0600)."""
    from certcli.config import SECRET_KEYS
    from certcli.errors import UsageError
    from certcli.flows.configfile import config_set as set_
    from certcli.flows.configfile import parse_value

    rt = runtime(ctx)
    secret = key in SECRET_KEYS
    if value is None:
        value = rt.out.read_line(key, secret=secret)
        if not value:
            raise UsageError(f"no value for {key}", "give it as VALUE, or as a line on stdin")
    elif secret:
        rt.out.warn(
            f"{key} is a secret, and other users can read the command line: "
            f"leave VALUE out to be asked for it (or to read it from stdin)"
        )
    # a secret is text as given: never reinterpreted as TOML
    parsed = value if secret else parse_value(value)
    set_(rt.store, key, parsed)
    if rt.out.json_mode:
        shown = {"value": None, "secret": True} if secret else {"value": parsed}
        rt.out.emit_json({"key": key, **shown})
    rt.out.info(f"Set {key} in {Path(rt.store.root) / 'config.toml'}.")
