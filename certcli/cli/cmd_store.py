"""certcli store: the store itself (its PostgreSQL schema)."""

from __future__ import annotations

from typing import Annotated

import typer

from certcli.cli.runtime import runtime

app = typer.Typer(help="The store itself: its PostgreSQL schema.", no_args_is_help=True)


@app.command("migrate")
def migrate(
    ctx: typer.Context,
    url: Annotated[
        str | None,
        typer.Option(
            help="The PostgreSQL store (else [store] url or CERTCLI_STORE_URL); never with "
            "a password: PGPASSWORD or a passfile gives it.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create the PostgreSQL store's schema, or bring it to this certcli's version
    (idempotent; hosts migrating at once take turns)."""
    from certcli.flows.store import migrate_store

    rt = runtime(ctx)
    found, done = migrate_store(rt.config, url)
    if rt.out.json_mode:
        rt.out.emit_json(
            {"url": found.shown, "schema_version": done.after, "applied": done.applied}
        )
        return
    if done.applied:
        rt.out.line(f"Migrated {found.shown} from schema version {done.before} to {done.after}.")
    else:
        rt.out.line(f"{found.shown} is at schema version {done.after}: nothing to do.")
