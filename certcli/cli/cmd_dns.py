"""certcli dns check: a challenge method's DNS diagnosis alone, before (or without) ordering."""

from __future__ import annotations

from typing import Annotated

import typer

from certcli.cli import completion
from certcli.cli.runtime import runtime

app = typer.Typer(help="DNS-01 delegation: check what certcli will find.", no_args_is_help=True)


@app.command("check")
def check(
    ctx: typer.Context,
    domains: Annotated[list[str], typer.Argument(help="Names to check (*.x checks x).")],
    challenge: Annotated[
        str | None,
        typer.Option(
            "--challenge",
            metavar="METHOD",
            help="The method whose DNS to check: dns-01 (the default), dns-account-01 or "
            "dns-persist-01.",
            autocompletion=completion.checkable,
        ),
    ] = None,
    persist_until: Annotated[
        str | None,
        typer.Option(
            "--persist-until",
            metavar="DATE",
            help="dns-persist-01: the record to publish ends at DATE (YYYY-MM-DD or RFC 3339).",
        ),
    ] = None,
    wildcard_policy: Annotated[
        bool,
        typer.Option(
            "--wildcard-policy",
            help="dns-persist-01: the record to publish has policy=wildcard "
            "(a wildcard name implies it).",
        ),
    ] = False,
    publish: Annotated[
        bool,
        typer.Option(
            "--publish",
            help="dns-persist-01: write the record at [dns] target through the DNS provider "
            "where _validation-persist.<name> is delegated there by CNAME, then check again.",
        ),
    ] = False,
) -> None:
    """Diagnose each name's _acme-challenge delegation (or, with --challenge, the
    method's own record): Valid, Missing, Wrong, Duplicate or Error, and its CAA records,
    with the records to create. Exit 17 unless all are Valid and CAA forbids none."""
    from certcli.cli.dnsview import render_caa, render_diagnoses, render_published
    from certcli.dnscheck import DnsStatus
    from certcli.domains import normalize_identifiers
    from certcli.errors import ExitCode
    from certcli.flows.dns import RecordShape, check_names

    rt = runtime(ctx)
    shape = RecordShape(persist_until, wildcard_policy, publish)
    found = check_names(
        rt.store,
        rt.config,
        normalize_identifiers(domains),
        challenge,
        shape,
        interactive=rt.out.stdin_tty,
        ask=rt.out.wait_for_enter,
    )
    diagnoses = found.diagnoses
    if rt.out.json_mode:
        document: dict = {"sans": [{**d.to_json(), "caa": found.caa.get(d.san)} for d in diagnoses]}
        if publish:
            document["published"] = [{"name": n, "value": v} for n, v in found.published]
            document["delegate"] = list(found.delegate)
        rt.out.emit_json(document)
    render_published(rt.out, found.published, found.delegate)
    render_diagnoses(rt.out, diagnoses)
    render_caa(rt.out, [(d.san, found.caa.get(d.san)) for d in diagnoses])
    forbids = any(f["status"] == "caa_forbids" for f in found.caa.values())
    if forbids or any(d.status is not DnsStatus.VALID for d in diagnoses):
        raise typer.Exit(ExitCode.DNS_NOT_READY)
