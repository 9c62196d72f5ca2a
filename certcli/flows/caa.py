"""CAA before ordering, for every method: each SAN's CAA verdict for the CA a plan (or a
lineage, or config.toml) uses, with our account there and the validation method; the
refusal `attempt` raises when CAA forbids a SAN."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from certcli import challenges
from certcli.caa import CaaFinding, CaaSettings, CaaStatus, Requester, check, settings
from certcli.challenges import Get, ca_facts
from certcli.domains import order_identifiers
from certcli.errors import CaaForbidsError
from certcli.flows.plan import AcmeOptions, Plan, getters, lineage_getter, method_getter
from certcli.models import LineageSettings
from certcli.storage.protocol import Storage


def requester(get: Get, store: Storage | None, caa: CaaSettings, method: str | None) -> Requester:
    """Who asks, as the store knows it: `[caa] identities` else the identities of the CA's
    kept directory, our account's URL there, and the method."""
    facts = ca_facts(get, store)
    return Requester(caa.identities or facts.caa_identities, facts.account_uri, method)


def findings(
    get: Get, store: Storage | None, names: Sequence[str], method: str | None
) -> list[CaaFinding] | None:
    """Each name's CAA verdict for the CA `get` names; None when `[caa] check` is off."""
    caa = settings(get)
    if not caa.check:
        return None
    return check(names, requester(get, store, caa, method), caa.resolvers, caa.timeout)


def check_names(
    store: Storage, config: dict[str, Any], names: Sequence[str], method: str | None = None
) -> list[CaaFinding] | None:
    """The CAA verdict of names alone (`dns check`), for the configured CA and `method`
    (DNS-01 unless told)."""
    get = method_getter(getters(config, None)[0], AcmeOptions())
    return findings(get, store, names, method or challenges.DNS_DEFAULT)


def lineage_findings(
    store: Storage, config: dict[str, Any], lineage: LineageSettings, method: str | None = None
) -> list[CaaFinding] | None:
    """The CAA verdict of a lineage's SANs for its CA and its method, or `method`
    (`status --check-dns`)."""
    get = lineage_getter(config, lineage)
    chosen = method or challenges.chosen(lineage.challenge, get)
    return findings(get, store, order_identifiers(lineage.domains), chosen)


def refusal(identifiers: Sequence[str], plan: Plan, store: Storage) -> CaaForbidsError | None:
    """The error that stops an order when CAA forbids one of its SANs (None otherwise: an
    unknown verdict or a failed lookup is left to the CA)."""
    if plan.caa is None or not plan.caa.check:
        return None

    def get(key: str, default: Any) -> Any:  # the plan's CA, a dry run's staging included
        return plan.ca.directory_url if key == "server" else default

    who = requester(get, store, plan.caa, plan.challenge)
    return forbidden(check(identifiers, who, plan.caa.resolvers, plan.caa.timeout))


def forbidden(found: Sequence[CaaFinding]) -> CaaForbidsError | None:
    """The error naming each SAN that CAA forbids, why, and the records to add."""
    bad = [f for f in found if f.status is CaaStatus.FORBIDS]
    if not bad:
        return None
    message = "CAA forbids " + "; ".join(f"{f.san}: {f.reason}" for f in bad)
    records = list(dict.fromkeys(f.record for f in bad if f.record))
    steps = []
    if records:
        steps.append(
            f"add the record {records[0]}"
            if len(records) == 1
            else "add the records " + " and ".join(records)
        )
    if len(records) < len(bad):
        steps.append("change the CAA records named")
    return CaaForbidsError(
        message, ", ".join(steps) + ", then `certcli renew` issues it", findings=tuple(found)
    )
