"""certcli dns check: the delegation diagnosis alone, before (or without) ordering."""

from __future__ import annotations

from typing import Annotated

import typer

from certcli.cli.runtime import runtime

app = typer.Typer(help="DNS-01 delegation: check what certcli will find.", no_args_is_help=True)


@app.command("check")
def check(
    ctx: typer.Context,
    domains: Annotated[list[str], typer.Argument(help="Names to check (*.x checks x).")],
) -> None:
    """Diagnose each name's _acme-challenge delegation: Valid, Missing, Wrong, Duplicate
    or Error, with the records to create. Exit 17 unless all are Valid."""
    from certcli.cli.dnsview import render_diagnoses
    from certcli.dnscheck import DnsStatus
    from certcli.domains import normalize_identifiers
    from certcli.errors import ExitCode
    from certcli.flows.dns import check_names

    rt = runtime(ctx)
    diagnoses = check_names(rt.store, rt.config, normalize_identifiers(domains))
    if rt.out.json_mode:
        rt.out.emit_json({"sans": [d.to_json() for d in diagnoses]})
    render_diagnoses(rt.out, diagnoses)
    if any(d.status is not DnsStatus.VALID for d in diagnoses):
        raise typer.Exit(ExitCode.DNS_NOT_READY)
