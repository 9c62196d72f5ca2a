"""certcli issue: create a lineage and obtain its first certificate over ACME."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.models import TyperPath

from certcli import keytypes
from certcli.cli import caoptions, completion
from certcli.cli.caoptions import (
    AgreeTosOption,
    EabHmacKeyFileOption,
    EabHmacKeyOption,
    EabKidOption,
    EmailOption,
)
from certcli.cli.runtime import runtime, session


def issue(
    ctx: typer.Context,
    domains: Annotated[list[str], typer.Argument(help="Names for the certificate.")],
    dns: Annotated[
        bool, typer.Option("--dns", help="Answer DNS-01 through the CNAME delegation ([dns]).")
    ] = False,
    wildcard: Annotated[
        bool, typer.Option(help="Add *.DOMAIN for each DOMAIN (implies --dns).")
    ] = False,
    challenge: Annotated[
        str | None,
        typer.Option(
            help="The ACME challenge to answer: http-01, dns-01, dns-account-01 or "
            "dns-persist-01 (kept for renewals; --webroot implies http-01, --dns dns-01).",
            show_default=False,
            autocompletion=completion.challenges,
        ),
    ] = None,
    webroot: Annotated[
        str | None,  # as given: "" must not become Path(".")
        typer.Option(
            help="Answer HTTP-01 by writing files under this served directory.",
            show_default=False,
            click_type=TyperPath(path_type=str),  # a path for completion, kept as typed
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Lineage name (default: the first domain).")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(
            help="ACME directory URL, or letsencrypt / letsencrypt-staging.",
            show_default=False,
            autocompletion=completion.servers,
        ),
    ] = None,
    email: EmailOption = None,
    agree_tos: AgreeTosOption = False,
    key_type: Annotated[
        str | None,
        typer.Option(
            help=keytypes.described(),
            show_default=False,
            autocompletion=completion.key_types,
        ),
    ] = None,
    eab_kid: EabKidOption = None,
    eab_hmac_key: EabHmacKeyOption = None,
    eab_hmac_key_file: EabHmacKeyFileOption = None,
    profile: Annotated[
        str | None,
        typer.Option(help="An ACME profile the CA offers (kept for renewals).", show_default=False),
    ] = None,
    preferred_chain: Annotated[
        str | None,
        typer.Option(help="Prefer the chain whose root has this CN.", show_default=False),
    ] = None,
    ca_bundle: Annotated[
        Path | None, typer.Option(help="Trust this CA bundle for the CA's TLS.", show_default=False)
    ] = None,
    each: Annotated[
        bool, typer.Option(help="One lineage per domain, issued concurrently.")
    ] = False,
    parallel: Annotated[
        int | None,
        typer.Option(
            help="With --each: at most this many at once (default 4).", show_default=False
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Do everything but store nothing.")] = False,
    force_renewal: Annotated[
        bool, typer.Option(help="Re-issue an existing lineage for the same domains now.")
    ] = False,
    expand: Annotated[bool, typer.Option(help="Add domains to an existing lineage.")] = False,
    deploy_hook: Annotated[
        str | None,
        typer.Option(
            help="Run this (via sh) after each new certificate of this lineage.", show_default=False
        ),
    ] = None,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Switch an uploaded lineage (or a waiting CSR) to ACME unasked."
        ),
    ] = False,
) -> None:
    """Obtain a certificate over ACME (HTTP-01 through --webroot) and store it as a lineage."""
    from certcli.cli.outcomes import report
    from certcli.cli.progress import PhaseView
    from certcli.config import setting
    from certcli.domains import default_lineage_name, normalize_identifiers
    from certcli.errors import UsageError
    from certcli.flows.issue import issue as do_issue
    from certcli.flows.issue import issue_each
    from certcli.flows.plan import AcmeOptions, asked_challenge

    rt = runtime(ctx)
    given = normalize_identifiers(domains)
    eab_hmac_key = caoptions.eab_hmac_key(eab_kid, eab_hmac_key, eab_hmac_key_file)
    # with --wildcard each domain brings *.domain; --each keeps the two in one lineage
    groups = [
        list(dict.fromkeys([d, f"*.{d.removeprefix('*.')}"])) if wildcard else [d] for d in given
    ]
    names = list(dict.fromkeys(n for group in groups for n in group))
    if each and name is not None:
        raise UsageError(
            "--name and --each do not go together: --each names each lineage by its domain"
        )
    options = AcmeOptions(
        server=server,
        email=email,
        agree_tos=agree_tos,
        eab_kid=eab_kid,
        eab_hmac_key=eab_hmac_key,
        # kept in lineage.toml for renewals, which may run from another directory (cron)
        ca_bundle=str(ca_bundle.absolute()) if ca_bundle else None,
        key_type=key_type,
        webroot=str(Path(webroot).absolute()) if webroot else webroot,  # "" is refused later
        preferred_chain=preferred_chain,
        challenge=asked_challenge(challenge, dns=dns or wildcard, webroot=webroot is not None),
        deploy_hook=deploy_hook,
        profile=profile,
    )
    cas = session(rt)
    with PhaseView(rt.out) as view:
        if each:
            workers = setting("renewal.parallel", parallel, rt.config, 4, flag="--parallel")
            outcomes = issue_each(
                rt.store,
                cas,
                groups,
                options,
                rt.config,
                view,
                parallel=workers,
                dry_run=dry_run,
                warn=rt.out.warn,
            )
        else:
            outcomes = [
                do_issue(
                    rt.store,
                    cas,
                    name if name is not None else default_lineage_name(names),  # "": refused
                    names,
                    options,
                    rt.config,
                    view,
                    dry_run=dry_run,
                    force_renewal=force_renewal,
                    expand=expand,
                    confirm=lambda question: yes or rt.out.confirm(question),
                    warn=rt.out.warn,
                )
            ]
    report(rt, outcomes, single_error=not each)
