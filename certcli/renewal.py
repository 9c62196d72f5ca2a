"""Pure renewal decisions: functions of their inputs and `now`, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from certcli.models import CertInfo, LineageStatus, parse_rfc3339

SHORT_LIVED = timedelta(days=10)


def renewal_window_start(not_before: datetime, not_after: datetime) -> datetime:
    """When a certificate becomes due: a third of its lifetime left, or half for
    certificates that live under 10 days (30 days of 90, 15 of 45, 3 of 6)."""
    lifetime = not_after - not_before
    remaining = lifetime / 2 if lifetime < SHORT_LIVED else lifetime / 3
    return not_after - remaining


def last_twentieth(live: CertInfo) -> datetime:
    """Where the last twentieth of a certificate's lifetime starts: due then whatever ARI
    says, as a CA's window may be wrong or never reached."""
    return live.not_after - (live.not_after - live.not_before) / 20


def days_left(not_after: datetime, now: datetime) -> int:
    """Whole days until expiry, rounded down; negative once expired."""
    return (not_after - now) // timedelta(days=1)


#: Days left at which an uploaded certificate's expiry is notified, once each; 0: expired.
EXPIRY_NOTICES = (30, 14, 7, 3, 1, 0)


def expiry_notice(not_after: datetime, now: datetime, notified: int | None) -> int | None:
    """The notice due now about a certificate that expires at `not_after`: the smallest
    threshold crossed (fewer than N days left; 0 once expired), unless that threshold or a
    smaller one was `notified` already. None: nothing to send."""
    left = not_after - now
    crossed = [t for t in EXPIRY_NOTICES if left < timedelta(days=t) or now >= not_after]
    if not crossed:
        return None
    due = min(crossed)
    return due if notified is None or due < notified else None


def deploy_pending(failed: Mapping[str, Any] | None, live_version: int | None) -> bool:
    """Whether state.json's `deploy_failed` says that the live version's deploy hook failed
    (and it has not succeeded since): `renew` runs it again, `status` shows it."""
    return (
        isinstance(failed, dict)
        and live_version is not None
        and failed.get("version") == live_version
    )


def lineage_statuses(
    live: CertInfo | None,
    now: datetime,
    *,
    failed: bool = False,
    dns: frozenset[LineageStatus] = frozenset(),
    domains: tuple[str, ...] = (),
    damaged: bool = False,
) -> list[LineageStatus]:
    """Every status that holds, most urgent first; `active` only when nothing else does.
    `domains` are the lineage's: a live certificate that misses one is a mismatch."""
    from certcli.domains import uncovered

    found: set[LineageStatus] = set(dns)
    if damaged:
        found.add(LineageStatus.DAMAGED)
    if failed:
        found.add(LineageStatus.FAILED)
    if live is None:
        if not damaged:
            found.add(LineageStatus.PENDING)
    elif now >= live.not_after:
        found.add(LineageStatus.EXPIRED)
    elif now >= renewal_window_start(live.not_before, live.not_after):
        found.add(LineageStatus.EXPIRING)
    if live is not None and uncovered(live.sans, domains):
        found.add(LineageStatus.MISMATCH)
    ordered = [s for s in LineageStatus if s in found]
    return ordered or [LineageStatus.ACTIVE]


def renewal_reason(
    live: CertInfo | None,
    domains: tuple[str, ...],
    now: datetime,
    *,
    force: bool = False,
    revoked_serial: str | None = None,
    ari: tuple[datetime, datetime] | None = None,
) -> str | None:
    """Why a lineage is due now, or None when it is not. With `ari` (the moment chosen in
    the CA's window, and the window's end) that window replaces the lifetime-third rule."""
    from certcli.domains import uncovered

    if force:
        return "forced"
    if live is None:
        return "no certificate yet"
    if revoked_serial == live.serial:
        return "revoked"
    missing = uncovered(live.sans, domains)
    if missing:
        return f"not yet covered: {', '.join(missing)}"
    if now >= live.not_after:
        return "expired"
    if ari is not None:
        return ari_reason(ari[0], ari[1], live, now)
    if now >= renewal_window_start(live.not_before, live.not_after):
        return f"{days_left(live.not_after, now)} days left"
    return None


