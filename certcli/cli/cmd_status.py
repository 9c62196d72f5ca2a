"""certcli status: the lineages at a glance, or one in detail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from certcli.cli import completion
from certcli.cli.runtime import runtime
from certcli.cli.tables import LABELS, san_table

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime
    from typing import Any

    from certcli.cli.output import Output
    from certcli.flows.sync import HostView
    from certcli.report import LineageReport

_STYLE = {"active": "green", "expiring": "yellow", "pending": "cyan"}


def status(
    ctx: typer.Context,
    name: Annotated[
        str | None,
        typer.Argument(
            help="Show this lineage in detail.", autocompletion=completion.lineage_names
        ),
    ] = None,
    check_dns: Annotated[
        bool, typer.Option(help="Check each DNS lineage's records now (else: last check).")
    ] = False,
    challenge: Annotated[
        str | None,
        typer.Option(
            help="With --check-dns: check as this challenge method would (say, before "
            "moving lineages to it), not as each lineage's own.",
            show_default=False,
            autocompletion=completion.checkable,
        ),
    ] = None,
    fail_on: Annotated[
        str | None,
        typer.Option(
            help="Exit 1 when a lineage is expired, expiring, dns, mismatch, damaged or any "
            "(anything not active).",
            show_default=False,
            autocompletion=completion.fail_on,
        ),
    ] = None,
) -> None:
    """Show every lineage (or one, with its SANs) and what needs attention."""
    from certcli.errors import ExitCode, UsageError
    from certcli.report import (
        FAIL_ON,
        all_reports,
        fail_on_matches,
        iter_reports,
        lineage_report,
        report_texts,
        statuses_match,
    )

    if fail_on is not None and fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on {fail_on!r} is not one of: {', '.join(FAIL_ON)}")
    if challenge is not None and not check_dns:
        raise UsageError("--challenge goes with --check-dns")
    rt = runtime(ctx)
    now = rt.now()
    diagnose = caa = None
    if check_dns:
        from functools import partial

        from certcli.flows.caa import lineage_findings
        from certcli.flows.dns import diagnose_lineage, diagnoser

        diagnose = partial(diagnose_lineage, rt.store, rt.config, method=diagnoser(challenge))
        caa = partial(lineage_findings, rt.store, rt.config, method=challenge)
    served = None
    if rt.store.shared:
        from certcli.flows.sync import hosts

        served = hosts(rt.store)
    if rt.out.json_mode and not name:
        # streamed: a report is written, checked against --fail-on and dropped
        matched = False

        def documents() -> Iterator[dict[str, Any] | str]:
            nonlocal matched
            if diagnose is None:  # the reports of the files alone: the status cache's
                for text in report_texts(rt.store, now):
                    matched = matched or bool(
                        fail_on and statuses_match(text.statuses, text.deploy_failed, fail_on)
                    )
                    yield text.text
                return
            for report in iter_reports(rt.store, now, diagnose, caa):
                matched = matched or bool(fail_on and fail_on_matches([report], fail_on))
                yield report.to_json()

        after = None if served is None else {"hosts": [h.to_json() for h in served]}
        rt.out.emit_json_items("lineages", documents(), after)
        if matched:
            raise typer.Exit(ExitCode.FAILED)
        return
    if name:
        reports = [lineage_report(rt.store, name, now, diagnose, caa)]
    else:
        reports = all_reports(rt.store, now, diagnose, caa)
    if rt.out.json_mode:
        found: dict[str, Any] = {"lineages": [r.to_json() for r in reports]}
        if served is not None:
            found["hosts"] = [h.to_json() for h in served]
        rt.out.emit_json(found)
    elif name:
        _detail(rt.out, reports[0], now, served)
    elif reports:
        _table(rt.out, reports, now)
        _caa(rt.out, reports)
        _hosts(rt.out, reports, served)
    else:
        rt.out.info(f"No certificates in {rt.store.where} yet.")
    if fail_on and fail_on_matches(reports, fail_on):
        raise typer.Exit(ExitCode.FAILED)


def _status_text(report: LineageReport) -> str:
    labels = [LABELS[s.value] for s in report.statuses]
    if report.deploy_error is not None:  # the server may still have the previous certificate
        labels.append("deploy failed")
    return ", ".join(labels)


def _status_style(report: LineageReport) -> str:
    return "red" if report.deploy_error else _STYLE.get(report.status.value, "red")


def _days_style(report: LineageReport) -> str | None:
    if report.days_left is None:
        return None
    statuses = {s.value for s in report.statuses}
    return "red" if "expired" in statuses else "yellow" if "expiring" in statuses else "green"


def _renew_at(r: LineageReport, now: datetime, detail: bool = False) -> str:
    """When renew renews it: its day (its moment in detail), "due" once that has come."""
    from certcli.models import rfc3339

    if r.renew_at is None:
        return "never (uploaded)" if detail else "-"
    if r.renew_at <= now:
        if not detail:
            return "due"
        # a failed lineage waits for its backoff (the Next attempt line)
        return "due, from the next attempt on" if r.next_attempt else "due: at the next renew"
    return rfc3339(r.renew_at) if detail else r.renew_at.strftime("%Y-%m-%d")


def _table(out: Output, reports: list[LineageReport], now: datetime) -> None:
    rows, styles = [], []
    for r in reports:
        cert = r.certificate
        rows.append(
            [
                r.name,
                "\n".join(r.domains),
                r.mode.value if r.mode else "-",
                cert.issuer if cert else "-",
                cert.not_after.strftime("%Y-%m-%d") if cert else "-",
                str(r.days_left) if r.days_left is not None else "-",
                _renew_at(r, now),
                _status_text(r),  # last, as scripts read it
            ]
        )
        styles.append([None, None, None, None, None, _days_style(r), None, _status_style(r)])
    headers = ["Name", "Domains", "Mode", "Issuer", "Not After", "Days Left", "Renew At", "Status"]
    out.table(headers, rows, styles)


def _served(r: LineageReport, host: HostView) -> str:
    version = host.serving.get(r.name)
    if version is None:
        return f"{host.host}: nothing"
    behind = "" if version == r.version else f", not the current {r.version}"
    return f"{host.host}: version {version}{behind}"


def _hosts(out: Output, reports: list[LineageReport], served: list[HostView] | None) -> None:
    """Each host of a shared store, and how many lineages it serves the current version of."""
    if not served:
        return
    out.line()
    for host in served:
        current = sum(1 for r in reports if r.version and host.serving.get(r.name) == r.version)
        out.line(
            f"Host {host.host}: serves the current version of {current} of {len(reports)} "
            f"(synced {host.synced_at})"
        )


def _detail(
    out: Output, r: LineageReport, now: datetime, served: list[HostView] | None = None
) -> None:
    from certcli.cli.output import printable
    from certcli.models import rfc3339

    cert = r.certificate
    fields = [
        ("Name", r.name),
        ("Status", _status_text(r)),
        ("Mode", r.mode.value if r.mode else "-"),
        ("Domains", ", ".join(r.domains)),
    ]
    if cert:
        fields += [
            ("Issuer", cert.issuer),
            ("Not before", rfc3339(cert.not_before)),
            ("Not after", rfc3339(cert.not_after)),
            ("Days left", str(r.days_left)),
            ("Serial", cert.serial),
            ("SHA-256", cert.fingerprint_sha256),
            ("Key type", cert.key_type),
            ("Version", str(r.version)),
        ]
    if cert or r.renew_at is not None:
        fields.append(("Renew at", _renew_at(r, now, detail=True)))
    if r.ari_explanation_url:
        fields.append(("Renewal info", f"{r.ari_explanation_url} (the CA's explanation)"))
    if r.pending_csr:
        fields.append(("Pending", "a key and CSR wait for `certcli upload`"))
    if r.error:
        fields.append(("Error", f"{r.error} ({r.error_kind})" if r.error_kind else r.error))
    if r.next_attempt:
        fields.append(("Next attempt", r.next_attempt))
    if r.deploy_error:
        fields.append(("Deploy", f"{r.deploy_error}; `certcli renew` runs the hook again"))
    if served:
        fields.append(("Served", "; ".join(_served(r, h) for h in served)))
    width = max(len(k) for k, _ in fields)
    for key, value in fields:
        out.line(f"{key + ':':<{width + 1}} {printable(value)}")  # a CA's words: one line
    if r.sans:
        out.line()
        san_table(out, r)
        _caa(out, [r], named=False)


def _caa(out: Output, reports: list[LineageReport], *, named: bool = True) -> None:
    """The SANs whose CAA verdict needs a word (`--check-dns`), with the records to add."""
    from certcli.cli.dnsview import render_caa

    render_caa(
        out, [(f"{r.name}: {s.name}" if named else s.name, s.caa) for r in reports for s in r.sans]
    )
