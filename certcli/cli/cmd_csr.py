"""certcli csr: a key and a CSR for a CA outside ACME."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from certcli import keytypes
from certcli.cli import completion
from certcli.cli.runtime import runtime


def csr(
    ctx: typer.Context,
    domains: Annotated[
        list[str], typer.Argument(help="Names for the certificate; the first is the CN.")
    ],
    name: Annotated[
        str | None, typer.Option(help="Lineage name (default: the first domain).")
    ] = None,
    key_type: Annotated[
        str | None,
        typer.Option(
            help=keytypes.described(),
            show_default=False,
            autocompletion=completion.key_types,
        ),
    ] = None,
    org: Annotated[str | None, typer.Option(help="Organization (O).")] = None,
    org_unit: Annotated[str | None, typer.Option(help="Organizational unit (OU).")] = None,
    country: Annotated[str | None, typer.Option(help="Two-letter country code (C).")] = None,
    state: Annotated[str | None, typer.Option(help="State or province (ST).")] = None,
    city: Annotated[str | None, typer.Option(help="Locality (L).")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Write the CSR here (default: stdout).", show_default=False)
    ] = None,
    replace: Annotated[
        bool, typer.Option(help="Discard a key and CSR still waiting for their certificate.")
    ] = False,
) -> None:
    """Generate a private key and a CSR; the key waits in the store for `certcli upload`."""
    from certcli.config import setting
    from certcli.domains import default_lineage_name, normalize_identifiers
    from certcli.errors import UsageError
    from certcli.export import Exported, check_export_target, write_export
    from certcli.keytypes import DEFAULT_KEY_TYPE
    from certcli.selfmanaged import create_csr
    from certcli.x509 import Subject

    rt = runtime(ctx)
    names = normalize_identifiers(domains)
    if country is not None and not (len(country) == 2 and country.isascii() and country.isalpha()):
        raise UsageError(f"--country {country!r} is not a two-letter country code (e.g. DE)")
    target = out if out is not None and str(out) != "-" else None
    if target is not None:
        check_export_target(target)  # before the key is made: a bad --out changes nothing
    result = create_csr(
        rt.store,
        name if name is not None else default_lineage_name(names),  # "" is refused
        names,
        setting("key_type", key_type, rt.config, DEFAULT_KEY_TYPE),
        Subject(org, org_unit, country.upper() if country else None, state, city),
        now=rt.now(),
        replace=replace,
    )
    if target is not None:
        write_export(target, Exported(result.csr_pem, secret=False))
    elif not rt.out.json_mode:
        print(result.csr_pem.decode(), end="")
    if rt.out.json_mode:
        rt.out.emit_json(
            {
                "name": result.name,
                "domains": list(result.domains),
                "csr": result.csr_pem.decode(),
                "csr_path": str(out) if target is not None else None,
                "key_path": str(result.key_path),
                "replaced": result.replaced,
            }
        )
    written = f" CSR written to {out}." if target is not None else ""
    rt.out.info(
        f"Key and CSR for {', '.join(result.domains)} kept as {result.name!r} "
        f"(key: {result.key_path}).{written} "
        f"Send the CSR to your CA, then: certcli upload {result.name} --cert FILE"
    )