def not_due_until(live: CertInfo, ari: tuple[datetime, datetime] | None) -> datetime:
    """The first moment `renewal_reason` can find a lineage that is not due due, if nothing
    else changes (its settings, state or certificate)."""
    if ari is not None:
        return min(ari[0], ari[1], last_twentieth(live))
    return renewal_window_start(live.not_before, live.not_after)


def renew_at(
    live: CertInfo | None,
    domains: tuple[str, ...],
    now: datetime,
    *,
    revoked_serial: str | None = None,
    ari: tuple[datetime, datetime] | None = None,
    tried_at: datetime | None = None,
) -> datetime:
    """When `renew` renews an ACME lineage, if nothing changes: the moment `not_due_until`
    names (the ARI moment, else the lifetime rule), which is past once it is due by time.
    Due for another reason (revoked, a name not covered): since the certificate's start;
    without a certificate: since the last attempt (`tried_at`), else now. Past moments
    that stay put, so that two looks at one store agree. A backoff after failures may hold
    it later still."""
    if live is None:
        return tried_at if tried_at is not None and tried_at <= now else now
    until = not_due_until(live, ari)
    due = renewal_reason(live, domains, now, revoked_serial=revoked_serial, ari=ari)
    return live.not_before if due and until > now else until


def stored_ari(ari: Mapping[str, Any] | None) -> tuple[datetime, datetime] | None:
    """The (chosen moment, window end) that state.json's `ari` entry holds, as
    `renewal_reason` takes them; None before the CA has given a window."""
    if not ari or "url" not in ari or "start" not in ari:
        return None
    start, end = parse_rfc3339(ari["start"]), parse_rfc3339(ari["end"])
    return ari_moment(start, end, float(ari["fraction"])), end


#: Let's Encrypt's integration guide: 1 min, 10 min, 100 min, then once a day.
BACKOFF = (timedelta(minutes=1), timedelta(minutes=10), timedelta(minutes=100))
DAILY = timedelta(days=1)
#: Failures that never reached the CA put no load on it, so they do not back off.
NO_BACKOFF = frozenset({"dns_not_ready", "caa_forbids"})


def next_attempt(
    failed_at: datetime, failures: int, kind: str, retry_after: float | None = None
) -> datetime | None:
    """When a failed lineage may be tried again (None: at the next run)."""
    if kind in NO_BACKOFF:
        return None
    delay = BACKOFF[failures - 1] if 1 <= failures <= len(BACKOFF) else DAILY
    if retry_after:
        delay = max(delay, timedelta(seconds=retry_after))
    return failed_at + delay


def ari_moment(start: datetime, end: datetime, fraction: float) -> datetime:
    """The moment to renew inside an ARI window; `fraction` is drawn at random once."""
    return start + (end - start) * min(max(fraction, 0.0), 1.0)


def ari_reason(chosen: datetime, window_end: datetime, live: CertInfo, now: datetime) -> str | None:
    """Due by ACME Renewal Information: at the moment chosen inside the CA's window, once
    the window has passed, or in the last twentieth of the lifetime whatever ARI says."""
    if now >= chosen or now >= window_end:
        return "inside the CA's renewal window (ARI)"
    if now >= last_twentieth(live):
        return f"{days_left(live.not_after, now)} days left"
    return None


def records_ending(dns: Mapping[str, Any] | None, before: datetime) -> list[tuple[str, datetime]]:
    """The SANs whose validating record (a dns-persist-01 record's persistUntil, kept in
    state.json's SAN cache as `valid_until`) ends before `before`, with when: the renewal
    then would find it expired."""
    ending = []
    for san, entry in ((dns or {}).get("sans") or {}).items():
        until = entry.get("valid_until") if isinstance(entry, Mapping) else None
        if not isinstance(until, int | float) or isinstance(until, bool):
            continue
        try:
            moment = datetime.fromtimestamp(until, UTC)
        except (OverflowError, OSError, ValueError):  # persistUntil=99999999999999999999
            continue  # past any date: it never ends before a renewal
        if moment < before:
            ending.append((san, moment))
    return ending
