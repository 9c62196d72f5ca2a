"""Notifications of a run's events, and the notices about uploaded certificates (never
renewed by certcli: warned about as they near expiry, notified once per threshold)."""

from __future__ import annotations

import contextlib
from dataclasses import replace
from datetime import datetime
from typing import Any

from certcli.domains import uncovered
from certcli.errors import LockedError, StoreError
from certcli.flows.outcome import RECORD_ENDING, Outcome
from certcli.hooks import notify
from certcli.models import Action, CertInfo, LineageSettings, LineageState
from certcli.renewal import days_left, expiry_notice, renewal_window_start
from certcli.storage.protocol import Storage


def notify_event(config: dict[str, Any], outcome: Outcome, kind: str, text: str) -> list[str]:
    """Send one event about an outcome to `[notify]` (if set); what failed in sending it."""
    settings = config.get("notify") or {}
    if not (settings.get("command") or settings.get("webhook")):
        return []
    return notify(settings, {**outcome.to_json(), "event": kind, "text": text})


def notify_run(store: Storage, config: dict[str, Any], outcomes: list[Outcome]) -> list[str]:
    """The events of a renew run (a deploy hook that failed is notified where it ran)."""
    on_success = (config.get("notify") or {}).get("on_success")
    problems: list[str] = []
    for o in outcomes:
        for kind, text in _events(o, on_success):
            sent = notify_event(config, o, kind, text)
            if "notice" in o.extra and not sent:
                _remember_notice(store, o.name, *o.extra["notice"])
            problems += sent
    return problems


def _events(o: Outcome, on_success: bool) -> list[tuple[str, str]]:
    """What a renew run notifies of one outcome, as (kind, text)."""
    if o.action == Action.FAILED and o.error is not None:
        return [("renewal_failed", f"certcli: renewing {o.name} failed: {o.error.message}")]
    if o.action == Action.SKIPPED and "notice" in o.extra:
        return [(o.extra["event"], f"certcli: {o.name}: {o.reason}")]
    events = []
    if o.action == Action.RENEWED and on_success:
        events.append(("renewed", f"certcli: renewed {o.name} (version {o.version})"))
    if o.extra.get("event") == RECORD_ENDING:  # said even when renewals are not
        events.append((RECORD_ENDING, f"certcli: {o.name}: {o.extra['said']}"))
    return events


#: state.json's records of the notices sent about an uploaded certificate: the last expiry
#: threshold, and that it misses some of the lineage's domains.
NOTICE_KEY = "expiry_notice"
MISMATCH_KEY = "mismatch_notice"


def _remember_notice(store: Storage, name: str, key: str, notice: dict[str, Any]) -> None:
    """Best effort: without it the same notice is sent again at the next run."""
    with contextlib.suppress(LockedError, StoreError):
        store.update_state(name, lambda state: replace(state, **{key: notice}))


def recorded_notice(state: LineageState, key: str, live: CertInfo | None) -> dict[str, Any] | None:
    """The notice recorded under `key` about the live certificate (None: none about it)."""
    notice = getattr(state, key)
    if live is None or not isinstance(notice, dict) or notice.get("serial") != live.serial:
        return None
    return notice


def _sent(live: CertInfo, **more: Any) -> dict[str, Any]:
    """The record of a notice about the live certificate, kept once it is sent."""
    return {"serial": live.serial, **more}


def custom_next_step(lineage: LineageSettings) -> str:
    """What renews an uploaded lineage: a new upload, or a switch to ACME."""
    return (
        f"upload a certificate that covers {', '.join(lineage.domains)} "
        f"(`certcli csr {lineage.name}` makes a key and CSR for one), or switch it to ACME "
        f"with `certcli issue {lineage.name} --force-renewal`"
    )


def custom_outcome(
    lineage: LineageSettings,
    live: CertInfo | None,
    now: datetime,
    notified: int | None = None,
    *,
    asked: bool = False,
    mismatch_notified: bool = False,
) -> Outcome:
    """An uploaded lineage is never renewed: inside its renewal window it is warned about,
    and notified once per threshold of days left (renewal.expiry_notice); a certificate that
    misses some of its domains is warned about, and notified once; `asked` (named or
    forced) it says so, and what would renew it."""
    reason = "uploaded certificate: certcli does not renew it"
    extra: dict[str, Any] = {}
    if asked:
        reason, extra = f"{reason}; {custom_next_step(lineage)}", {"asked": True}
    if live is not None and now >= renewal_window_start(live.not_before, live.not_after):
        left = days_left(live.not_after, now)
        reason = (
            f"uploaded certificate expires in {left} days: upload a new one"
            if left >= 0
            else "uploaded certificate has expired: upload a new one"
        )
        days = expiry_notice(live.not_after, now, notified)
        extra = {"warn": True}
        if days is not None:  # the event, and what state.json keeps once it is sent
            extra |= {"event": "custom_expiring", "notice": (NOTICE_KEY, _sent(live, days=days))}
        return Outcome(
            lineage.name,
            Action.SKIPPED,
            lineage.domains,
            certificate=live,
            reason=reason,
            extra=extra,
        )
    missing = uncovered(live.sans, lineage.domains) if live is not None else []
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        # what renews it, as when asked: named or not, a mismatch is said at every run
        reason = f"uploaded certificate does not cover {shown}: {custom_next_step(lineage)}"
        extra = {**extra, "warn": True}
        if not mismatch_notified:
            extra |= {"event": "custom_mismatch", "notice": (MISMATCH_KEY, _sent(live))}
    return Outcome(
        lineage.name, Action.SKIPPED, lineage.domains, certificate=live, reason=reason, extra=extra
    )
