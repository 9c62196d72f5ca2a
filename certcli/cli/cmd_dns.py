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
    or Error, and its CAA records, with the records to create. Exit 17 unless all are
    Valid and CAA forbids none."""
    from certcli.cli.dnsview import render_caa, render_diagnoses
    from certcli.dnscheck import DnsStatus
    from certcli.domains import normalize_identifiers
    from certcli.errors import ExitCode
    from certcli.flows.caa import check_names as caa_names
    from certcli.flows.dns import check_names

    rt = runtime(ctx)
    names = normalize_identifiers(domains)
    diagnoses = check_names(rt.store, rt.config, names)
    caa = {f.san: f.to_json() for f in caa_names(rt.store, rt.config, names) or ()}
    if rt.out.json_mode:
        rt.out.emit_json({"sans": [{**d.to_json(), "caa": caa.get(d.san)} for d in diagnoses]})
    render_diagnoses(rt.out, diagnoses)
    render_caa(rt.out, [(d.san, caa.get(d.san)) for d in diagnoses])
    forbids = any(f["status"] == "caa_forbids" for f in caa.values())
    if forbids or any(d.status is not DnsStatus.VALID for d in diagnoses):
        raise typer.Exit(ExitCode.DNS_NOT_READY)
