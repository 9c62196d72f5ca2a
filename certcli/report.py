"""What `status` shows: lineage and SAN reports built from the store, and their JSON form.

Reads only lineage.toml, state.json and the live version's meta.json, so listing a thousand
lineages never parses a certificate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from certcli.challenges.dns01 import cached, san_json
from certcli.domains import covered_in, san_index
from certcli.errors import StoreError
from certcli.models import (
    CertInfo,
    LineageSettings,
    LineageState,
    LineageStatus,
    Mode,
    SslStatus,
    parse_rfc3339,
    rfc3339,
)
from certcli.renewal import (
    days_left,
    deploy_pending,
    last_twentieth,
    lineage_statuses,
    not_due_until,
    renew_at,
    renewal_window_start,
    stored_ari,
)
from certcli.storage.protocol import Storage

FAIL_ON: dict[str, frozenset[LineageStatus]] = {
    "expired": frozenset({LineageStatus.EXPIRED}),
    "expiring": frozenset({LineageStatus.EXPIRING, LineageStatus.EXPIRED}),
    "dns": frozenset(
        {LineageStatus.DNS_MISSING, LineageStatus.DNS_WRONG, LineageStatus.DNS_DUPLICATE}
    ),
    "mismatch": frozenset({LineageStatus.MISMATCH}),
    "damaged": frozenset({LineageStatus.DAMAGED}),
    "any": frozenset(LineageStatus) - {LineageStatus.ACTIVE},
}


@dataclass(frozen=True)
class SanReport:
    name: str
    ssl_status: SslStatus
    dns_status: str | None = None
    expected_target: str | None = None
    found: str | None = None
    challenge_name: str | None = None  # where the method looks (None: `_acme-challenge.`)
    caa: dict[str, Any] | None = None  # its CAA verdict (`status --check-dns`), as JSON

    def to_json(self) -> dict[str, Any]:
        return san_json(
            self.name,
            self.dns_status,
            self.ssl_status.value,
            self.expected_target,
            self.found,
            self.challenge_name,
            caa=self.caa,
        )


@dataclass(frozen=True)
class LineageReport:
    name: str
    domains: tuple[str, ...]
    mode: Mode | None  # None: lineage.toml cannot be read
    statuses: tuple[LineageStatus, ...]
    certificate: CertInfo | None
    days_left: int | None
    sans: tuple[SanReport, ...]
    version: int | None
    pending_csr: bool
    error: str | None = None
    error_kind: str | None = None
    next_attempt: str | None = None
    deploy_error: str | None = None  # the live version's deploy hook failed (and when)
    renew_at: datetime | None = None  # when `renew` renews it (None: never, as uploaded)
    ari_explanation_url: str | None = None  # the CA's page on its renewal window
    # until when, its files unchanged, this report stays the same (None: it changes with
    # time, or it is not to be kept): the status cache keeps it that long
    stable_until: datetime | None = None

    @property
    def status(self) -> LineageStatus:
        return self.statuses[0]

    def to_json(self) -> dict[str, Any]:
        cert = self.certificate
        return {
            "name": self.name,
            "domains": list(self.domains),
            "mode": self.mode.value if self.mode else None,
            "status": self.status.value,
            "statuses": [s.value for s in self.statuses],
            "issuer": cert.issuer if cert else None,
            "not_before": rfc3339(cert.not_before) if cert else None,
            "not_after": rfc3339(cert.not_after) if cert else None,
            "days_left": self.days_left,
            "serial": cert.serial if cert else None,
            "fingerprint_sha256": cert.fingerprint_sha256 if cert else None,
            "key_type": cert.key_type if cert else None,
            "version": self.version,
            "pending_csr": self.pending_csr,
            "error": self.error,
            "error_kind": self.error_kind,
            "next_attempt": self.next_attempt,
            "deploy_failed": self.deploy_error is not None,
            "deploy_error": self.deploy_error,
            "renew_at": rfc3339(self.renew_at) if self.renew_at else None,
            "ari_explanation_url": self.ari_explanation_url,
            "sans": [s.to_json() for s in self.sans],
        }


_DNS_STATUS = {
    "missing": LineageStatus.DNS_MISSING,
    "wrong": LineageStatus.DNS_WRONG,
    "duplicate": LineageStatus.DNS_DUPLICATE,
}

#: A fresh DNS diagnosis of a lineage (for --check-dns), None for HTTP-01 lineages; the
#: CAA check of its SANs has the same shape (None when `[caa] check` is off).
Diagnose = Callable[[LineageSettings], "list[Any] | None"]


def lineage_report(
    store: Storage,
    name: str,
    now: datetime,
    diagnose: Diagnose | None = None,
    caa: Diagnose | None = None,
) -> LineageReport:
    """A lineage as `status` shows it. DNS statuses come from `diagnose` (made now, for
    --check-dns) or else from the cache of the last CNAME Check in state.json. A lineage
    whose files cannot be read is reported Damaged, with the file and what is wrong: one
    damaged lineage never hides the others."""
    config: LineageSettings | None = None
    try:
        config = store.read_settings(name)
        version, cert = store.live(name)
        state = store.read_lineage_state(name)
        fresh_dns = diagnose(config) if diagnose else None
        report = _report(store, config, version, cert, state, now, fresh_dns)
        return _with_caa(report, caa(config) if caa else None)
    except StoreError as exc:
        error = exc.message + (f"; {exc.hint}" if exc.hint else "")
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # lineage.toml and meta.json are checked as they are read: what is left is state.json
        error = f"cannot read {store.state_where(name)}: {type(exc).__name__}: {exc}"
    return LineageReport(
        name=name,
        domains=config.domains if config else (),
        mode=config.mode if config else None,
        statuses=(LineageStatus.DAMAGED,),
        certificate=None,
        days_left=None,
        sans=(),
        version=None,
        pending_csr=store.has_pending(name),
        error=error,
        error_kind="damaged",
    )


def _report(
    store: Storage,
    config: LineageSettings,
    version: int | None,
    cert: CertInfo | None,
    state: LineageState,
    now: datetime,
    fresh_dns: list[Any] | None,
) -> LineageReport:
    error = state.last_error
    # a null last_error (edited by hand) has always counted as a failure
    recorded = error is not None or "last_error" in state.extra
    failed = recorded and state.last_error_kind != "dns_not_ready"
    cache = state.dns or {}
    if fresh_dns is not None:
        dns = {d.san: cached(d) for d in fresh_dns}
        target = fresh_dns[0].expected_target if fresh_dns else None
    else:
        dns, target = cache.get("sans", {}), cache.get("target")
    index = san_index(cert.sans) if cert else frozenset()
    sans = tuple(
        SanReport(
            name=domain,
            ssl_status=SslStatus.COVERED if covered_in(index, domain) else SslStatus.NOT_COVERED,
            dns_status=dns.get(domain, {}).get("status"),
            expected_target=target if domain in dns else None,
            found=dns.get(domain, {}).get("found"),
            challenge_name=dns.get(domain, {}).get("challenge_name"),
        )
        for domain in config.domains
    )
    dns_flags = frozenset(_DNS_STATUS[s.dns_status] for s in sans if s.dns_status in _DNS_STATUS)
    statuses = lineage_statuses(cert, now, failed=failed, dns=dns_flags, domains=config.domains)
    ari = state.ari or {}
    explanation = ari.get("explanation_url")
    return LineageReport(
        name=config.name,
        domains=config.domains,
        mode=config.mode,
        statuses=tuple(statuses),
        certificate=cert,
        days_left=days_left(cert.not_after, now) if cert else None,
        sans=sans,
        version=version,
        pending_csr=store.has_pending(config.name),
        error=error,
        error_kind=state.last_error_kind if error else None,
        next_attempt=state.next_attempt,
        deploy_error=_deploy_error(state, version),
        renew_at=_renew_at(config, cert, state, now),
        ari_explanation_url=explanation if isinstance(explanation, str) else None,
        stable_until=_stable_until(cert, state, now) if fresh_dns is None else None,
    )


def _stable_until(cert: CertInfo | None, state: LineageState, now: datetime) -> datetime | None:
    """The first moment at which a report read at `now` can change with time alone: each
    moment where a status, the days left or `renew_at` can change is a candidate. None
    without a certificate (`renew_at` is then `now`)."""
    if cert is None:
        return None
    ari = stored_ari(state.ari)
    moments = [
        cert.not_after,
        renewal_window_start(cert.not_before, cert.not_after),
        last_twentieth(cert),
        not_due_until(cert, ari),
        cert.not_after - timedelta(days=days_left(cert.not_after, now)),  # one day less
        *(ari or ()),
    ]
    return min((m for m in moments if m >= now), default=None)


def _renew_at(
    config: LineageSettings, cert: CertInfo | None, state: LineageState, now: datetime
) -> datetime | None:
    """When `renew` renews an ACME lineage, from the ARI window state.json keeps (no CA is
    asked); None for an uploaded one, which is never renewed."""
    if config.mode is Mode.CUSTOM:
        return None
    return renew_at(
        cert,
        config.domains,
        now,
        revoked_serial=(state.revoked or {}).get("serial"),
        ari=stored_ari(state.ari) if cert else None,
        tried_at=parse_rfc3339(state.last_attempt) if state.last_attempt else None,
    )


def _with_caa(report: LineageReport, findings: list[Any] | None) -> LineageReport:
    """The report with each SAN's CAA verdict."""
    if not findings:
        return report
    verdicts = {f.san: f.to_json() for f in findings}
    sans = tuple(replace(s, caa=verdicts.get(s.name)) for s in report.sans)
    return replace(report, sans=sans)


