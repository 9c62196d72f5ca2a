"""What a flow reports about one lineage, and how it reports progress on the way."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from certcli.errors import CertcliError
from certcli.models import Action, CertInfo, Phase, rfc3339

#: Called with (lineage name, phase) as an issuance moves on; Queued (never stored)
#: announces each lineage a pool is about to work on, so that a view knows the total.
Progress = Callable[[str, Phase], None]

#: The event notified when a record that validates a lineage (dns-persist-01's, with a
#: persistUntil) ends before its next renewal.
RECORD_ENDING = "record_expiring"


#: The fields of CertInfo.to_json an Outcome shows, as the renew index keeps them.
INDEXED_CERTIFICATE = ("not_after", "serial", "fingerprint_sha256")


@dataclass(frozen=True)
class Outcome:
    """What happened to one lineage in one run."""

    name: str
    action: Action
    domains: tuple[str, ...] = ()
    version: int | None = None
    certificate: CertInfo | None = None
    error: CertcliError | None = None
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    problems: tuple[str, ...] = ()  # e.g. a deploy hook that failed after a renewal
    deploy_error: str | None = None  # the deploy hook of this outcome's version failed
    notes: tuple[str, ...] = ()  # what renew repaired on the way (a broken `live`)

    def to_json(self) -> dict[str, Any]:
        cert = self.certificate
        # a lineage the renew index answered for: its certificate as the index keeps it
        indexed = self.extra.get("indexed") if cert is None else None
        if indexed is not None:  # its domains, then INDEXED_CERTIFICATE (flows/scan.py)
            not_after, serial, fingerprint = indexed.split(" ")[1:]
        elif cert is not None:
            not_after, serial, fingerprint = (
                rfc3339(cert.not_after),
                cert.serial,
                cert.fingerprint_sha256,
            )
        else:
            not_after = serial = fingerprint = None
        return {
            "name": self.name,
            "action": str(self.action),
            "domains": list(self.domains),
            "version": self.version,
            "reason": self.reason,
            "not_after": not_after,
            "serial": serial,
            "fingerprint_sha256": fingerprint,
            "error": self.error.message if self.error else None,
            "error_kind": getattr(self.error, "kind", "error") if self.error else None,
            "sans": [d.to_json() for d in getattr(self.error, "diagnoses", ())],
            "caa": [{"name": f.san, **f.to_json()} for f in getattr(self.error, "findings", ())],
            "problems": list(self.problems),
            "deploy_error": self.deploy_error,
            "notes": list(self.notes),
        }
