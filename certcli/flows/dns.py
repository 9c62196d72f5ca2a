"""The CNAME Check of DNS-01 lineages: diagnose each SAN's delegation, say what to fix,
and keep the result in state.json for `status`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from certcli.domains import order_identifiers
from certcli.errors import DnsNotReadyError
from certcli.flows.plan import AcmeOptions, make_plan
from certcli.models import LineageSettings, rfc3339
from certcli.storage.protocol import Storage

if TYPE_CHECKING:
    from certcli.challenges.dns01 import DnsSettings
    from certcli.dnscheck import Diagnosis


def check_dns(domains: tuple[str, ...] | list[str], dns: DnsSettings) -> list[Diagnosis]:
    """The CNAME Check: diagnose every SAN; raise DnsNotReadyError unless all are Valid."""
    from certcli.dnscheck import DnsStatus, diagnose  # dnspython: only for DNS-01

    diagnoses = diagnose(list(domains), dns.target, dns.resolvers, dns.query_timeout)
    bad = [d for d in diagnoses if d.status is not DnsStatus.VALID]
    if bad:
        raise DnsNotReadyError(
            "DNS is not ready for " + ", ".join(f"{d.san} ({d.status.value})" for d in bad),
            dns_next_step(bad),
            diagnoses=tuple(diagnoses),
        )
    return diagnoses


def dns_next_step(bad: list[Diagnosis]) -> str:
    """What to do about the SANs whose delegation is not Valid: the CNAME to create (when
    there is one), the TXT records to remove, the resolvers to check."""
    from certcli.dnscheck import DnsStatus  # dnspython: only for DNS-01

    fixed_by_cname = (DnsStatus.MISSING, DnsStatus.WRONG)
    records = list(dict.fromkeys(d.record for d in bad if d.status in fixed_by_cname))
    steps = []
    if len(records) == 1:
        steps.append(f"create the record {records[0]}")
    elif records:
        steps.append(f"create the {len(records)} CNAME records `certcli dns check` lists")
    if any(d.status is DnsStatus.DUPLICATE for d in bad):
        steps.append("remove the TXT records found at the challenge names")
    if any(d.status is DnsStatus.ERROR for d in bad):
        steps.append("check that [dns] resolvers answer")
    return ", ".join(steps) + ", then `certcli renew` issues it"


def checked_dns(
    identifiers: list[str], dns: DnsSettings
) -> tuple[dict[str, Any], DnsNotReadyError | None]:
    """The CNAME Check: its result to keep in state.json (the SAN DNS cache) whether or not
    all SANs are Valid, and the DnsNotReadyError check_dns raises unless they are."""
    try:
        return dns_cache(check_dns(identifiers, dns), dns.target), None
    except DnsNotReadyError as exc:
        return dns_cache(exc.diagnoses, dns.target), exc


def dns_cache(diagnoses: tuple[Diagnosis, ...] | list[Diagnosis], target: str) -> dict[str, Any]:
    """The SAN DNS cache kept in state.json, which `status` shows without asking DNS."""
    return {
        "checked_at": rfc3339(datetime.now(UTC)),
        "target": target,
        "sans": {d.san: {"status": d.status.value, "found": d.found} for d in diagnoses},
    }


def diagnose_lineage(
    store: Storage, config: dict[str, Any], lineage: LineageSettings
) -> list[Diagnosis] | None:
    """A fresh DNS diagnosis of a DNS-01 lineage's SANs (None for other lineages)."""
    if lineage.challenge != "dns-01":
        return None
    from certcli.dnscheck import diagnose  # dnspython: only for DNS-01

    dns = make_plan(AcmeOptions(), config, lineage, store.root).dns
    assert dns is not None
    return diagnose(
        order_identifiers(lineage.domains), dns.target, dns.resolvers, dns.query_timeout
    )


def check_names(store: Storage, config: dict[str, Any], names: list[str]) -> list[Diagnosis]:
    """The delegation diagnosis of names alone, before (or without) an order."""
    from certcli.dnscheck import diagnose  # dnspython: only for DNS-01

    dns = make_plan(AcmeOptions(challenge="dns-01"), config, None, store.root).dns
    assert dns is not None
    return diagnose(names, dns.target, dns.resolvers, dns.query_timeout)
