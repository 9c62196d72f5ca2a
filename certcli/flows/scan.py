"""What `renew` does with each lineage, read from the store alone: repair a broken
`live`, and decide (by renewal.py, at `now`) whether it is due, in backoff, or not due."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from certcli.errors import CertcliError, StoreError
from certcli.flows.ari import ari_window
from certcli.flows.notify import MISMATCH_KEY, NOTICE_KEY, custom_outcome, recorded_notice
from certcli.flows.outcome import INDEXED_CERTIFICATE, Outcome
from certcli.gcpause import gc_paused
from certcli.models import Action, LineageSettings, Mode, parse_rfc3339
from certcli.renewal import deploy_pending, not_due_until, renewal_reason, renewal_window_start
from certcli.storage.protocol import Storage


def heal(store: Storage, name: str) -> tuple[tuple[str, ...], bool]:
    """Repair a broken `live` under the lineage's lock: what was done, and whether `live`
    is whole (else only a new version can replace it)."""
    if not store.live_broken(name):
        return (), True
    with store.lock(name):
        healed = store.heal_live(name)
    return ((), True) if healed is None else ((healed[0],), healed[1])


def trusted_entry(entry: Any, stamp: Any, now: float) -> str | None:
    """What the index shows of a lineage, if its stamp still holds and its time has not
    come. An entry is [stamp, until, shown]: `shown` what an Outcome shows of the lineage,
    its domains (comma-separated) then its certificate (INDEXED_CERTIFICATE), one space
    between each. Checked this cheaply because `renew` asks it of 100,000 lineages."""
    try:
        old, until, shown = entry
        if old == stamp and now < until and shown.count(" ") == len(INDEXED_CERTIFICATE):
            return shown
    except (TypeError, ValueError, AttributeError):
        pass
    return None


def indexed_outcome(name: str, shown: str) -> Outcome:
    """The outcome of a lineage the index answered for (Outcome.to_json reads its
    certificate out of `shown`): no CertInfo is built."""
    domains = shown.partition(" ")[0]
    return Outcome(name, Action.NOT_DUE, tuple(domains.split(",")), extra={"indexed": shown})


def index_entry(stamp: Any, outcome: Outcome) -> list[Any] | None:
    """A not-due outcome as the index keeps it (see trusted_entry)."""
    cert, until = outcome.certificate, outcome.extra.get("until")
    if cert is None or until is None:
        return None
    shown = cert.to_json()
    fields = [",".join(outcome.domains), *(str(shown[k]) for k in INDEXED_CERTIFICATE)]
    return [stamp, until.timestamp(), " ".join(fields)]


def scan(
    store: Storage,
    name: str,
    config: dict[str, Any],
    now: datetime,
    *,
    force: bool,
    whole: bool = True,
    asked: bool = False,
    rng: random.Random | None = None,
) -> Outcome | Due:
    """What `renew` does with one lineage: an outcome already (custom, not due, in backoff,
    deploy only), or the lineage Due. When `live` is not `whole` (broken, nothing to
    restore) an ACME lineage is issued anew. `asked`: the lineage was named or forced, so a
    custom one says why it is not renewed."""
    lineage = store.read_settings(name)
    state = store.read_lineage_state(name)
    if not whole and lineage.mode is Mode.CUSTOM:
        raise StoreError(
            f"the live version of {name!r} is damaged and no complete version is left",
            f"upload a certificate with `certcli upload {name}`",
        )
    version, live = store.live(name) if whole else (None, None)
    if lineage.mode is Mode.CUSTOM:
        days = (recorded_notice(state, NOTICE_KEY, live) or {}).get("days")
        return custom_outcome(
            lineage,
            live,
            now,
            days if isinstance(days, int) else None,
            asked=asked,
            mismatch_notified=recorded_notice(state, MISMATCH_KEY, live) is not None,
        )
    ari, ask_again = (
        (None, None) if live is None else ari_window(store, name, state, config, lineage, now, rng)
    )
    reason = renewal_reason(
        live,
        lineage.domains,
        now,
        force=force,
        revoked_serial=(state.revoked or {}).get("serial"),
        ari=ari,
    )
    waiting = state.next_attempt
    backoff = bool(reason is not None and waiting and not force and parse_rfc3339(waiting) > now)
    if (reason is None or backoff) and deploy_pending(state.deploy_failed, version):
        # the certificate is fine, the server may not have it: run the deploy hook again
        return Outcome(
            name,
            Action.DEPLOYED,
            lineage.domains,
            version,
            live,
            reason="the last deploy hook failed",
            extra={"lineage": lineage},
        )
    if reason is None:
        assert live is not None  # a lineage without a certificate is always due
        until = min(filter(None, (not_due_until(live, ari), ask_again)))
        return Outcome(
            name, Action.NOT_DUE, lineage.domains, certificate=live, extra={"until": until}
        )
    if backoff:
        # said even without -v when it matters: no certificate, or one expired or expiring
        urgent = live is None or now >= renewal_window_start(live.not_before, live.not_after)
        return Outcome(
            name,
            Action.BACKOFF,
            lineage.domains,
            certificate=live,
            reason=f"next attempt at {waiting}",
            extra={"urgent": reason, "last_error": state.last_error} if urgent else {},
        )
    return Due(lineage, reason, (state.ari or {}).get("id"))


@dataclass(frozen=True)
class Due:
    """A lineage to renew, why, and the certificate ID it replaces (ARI)."""

    lineage: LineageSettings
    reason: str
    replaces: str | None = None


@dataclass(frozen=True)
class Scanned:
    """What the store says of every lineage a renew run looks at."""

    outcomes: list[Outcome]  # read: not due, in backoff, custom, or failed to read
    redeploys: list[Outcome]  # not due, but the live version's deploy hook failed
    due: list[Due]
    healed: dict[str, tuple[str, ...]]  # what was repaired on the way, by lineage
    indexed: dict[str, str]  # not due, as the index says: what it shows of each


@gc_paused()  # see gcpause.py
def scan_all(
    store: Storage,
    names: list[str],
    config: dict[str, Any],
    now: datetime,
    *,
    force: bool,
    dry_run: bool,
    rng: random.Random | None = None,
) -> Scanned:
    """Every lineage named (else every one) scanned at `now`, under the store lock the
    caller holds; the index of lineages found not due is kept up to date."""
    outcomes: list[Outcome] = []
    redeploys: list[Outcome] = []  # not due, but the live version's deploy hook failed
    due: list[Due] = []
    # What an earlier run found not due, and until when: a lineage whose files have not
    # changed since is not read again.
    index = {} if force or dry_run else store.read_renew_index()
    kept = dict(index) if names else {}
    stamp_now = now.timestamp()
    healed: dict[str, tuple[str, ...]] = {}
    indexed: dict[str, str] = {}
    for name in names or store.names():
        stamp = store.lineage_stamp(name)  # taken before reading: a change meanwhile shows
        # a lineage named is always read (`renew NAME` repairs what the index cannot see)
        entry = None if names else index.get(name)
        shown = None if entry is None else trusted_entry(entry, stamp, stamp_now)
        if shown is not None:
            indexed[name] = shown
            kept[name] = entry
            continue
        kept.pop(name, None)
        try:
            # a dry run stores nothing, repairs included
            healed[name], whole = ((), True) if dry_run else heal(store, name)
            item = scan(
                store,
                name,
                config,
                now,
                force=force or dry_run,
                whole=whole,
                asked=bool(names) or force or dry_run,
                rng=rng,
            )
        except (CertcliError, KeyError, TypeError, ValueError) as exc:
            # One damaged lineage is reported; the others are still renewed.
            error = (
                exc
                if isinstance(exc, CertcliError)
                else StoreError(f"cannot read the lineage {name!r}: {type(exc).__name__}: {exc}")
            )
            outcomes.append(Outcome(name, Action.FAILED, error=error))
            continue
        if isinstance(item, Outcome) and item.action == Action.DEPLOYED:
            redeploys.append(item)
        elif isinstance(item, Outcome):
            outcomes.append(item)
            entry = index_entry(stamp, item)
            if entry is not None:
                kept[name] = entry
        else:
            due.append(item)

    if not (force or dry_run) and kept != index:
        store.write_renew_index(kept)
    return Scanned(outcomes, redeploys, due, healed, indexed)
