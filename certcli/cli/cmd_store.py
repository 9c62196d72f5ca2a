"""certcli store: the store itself (its PostgreSQL schema)."""

from __future__ import annotations

from typing import Annotated

import typer

from certcli.cli.runtime import runtime

app = typer.Typer(
    help="The store itself: its PostgreSQL schema, and copying the file store there.",
    no_args_is_help=True,
)


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


@app.command("copy")
def copy(
    ctx: typer.Context,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="The PostgreSQL store to copy into, at the latest schema; never with a "
            "password: PGPASSWORD or a passfile gives it.",
            show_default=False,
        ),
    ] = None,
    source: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="The PostgreSQL store to copy back into this file store.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Copy every lineage, version and account of the file store into the PostgreSQL
    store (--to), in one transaction, or back (--from); verified, idempotent (keys encrypted
    with the passphrase in the database)."""
    from certcli.flows.store import copy_store

    rt = runtime(ctx)
    url, done = copy_store(rt.store, rt.given_passphrase(), to=to, source=source)
    if rt.out.json_mode:
        rt.out.emit_json(
            {
                "url": url.shown,
                "lineages": done.lineages,
                "versions": done.versions,
                "accounts": done.accounts,
                "pending": done.pending,
                "verified": True,
                "unchanged": done.unchanged,
            }
        )
        return
    waiting = f", {done.pending} keys waiting for upload" if done.pending else ""
    counts = (
        f"{done.lineages} lineages ({done.versions} versions{waiting}) and {done.accounts} accounts"
    )
    there = url.shown if to else rt.store.where
    if done.unchanged:
        rt.out.line(f"{there} holds {counts} already: nothing to copy; verified.")
    else:
        rt.out.line(f"Copied {counts} to {there}; verified.")
