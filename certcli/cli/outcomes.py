"""What the issuing commands (issue, renew, san add) print of their outcomes, and their exit."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import typer

from certcli.models import Action

if TYPE_CHECKING:
    from certcli.cli.runtime import Runtime
    from certcli.flows.outcome import Outcome


def report(
    rt: Runtime,
    outcomes: list[Outcome],
    *,
    single_error: bool = False,
    problems: list[str] | None = None,
    document: bool = True,
) -> None:
    """Print what happened; exit 1 when anything failed (or, for one lineage, its own code).
    `document=False`: the caller prints the --json document of its own (san add)."""
    from certcli.cli.output import error_line
    from certcli.errors import ExitCode

    out = rt.out
    failed = [o for o in outcomes if o.action == Action.FAILED]
    problems = [p for o in outcomes for p in o.problems] + (problems or [])
    if out.json_mode and document:
        out.emit_json({"results": [o.to_json() for o in outcomes], "problems": problems})
    for o in outcomes:
        cert = o.certificate
        for note in o.notes:
            out.warn(f"{o.name}: {note}")
        if o.action in (Action.ISSUED, Action.RENEWED) and cert and not out.quiet:
            live = rt.store.live_dir(o.name)
            out.line(
                f"{o.action.capitalize()} {o.name}: {', '.join(cert.sans)}, version {o.version}, "
                f"expires {cert.not_after:%Y-%m-%d} ({live})"
            )
        elif o.action == Action.DRY_RUN and cert and not out.quiet:
            out.line(f"Dry run {o.name}: the CA issued serial {cert.serial}; nothing was stored")
        elif o.action == Action.DEPLOYED and o.deploy_error is None and not out.quiet:
            out.line(f"Deployed {o.name}: version {o.version}; the deploy hook succeeded this time")
        elif o.action == Action.NOT_DUE and out.verbose:
            out.line(f"{o.name}: not due")
        elif o.action == Action.SKIPPED and (
            o.extra.get("warn") or o.extra.get("asked") or out.verbose
        ):
            out.warn(f"{o.name}: {o.reason}")
        elif o.action == Action.BACKOFF and o.extra.get("urgent"):  # said even from cron
            last = o.extra.get("last_error")
            out.warn(
                f"{o.name}: {o.extra['urgent']}, but not renewed: the last attempt failed"
                + (f" ({last})" if last else "")
                + f"; {o.reason}"
            )
        elif o.action == Action.BACKOFF and out.verbose:
            out.line(f"{o.name}: failed before; {o.reason}")
    for problem in problems:
        print(error_line(problem), file=sys.stderr)
    if not failed:
        if problems:
            raise typer.Exit(ExitCode.FAILED)
        return
    from certcli.cli.dnsview import render_diagnoses

    for o in failed:
        render_diagnoses(out, getattr(o.error, "diagnoses", ()))
    if single_error and len(outcomes) == 1 and failed[0].error is not None:
        raise failed[0].error
    for o in failed:
        error = o.error
        message = error.message if error is not None else "failed"
        print(error_line(f"{o.name}: {message}", error.hint if error else None), file=sys.stderr)
    raise typer.Exit(ExitCode.FAILED)
