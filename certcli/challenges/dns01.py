"""DNS-01 by CNAME delegation: every SAN's `_acme-challenge` name CNAMEs to one target that
certcli writes through a provider (rfc2136, hook or manual)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from certcli.domains import challenge_name, is_ip, normalize_dns_name
from certcli.errors import AcmeError, CertcliError, DnsNotReadyError, UsageError
from certcli.models import Phase
from certcli.providers import DEFAULT as DEFAULT_PROVIDER
from certcli.providers import PROVIDERS, make_provider, provider_settings
from certcli.providers import secret_keys as provider_secrets

if TYPE_CHECKING:
    from pathlib import Path

    from certcli.challenges import Challenge
    from certcli.dnscheck import Diagnosis
    from certcli.leftovers import Journal, Record
    from certcli.providers import Ask, Provider
    from certcli.storage.protocol import Storage

#: The setting's value (from the command line, environment, lineage or config) or `default`.
Get = Callable[[str, Any], Any]


@dataclass(frozen=True)
class DnsSettings:
    provider: str
    target: str
    resolvers: list[tuple[str, int]]
    propagation_timeout: float
    query_timeout: float
    authoritative: list[tuple[str, int]]  # empty: the target zone's NS
    zone: str | None
    #: Every provider's declared settings by provider name, then key (`[dns.<name>]`);
    #: may hold secrets.
    options: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    #: dns-account-01's label (of our account URL): its challenge names are
    #: `_<label>._acme-challenge.<base>`; None for dns-01's `_acme-challenge.<base>`.
    label: str | None = None

    def provider_options(self, provider: str) -> dict[str, Any]:
        """A provider's own settings, by key below `[dns.<provider>]`."""
        return self.options.get(provider, {})


class DelegationSolver:
    """Writes each challenge's value at the delegation target and waits until every
    authoritative server of the target's zone serves it."""

    challenge_type = "dns-01"

    def __init__(
        self,
        settings: DnsSettings,
        provider: Provider,
        journal: Journal | None = None,
        challenge_type: str = "dns-01",
    ) -> None:
        self.challenge_type = challenge_type  # dns-account-01 writes its values alike
        self.settings = settings
        self.provider = provider
        self.journal = journal
        self._added: list[Challenge] = []
        self._records: dict[Challenge, Record | None] = {}

    def check(self) -> None:
        self.provider.check()
        self.remove_leftovers()

    def remove_leftovers(self) -> list[str]:
        """Remove the TXT values at this target that ended runs recorded and did not
        remove (killed, or an add whose answer never came); return the values removed."""
        removed = []
        for record in self.journal.orphans() if self.journal else ():
            data = record.data
            if (data.get("provider"), data.get("target")) != (
                self.settings.provider,
                self.settings.target,
            ):
                record.keep()  # written through another provider or target: not ours to judge
                continue
            try:
                self.provider.cleanup(
                    self.settings.target, str(data.get("value")), str(data.get("domain"))
                )
            except CertcliError:  # the record stays: the next run tries again
                record.keep()
                continue
            record.done()
            removed.append(str(data.get("value")))
        return removed

    def present(self, challenges: list[Challenge]) -> None:
        for challenge in challenges:
            if not challenge.validation:  # a dns-account-01 challenge without its token
                raise AcmeError(
                    f"the CA's {challenge.type} challenge for {challenge.identifier} has no "
                    "token, so there is no TXT value to write",
                    "the CA does not follow the draft; report it to the CA",
                )
            # recorded first: killed after this, or unsure whether the add landed, the
            # next run removes it
            if self.journal is not None:
                self._records[challenge] = self.journal.record(
                    {
                        "provider": self.settings.provider,
                        "target": self.settings.target,
                        "value": challenge.validation,
                        "domain": challenge.identifier,
                    }
                )
            self.provider.present(self.settings.target, challenge.validation, challenge.identifier)
            self._added.append(challenge)

    def wait(self, challenges: list[Challenge]) -> None:
        from certcli.dnscheck import authoritative_servers, find_zone, wait_for_txt

        if self.settings.authoritative:
            servers = {f"{h}:{p}": [(h, p)] for h, p in self.settings.authoritative}
        else:
            zone = self.settings.zone or find_zone(self.settings.target, self.settings.resolvers)
            servers = authoritative_servers(zone, self.settings.resolvers)
        values = {c.validation for c in challenges}
        wait_for_txt(self.settings.target, values, servers, self.settings.propagation_timeout)

    def cleanup(self, challenges: list[Challenge]) -> None:
        for challenge in challenges:
            added = challenge in self._added
            record = self._records.pop(challenge, None)
            if not added and record is None:
                continue  # never presented
            # an add that failed may have reached the server all the same (a timeout):
            # removing is harmless, and its record stays for the next run in case the add
            # lands later. A value that could not be removed keeps its record too, and the
            # next run removes it; the order's own outcome is never hidden.
            removed = False
            with contextlib.suppress(CertcliError):
                self.provider.cleanup(
                    self.settings.target, challenge.validation, challenge.identifier
                )
                removed = True
            if added:
                self._added.remove(challenge)
            if record is not None and removed and added:
                record.done()
            elif record is not None:
                record.keep()


