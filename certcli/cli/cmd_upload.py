"""certcli upload: install a certificate from a CA outside ACME."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from certcli.cli import completion
from certcli.cli.runtime import runtime

if TYPE_CHECKING:
    from certcli.cli.output import Output
    from certcli.selfmanaged import UploadPlan


def upload(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(
            help="The lineage to install into (created if new).",
            autocompletion=completion.lineage_names,
        ),
    ],
    cert: Annotated[
        Path, typer.Option(help="The certificate, optionally followed by its chain (PEM).")
    ],
    key: Annotated[
        Path | None,
        typer.Option(
            help="Its private key (PEM); not needed to complete `certcli csr`.", show_default=False
        ),
    ] = None,
    chain: Annotated[
        Path | None, typer.Option(help="Intermediate certificates (PEM).", show_default=False)
    ] = None,
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Accept a change of SANs without asking.")
    ] = False,
) -> None:
    """Validate a certificate and make it the live version; the previous one is archived."""
    from certcli.models import rfc3339
    from certcli.selfmanaged import upload as do_upload

    rt = runtime(ctx)
    out = rt.out

    def confirm(plan: UploadPlan) -> bool:
        _show_diff(out, plan)
        if yes:
            return True
        if not out.stdin_tty:
            from certcli.errors import NotConfirmedError

            raise NotConfirmedError(
                f"the upload changes what {plan.name!r} covers and needs confirmation",
                "run it at a terminal, or add --yes",
            )
        return out.confirm("Install this certificate?")

    result = do_upload(rt.store, name, cert, key, chain, now=rt.now(), confirm=confirm)
    plan = result.plan
    info = plan.certificate
    for warning in result.warnings:
        out.warn(warning)
    if out.json_mode:
        out.emit_json(
            {
                "name": plan.name,
                "changed": result.version is not None,
                "version": result.version,
                "completed_csr": plan.completes_csr,
                "added": list(plan.added),
                "removed": list(plan.removed),
                "sans": list(info.sans),
                "not_after": rfc3339(info.not_after),
                "fingerprint_sha256": info.fingerprint_sha256,
                "warnings": list(result.warnings),
            }
        )
    elif result.version is None:
        out.info(f"{name!r} already serves this certificate; nothing changed.")
    else:
        out.info(
            f"Installed {', '.join(info.sans)} as {name!r} version {result.version} "
            f"(expires {rfc3339(info.not_after)}, issuer {info.issuer})."
        )


def _show_diff(out: Output, plan: UploadPlan) -> None:
    if out.json_mode or out.quiet:
        return
    out.info(f"Changes to {plan.name!r}:")
    for san in plan.added:
        out.info(f"  + {san}")
    for san in plan.removed:
        out.info(f"  - {san}")
    if plan.mode_change:
        out.info("  mode: auto -> custom (certcli will stop renewing it)")
