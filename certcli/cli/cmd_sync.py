"""certcli sync: serve the shared store's current versions on this host."""

from __future__ import annotations

import typer

from certcli.cli.runtime import runtime


def sync(ctx: typer.Context) -> None:
    """Bring this host's live/ files to the PostgreSQL store's current versions: write what
    changed, run each one's deploy hook, remove deleted lineages (run it at boot and from a
    timer; `renew` ends with it). The exit status is 1 when anything failed."""
    from certcli.flows.sync import sync as run_sync

    rt = runtime(ctx)
    done = run_sync(rt.store, rt.config)
    failed = any(item.action == "failed" or item.problem for item in done)
    if rt.out.json_mode:
        rt.out.emit_json(
            {
                "host": rt.store.host,  # type: ignore[attr-defined]
                "changes": [
                    {"name": i.name, "action": i.action, "version": i.version, "problem": i.problem}
                    for i in done
                ],
            }
        )
    else:
        for item in done:
            if item.action == "updated":
                rt.out.line(f"{item.name}: now serving version {item.version}.")
            elif item.action == "removed":
                rt.out.line(f"{item.name}: removed (deleted from the store).")
            if item.problem:
                rt.out.warn(f"{item.name}: {item.problem}")
    if failed:
        raise typer.Exit(1)
