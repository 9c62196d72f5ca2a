"""certcli san add | remove | list: change what a lineage covers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from certcli.cli import completion
from certcli.cli.runtime import Runtime, runtime, session

if TYPE_CHECKING:
    from certcli.flows.sans import SanChange

app = typer.Typer(help="Change or list a lineage's SANs.", no_args_is_help=True)
_Lineage = Annotated[
    str, typer.Argument(help="The lineage.", autocompletion=completion.lineage_names)
]


@app.command("add")
def add(
    ctx: typer.Context,
    name: _Lineage,
    sans: Annotated[list[str], typer.Argument(help="Names to add.")],
    no_issue: Annotated[
        bool, typer.Option("--no-issue", help="Only record them; `renew` issues later.")
    ] = False,
) -> None:
    """Add SANs; check their DNS and re-issue at once when all are Valid."""
    from certcli.cli.outcomes import report
    from certcli.cli.progress import PhaseView
    from certcli.domains import normalize_identifiers
    from certcli.flows.sans import san_add

    rt = runtime(ctx)
    with PhaseView(rt.out) as view:
        change = san_add(
            rt.store,
            session(rt),
            name,
            normalize_identifiers(sans),
            rt.config,
            view,
            issue=not no_issue,
        )
    _summary(rt, change)
    if change.outcome is not None:  # with --json as without: problems on stderr, exit code
        report(rt, [change.outcome], single_error=True, document=False)


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: _Lineage,
    sans: Annotated[list[str], typer.Argument(help="Names to remove.")],
) -> None:
    """Remove SANs; the live certificate stays until the next renewal leaves them out."""
    from certcli.domains import normalize_identifiers
    from certcli.flows.sans import san_remove

    rt = runtime(ctx)
    _summary(rt, san_remove(rt.store, name, normalize_identifiers(sans)))


@app.command("list")
def list_(
    ctx: typer.Context,
    name: _Lineage,
) -> None:
    """Each SAN with its SSL status and last DNS status."""
    from certcli.cli.tables import san_table
    from certcli.errors import StoreError
    from certcli.models import LineageStatus
    from certcli.report import lineage_report

    rt = runtime(ctx)
    report = lineage_report(rt.store, name, rt.now())
    if report.status is LineageStatus.DAMAGED:  # no SAN to list: say why
        raise StoreError(report.error or f"{name!r} cannot be read")
    if rt.out.json_mode:
        rt.out.emit_json({"sans": [s.to_json() for s in report.sans]})
    else:
        san_table(rt.out, report)


def _summary(rt: Runtime, change: SanChange) -> None:
    out = rt.out
    if out.json_mode:
        out.emit_json(change.to_json())
        return
    for san in change.added:
        note = " (covered by the live certificate)" if san in change.covered else ""
        out.info(f"{change.name}: added {san}{note}")
    later = "the next upload" if change.next_step else "the next renewal"
    for san in change.removed:
        out.info(f"{change.name}: removed {san}; {later} leaves it out")
    if change.next_step and (len(change.covered) < len(change.added) or change.removed):
        # certcli never renews an uploaded lineage: only a new upload (or ACME) changes it
        out.info(f"{change.name}: an uploaded certificate: {change.next_step}")
    elif change.added and not change.removed and change.outcome is None:
        if len(change.covered) == len(change.added):
            out.info(f"{change.name}: no new certificate needed")
        else:
            out.info(f"{change.name}: `certcli renew` issues the new certificate")
    if not change.added and not change.removed:
        out.info(f"{change.name}: nothing changed")
