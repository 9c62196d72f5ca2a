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


def not_due_by_index(entry: Any, name: str, stamp: str, now: float) -> Outcome | None:
    """The index's word on a lineage, if its stamp still holds and its time has not come.
    Its certificate stays the index's JSON (Outcome.to_json reads it): a `renew` with
    nothing due over 100,000 lineages builds no CertInfo."""
    if not isinstance(entry, dict) or entry.get("stamp") != stamp:
        return None
    try:
        if now >= entry["until"]:
            return None
        certificate, domains = entry["certificate"], entry["domains"]
        if not all(isinstance(certificate[k], str) for k in INDEXED_CERTIFICATE):
            return None
        if not isinstance(domains, list):
            return None
        return Outcome(name, Action.NOT_DUE, tuple(domains), extra={"indexed": certificate})
    except (KeyError, TypeError, ValueError):
        return None


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

    outcomes: list[Outcome]  # not due, in backoff, custom, or failed to read
    redeploys: list[Outcome]  # not due, but the live version's deploy hook failed
    due: list[Due]
    healed: dict[str, tuple[str, ...]]  # what was repaired on the way, by lineage


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
    for name in names or store.names():
        stamp = store.lineage_stamp(name)
        known = not_due_by_index(index.get(name), name, stamp, stamp_now)
        if known is not None:
            outcomes.append(known)
            kept[name] = index[name]
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
            if "until" in item.extra and item.certificate is not None:
                kept[name] = {
                    "stamp": stamp,  # taken before reading: a change meanwhile shows
                    "until": item.extra["until"].timestamp(),
                    "domains": list(item.domains),
                    # what an Outcome shows of it, no more: the index of 100,000 is read whole
                    "certificate": {
                        k: v
                        for k, v in item.certificate.to_json().items()
                        if k in INDEXED_CERTIFICATE
                    },
                }
        else:
            due.append(item)

    if not (force or dry_run) and kept != index:
        store.write_renew_index(kept)
    return Scanned(outcomes, redeploys, due, healed)
