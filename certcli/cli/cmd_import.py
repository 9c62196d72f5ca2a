"""certcli import certbot: adopt certbot's lineages (the work is certcli.importer's)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from certcli.cli.runtime import Runtime, runtime

if TYPE_CHECKING:
    from certcli.importer import ImportPlan, LineageImport

app = typer.Typer(help="Adopt certificates another ACME client manages.", no_args_is_help=True)


@app.command("certbot")
def certbot(
    ctx: typer.Context,
    directory: Annotated[
        Path, typer.Argument(help="certbot's config directory (its --config-dir).")
    ] = Path("/etc/letsencrypt"),
    name: Annotated[
        list[str] | None,
        typer.Option("--name", help="Only this certbot lineage (repeatable).", show_default=False),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Show what would be imported; write nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Import without asking.")] = False,
) -> None:
    """Import certbot's certificates, keys and renewal settings as ACME lineages of certcli;
    certbot's files are only read."""
    from certcli.errors import NotConfirmedError
    from certcli.importer import plan_import
    from certcli.importer_apply import apply_import

    rt = runtime(ctx)
    out = rt.out
    plan = plan_import(rt.store, rt.config, directory, list(name or []), now=rt.now())
    for item in plan.lineages:
        for warning in item.warnings:
            out.warn(f"{item.name}: {warning}")
    for note in plan.notes:
        out.warn(note)
    if not plan.lineages:
        out.info(f"No certbot lineage in {directory / 'renewal'}; nothing to import.")
    if plan.to_import and not dry_run:
        count = len(plan.to_import)
        what = f"{count} certificate{'s' if count > 1 else ''} from {directory}"
        if not yes:
            if not out.stdin_tty:
                raise NotConfirmedError(
                    f"importing {what} needs confirmation",
                    "add --yes (or --dry-run to see what would be imported)",
                )
            if not out.quiet:
                _render(rt, plan, sys.stderr, applied=False)
            if not out.confirm(f"Import {what} into {rt.store.root}?"):
                raise NotConfirmedError("nothing was imported")
        plan = apply_import(rt.store, plan, now=rt.now())
    if out.json_mode:
        out.emit_json(plan.to_json(dry_run))
    elif not out.quiet:
        _render(rt, plan, sys.stdout, applied=not dry_run)
    _fail_on_errors(rt, plan)


def _describe(item: LineageImport) -> str:
    cert, settings = item.certificate, item.settings
    assert cert is not None and settings is not None
    hook = f", deploy hook `{settings.deploy_hook}`" if settings.deploy_hook else ""
    return (
        f"{item.name}: {', '.join(cert.sans)}; expires {cert.not_after:%Y-%m-%d}; {item.how}; "
        f"renewals at {settings.server} with {settings.key_type} keys{hook}"
    )


def _render(rt: Runtime, plan: ImportPlan, stream: TextIO, *, applied: bool) -> None:
    """What the plan does (or did): one line per lineage, account and config.toml key."""
    from certcli.cli.output import printable
    from certcli.config import SECRET_KEYS

    def line(text: str) -> None:
        print(printable(text), file=stream)  # certbot's files' words: one line each

    verbs = {"import": "Would import", "imported": "Imported", "skipped": "Skipped"}
    for item in plan.lineages:
        if item.action in ("import", "imported"):
            where = (
                f", version {item.version} ({rt.store.live_dir(item.name)})" if item.version else ""
            )
            line(f"{verbs[item.action]} {_describe(item)}{where}")
        elif item.action == "skipped":
            line(f"Skipped {item.name}: {item.reason}")
    for account in plan.accounts:
        if account.action in ("import", "imported"):
            verb = "Imported" if applied else "Would import"
            line(f"{verb} certbot's account at {account.server} ({account.uri})")
    for key, value in plan.config.items():
        shown = "(the secret from certbot's credentials)" if key in SECRET_KEYS else repr(value)
        line(f"{'Set' if applied else 'Would set'} {key} = {shown} in config.toml")
    if applied and any(item.action == "imported" for item in plan.lineages):
        line(
            f"certbot still renews these and your servers still read {plan.directory}/live: "
            "point them at certcli's live/ files, then stop certbot's renewals of them"
        )


def _fail_on_errors(rt: Runtime, plan: ImportPlan) -> None:
    """One line per lineage that could not be imported, and exit 1."""
    from certcli.cli.output import error_line
    from certcli.errors import ExitCode

    failed = [item for item in plan.lineages if item.action == "failed"]
    for item in failed:
        error = item.error
        message = error.message if error else "failed"
        print(error_line(f"{item.name}: {message}", error.hint if error else None), file=sys.stderr)
    if failed:
        raise typer.Exit(ExitCode.FAILED)
