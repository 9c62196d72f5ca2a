"""certcli renew: renew what is due; quiet and safe to run from cron or a systemd timer."""

from __future__ import annotations

from typing import Annotated

import typer

from certcli.cli import completion
from certcli.cli.runtime import runtime, session


def renew(
    ctx: typer.Context,
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Only these lineages (default: all).",
            show_default=False,
            autocompletion=completion.lineage_names,
        ),
    ] = None,
    force: Annotated[bool, typer.Option(help="Renew now, due or not.")] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Run every renewal through the CA, store nothing.")
    ] = False,
    no_jitter: Annotated[
        bool, typer.Option("--no-jitter", help="Do not sleep first (unattended runs do).")
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
    from certcli.cli.outcomes import report
    from certcli.cli.progress import PhaseView
    from certcli.config import setting
    from certcli.errors import LockedError
    from certcli.flows.renew import renew as do_renew

    rt = runtime(ctx)
    workers = setting("renewal.parallel", parallel, rt.config, 4, flag="--parallel")
    # A random sleep spreads unattended runs; never at a terminal.
    unattended = not (rt.out.stdin_tty or no_jitter)
    jitter = setting("renewal.jitter", None, rt.config, 300.0) if unattended else 0.0
    rt.store.ensure()
    try:
        with PhaseView(rt.out) as view:
            run = do_renew(
                rt.store,
                session(rt),
                list(names or []),
                rt.config,
                view,
                now=rt.now(),
                force=force,
                dry_run=dry_run,
                parallel=workers,
                jitter=jitter,
            )
    except LockedError as exc:
        rt.out.info(
            f"{exc.message.replace('is locked', 'is being renewed')}: another run is at work"
        )
        if rt.out.json_mode:  # still one document: this run renewed nothing
            rt.out.emit_json({"results": [], "problems": []})
        return
    # what the index found not due shows only in --json and -v
    shown = run.outcomes if rt.out.json_mode or rt.out.verbose else run.read
    report(rt, shown, problems=run.problems)