# -- the method: its settings, its check before ordering, its hint ------------------------


def settings(get: Get, store: Storage | None) -> DnsSettings:
    """`[dns]` and the provider's `[dns.<provider>]` settings; the store holds the
    installation id that names the default delegation target."""
    from certcli.dnscheck import parse_servers

    def seconds(key: str, default: float) -> float:
        return float(get(key, default))  # checked by its kind, or the default

    def one(key: str) -> Any:
        return get(key, None)

    return DnsSettings(
        provider=str(get("dns.provider", DEFAULT_PROVIDER)),
        target=delegation_target(get, store),
        resolvers=parse_servers(get("dns.resolvers", None)),
        propagation_timeout=seconds("dns.propagation_timeout", 120),
        query_timeout=seconds("dns.query_timeout", 5),
        authoritative=parse_servers(get("dns.authoritative", None)),
        zone=get("dns.rfc2136.zone", None) or get("dns.zone", None),
        options={name: provider_settings(m, one) for name, m in PROVIDERS.items()},
    )


def delegation_target(get: Get, store: Storage | None) -> str:
    """`[dns] target`, else one name per installation under `[dns] zone`."""
    target = get("dns.target", None)
    if target:
        return normalize_dns_name(str(target))
    zone = get("dns.zone", None) or get("dns.rfc2136.zone", None)
    if not zone or store is None:
        raise UsageError(
            "DNS-01 needs a delegation target",
            "set [dns] target (the name every _acme-challenge CNAMEs to) or [dns] zone",
        )
    # one name per store, so two installations never share a target
    return f"{store.installation_id()}.{normalize_dns_name(str(zone))}"


def diagnose(identifiers: Sequence[str], dns: DnsSettings) -> list[Diagnosis]:
    """Every SAN's delegation as a resolver sees it now."""
    from certcli.dnscheck import diagnose as diagnose_all

    return diagnose_all(list(identifiers), dns.target, dns.resolvers, dns.query_timeout, dns.label)


def check(identifiers: Sequence[str], dns: DnsSettings) -> list[Diagnosis]:
    """The CNAME Check: diagnose every SAN; raise DnsNotReadyError unless all are Valid."""
    from certcli.dnscheck import DnsStatus

    diagnoses = diagnose(identifiers, dns)
    bad = [d for d in diagnoses if d.status is not DnsStatus.VALID]
    if bad:
        raise DnsNotReadyError(
            "DNS is not ready for " + ", ".join(f"{d.san} ({d.status.value})" for d in bad),
            next_step(bad),
            diagnoses=tuple(diagnoses),
        )
    return diagnoses


def next_step(bad: Sequence[Diagnosis]) -> str:
    """What to do about the SANs whose delegation is not Valid: the CNAME to create (when
    there is one), the TXT records to remove, the resolvers to check."""
    from certcli.dnscheck import DnsStatus

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