def _deploy_error(state: LineageState, version: int | None) -> str | None:
    """What the failed deploy hook of the live version said, and when."""
    failed = state.deploy_failed
    if failed is None or not deploy_pending(failed, version):
        return None
    return f"{failed.get('error')} (at {failed.get('at')})"


def all_reports(
    store: Storage, now: datetime, diagnose: Diagnose | None = None, caa: Diagnose | None = None
) -> list[LineageReport]:
    return list(iter_reports(store, now, diagnose, caa))


def iter_reports(
    store: Storage, now: datetime, diagnose: Diagnose | None = None, caa: Diagnose | None = None
) -> Iterator[LineageReport]:
    """Every lineage's report, one at a time (`status --json` streams them)."""
    for name in store.names():
        yield lineage_report(store, name, now, diagnose, caa)


def fail_on_matches(reports: list[LineageReport], fail_on: str) -> bool:
    """Whether a report matches --fail-on; `any` includes a failed deploy hook."""
    return any(statuses_match(r.statuses, r.deploy_error is not None, fail_on) for r in reports)


def statuses_match(statuses: Iterable[str], deploy_failed: bool, fail_on: str) -> bool:
    """Whether a lineage of these statuses matches --fail-on (`any`: a failed deploy too)."""
    return bool(FAIL_ON[fail_on].intersection(statuses)) or (fail_on == "any" and deploy_failed)


