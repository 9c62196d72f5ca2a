"""certcli revoke: a lineage's live certificate revoked at its CA, and recorded."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from certcli.errors import UsageError
from certcli.flows.plan import AcmeOptions, ca_settings
from certcli.models import rfc3339
from certcli.storage.protocol import Storage

#: RFC 5280 reason codes that ACME CAs accept for revocation.
REVOCATION_REASONS = {
    "unspecified": 0,
    "keyCompromise": 1,
    "affiliationChanged": 3,
    "superseded": 4,
    "cessationOfOperation": 5,
}


def reason_name(reason: str) -> str:
    """The RFC 5280 name of a revocation reason given by name (any case) or code."""
    for label, code in REVOCATION_REASONS.items():
        if reason.lower() in (label.lower(), str(code)):
            return label
    raise UsageError(
        f"unknown revocation reason {reason!r}", f"choose one of: {', '.join(REVOCATION_REASONS)}"
    )


def mark_revoked(store: Storage, name: str, serial: str, reason: str, now: datetime) -> None:
    """Remember the revocation at `now`: the lineage is then due for renewal."""
    revoked = {"serial": serial, "reason": reason, "at": rfc3339(now)}
    store.update_state(name, lambda state: replace(state, revoked=revoked))


@dataclass(frozen=True)
class Revocation:
    name: str
    serial: str
    reason: str  # the RFC 5280 name
    already: bool = False  # the CA had revoked it before (an earlier run, say): recorded now

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "serial": self.serial,
            "reason": self.reason,
            "revoked": True,
            "already_revoked": self.already,
        }


def revoke(
    store: Storage,
    config: dict[str, Any],
    name: str,
    reason: str,
    now: datetime | None = None,
) -> Revocation:
    """Revoke a lineage's live certificate at its CA and record it, under the lineage's
    lock. The store must be able to record it before the CA is asked: a revocation the
    store forgot would leave a revoked certificate live and not due."""
    from certcli.engine import Ca  # the ACME stack

    label = reason_name(reason)
    store.require(name)  # an unknown name leaves no lock file behind
    with store.lock(name):
        lineage = store.read_settings(name)
        info = store.live_info(name)
        if info is None:
            raise UsageError(f"{name!r} has no certificate to revoke")
        cert_pem = store.read_live_file(name, "cert.pem")
        store.update_state(name, lambda state: state)  # writable? (else StoreError, exit 5)
        settings = ca_settings(AcmeOptions(), config, lineage)
        ca = Ca(store, settings, lambda _url: False, create=False)
        revoked_now = ca.revoke(cert_pem, REVOCATION_REASONS[label])
        mark_revoked(store, name, info.serial, label, now or datetime.now(UTC))  # once done
    return Revocation(name, info.serial, label, already=not revoked_now)
