"""certcli renew: renew what is due; quiet and safe to run from cron or a systemd timer."""

from __future__ import annotations

from typing import Annotated

import typer

from certcli.cli.runtime import runtime


def renew(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Only these lineages (default: all).", show_default=False),
    ] = None,
    force: Annotated[bool, typer.Option(help="Renew now, due or not.")] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Run every renewal through the CA, store nothing.")
    ] = False,
    parallel: Annotated[
        int | None,
        typer.Option(help="At most this many renewals at once (default 4).", show_default=False),
    ] = None,
) -> None:
    """Renew every ACME lineage inside its renewal window (a third of its lifetime left).

    Nothing is printed on stdout when nothing was due; the exit status is 1 when any
    renewal failed.
    """
    from certcli.cli.cmd_issue import report, session
    from certcli.cli.progress import PhaseView
    from certcli.config import setting
    from certcli.issuance import renew as do_renew

    rt = runtime(ctx)
    workers = int(parallel or setting("renewal.parallel", None, rt.config, 4))
    rt.store.ensure()
    with PhaseView(rt.out) as view:
        outcomes = do_renew(
            rt.store,
            session(rt),
            list(names or []),
            rt.config,
            view,
            now=rt.now(),
            force=force,
            dry_run=dry_run,
            parallel=workers,
        )
    report(rt, outcomes)