@dataclass(frozen=True)
class ReportText:
    """A lineage's report as `status --json` writes it, with what --fail-on looks at."""

    text: str  # its JSON, one line
    statuses: tuple[str, ...]
    deploy_failed: bool


def report_texts(store: Storage, now: datetime) -> Iterator[ReportText]:
    """Every lineage's report as JSON text, from the status cache where the lineage's
    files are as they were and time has not changed it (storage/status_cache.py); the
    cache is rewritten as they go, and replaces the old one once all are out."""
    import json

    from certcli.gcpause import gc_paused

    cache = store.status_cache()
    at = now.timestamp()
    complete = False
    try:
        with gc_paused():  # see gcpause.py
            for name in store.names():
                stamp = store.report_stamp(name)
                entry = cache.get(name)
                if entry is not None and entry[0] == stamp and at < entry[1]:
                    cache.keep(name, entry, same=True)
                    yield ReportText(entry[4], tuple(entry[2].split(",")), entry[3])
                    continue
                report = lineage_report(store, name, now)
                statuses = tuple(s.value for s in report.statuses)
                done = ReportText(
                    json.dumps(report.to_json()), statuses, report.deploy_error is not None
                )
                if stamp is not None and report.stable_until is not None:
                    until = report.stable_until.timestamp()
                    kept = [stamp, until, ",".join(statuses), done.deploy_failed, done.text]
                    cache.keep(name, kept, same=False)
                yield done
        complete = True
    finally:
        cache.close(complete=complete)