def cache(diagnoses: Sequence[Diagnosis], target: str | None, now: datetime) -> dict[str, Any]:
    """The SAN DNS cache kept in state.json, which `status` shows without asking DNS."""
    from certcli.models import rfc3339

    return {
        "checked_at": rfc3339(now),
        "target": target,
        "sans": {d.san: cached(d) for d in diagnoses},
    }


def cached(diagnosis: Diagnosis) -> dict[str, Any]:
    """One SAN's diagnosis as state.json keeps it; its challenge name only when it is not
    the SAN's `_acme-challenge` name (dns-account-01's, dns-persist-01's), and why it is
    not valid when the method says (dns-persist-01)."""
    entry = {"status": diagnosis.status.value, "found": diagnosis.found}
    if diagnosis.challenge_name != challenge_name(diagnosis.san):
        entry["challenge_name"] = diagnosis.challenge_name
    if diagnosis.reason:
        entry["reason"] = diagnosis.reason
    if diagnosis.valid_until is not None:
        entry["valid_until"] = diagnosis.valid_until
    return entry


def san_json(
    name: str,
    dns_status: str | None,
    ssl_status: str | None,
    expected_target: str | None,
    found: str | None,
    challenge: str | None = None,
    caa: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One SAN as `status`, `dns check` and a failed issuance show it in JSON; `challenge`
    is its challenge name when it differs from the SAN's own (a lookup that failed); `caa`
    its CAA verdict (certcli/caa.py), when checked."""
    return {
        "name": name,
        "dns_status": dns_status,
        "ssl_status": ssl_status,
        "challenge_name": challenge or challenge_name(name),
        "expected_target": expected_target,
        "found": found,
        "caa": caa,
    }


class Delegation:
    """DNS-01 by CNAME delegation, as the challenge registry knows it."""

    name = "dns-01"
    wildcards = True
    ip_addresses = False
    check_phase: Phase | None = Phase.CNAME_CHECK
    wait_phase: Phase | None = Phase.WAITING_FOR_DNS  # propagation: a phase of its own

    secret_keys = provider_secrets()  # the providers'

    def settings(self, get: Get, store: Storage | None) -> DnsSettings:
        return settings(get, store)

    def solver(
        self, settings: DnsSettings, leftovers: Path, interactive: bool, ask: Ask
    ) -> DelegationSolver:
        from certcli.leftovers import Journal

        provider = make_provider(settings, interactive, ask)
        return DelegationSolver(settings, provider, Journal(leftovers, self.name), self.name)

    def check(self, identifiers: Sequence[str], settings: DnsSettings) -> list[Diagnosis]:
        return check(identifiers, settings)

    def diagnose(self, identifiers: Sequence[str], settings: DnsSettings) -> list[Diagnosis]:
        return diagnose(identifiers, settings)

    def cache(
        self, found: Sequence[Diagnosis], settings: DnsSettings, now: datetime
    ) -> dict[str, Any]:
        return cache(found, settings.target, now)

    def pinned(self, settings: DnsSettings) -> dict[str, Any]:
        return {"dns": {"target": settings.target}}  # the CNAMEs name it: it never moves

    def hint(self, settings: DnsSettings) -> str | None:
        return "`certcli dns check DOMAIN` shows what a resolver finds, and what to fix"

    def refuse(self, domains: Sequence[str], answers: str, name: str | None) -> None:
        address = next((d for d in domains if is_ip(d)), None)
        if address is not None:
            raise UsageError(
                f"{address} is an IP address: it needs HTTP-01, and {answers} DNS-01 (--dns)",
                "use --webroot DIR for IP addresses, in a lineage of their own",
            )

    def sweep(self, leftovers: Path) -> None:
        return None  # a TXT value left behind goes in the solver's check, with the provider

    def describe(self, webroot: str | None) -> str:
        return "DNS-01 by delegation"


METHOD = Delegation()
