"""ACME Renewal Information: the CA's window for a certificate, and the moment in it."""

from __future__ import annotations

import contextlib
import random
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from certcli.errors import CertcliError, LockedError
from certcli.flows.plan import AcmeOptions, ca_settings
from certcli.models import LineageSettings, LineageState, parse_rfc3339, rfc3339
from certcli.renewal import stored_ari
from certcli.storage.protocol import Storage

if TYPE_CHECKING:
    from certcli.engine import CaSettings

#: The random source of the moments chosen in windows, unless a caller gives its own.
RANDOM = random.Random()


def refresh_ari(
    ari: dict[str, Any],
    settings: CaSettings,
    now: datetime,
    rng: random.Random | None = None,
) -> dict[str, Any]:
    """Fetch a certificate's renewal window and pick (once per window) a random moment in
    it. A CA that does not answer leaves the previous window, asked again in an hour."""
    from certcli.engine import fetch_renewal_window  # the ACME stack

    try:
        window = fetch_renewal_window(ari["url"], settings)
    except CertcliError:
        return {**ari, "next_check": rfc3339(now + timedelta(hours=1))}
    start, end = rfc3339(window.start), rfc3339(window.end)
    same = (ari.get("start"), ari.get("end")) == (start, end) and "fraction" in ari
    fresh = {k: v for k, v in ari.items() if k != "explanation_url"}  # the latest answer's
    if window.explanation_url:
        fresh["explanation_url"] = window.explanation_url
    return {
        **fresh,
        "start": start,
        "end": end,
        "fraction": ari["fraction"] if same else (rng or RANDOM).random(),
        "next_check": rfc3339(now + timedelta(seconds=window.retry_after)),
    }


def ari_window(
    store: Storage,
    name: str,
    state: LineageState,
    config: dict[str, Any],
    lineage: LineageSettings,
    now: datetime,
    rng: random.Random | None = None,
) -> tuple[tuple[datetime, datetime] | None, datetime | None]:
    """The (chosen moment, window end) of a lineage whose CA offers ARI, asking the CA
    again only once the last answer's Retry-After has passed; and when that will be."""
    ari = state.ari
    if not ari or "url" not in ari:
        return None, None
    if "start" not in ari or now >= parse_rfc3339(ari["next_check"]):
        ari = refresh_ari(ari, ca_settings(AcmeOptions(), config, lineage), now, rng)
        with contextlib.suppress(LockedError):  # else: next run keeps it
            store.update_state(name, lambda fresh: replace(fresh, ari=ari))
    return stored_ari(ari), parse_rfc3339(ari["next_check"])
