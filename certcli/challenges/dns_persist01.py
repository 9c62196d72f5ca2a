"""dns-persist-01 (draft-ietf-acme-dns-persist): the domain owner publishes once
`_validation-persist.<domain> TXT "<issuer>; accounturi=<account URL>"`, and every order
of this account at this CA validates with it: answering needs no DNS change, ever.

Before ordering, certcli reads the record as the CA will (CNAMEs followed) and says what
to publish; `certcli dns check --challenge dns-persist-01 --publish` can write it through
the DNS provider where `_validation-persist.<domain>` is delegated to the `[dns] target`.
The record syntax and how it is judged: certcli/persist.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from certcli import persist
from certcli.challenges import dns01
from certcli.domains import is_ip, normalize_dns_name, zone_text
from certcli.errors import AcmeError, DnsNotReadyError, UsageError
from certcli.models import Phase

if TYPE_CHECKING:
    from pathlib import Path

    import dns.resolver

    from certcli.challenges import Challenge
    from certcli.dnscheck import Diagnosis
    from certcli.providers import Ask
    from certcli.storage.protocol import Storage

#: The setting's value (from the command line, environment, lineage or config) or `default`.
Get = Callable[[str, Any], Any]


@dataclass(frozen=True)
class PersistSettings:
    resolvers: list[tuple[str, int]]
    query_timeout: float
    issuers: tuple[str, ...]  # the CA's issuer domain names; the first is published
    account_uri: str
    hash_prefix: str | None = None  # the directory's accountHashPrefix: URIs are hashed
    thumbprint: str | None = None  # the account key's, for the hashed form
    persist_until: int | None = None  # shapes the record to publish
    wildcard_policy: bool = False  # publish policy=wildcard for every name

    def expected(self, domain: str) -> persist.Expected:
        return persist.expected(
            self.issuers, self.account_uri, domain, self.hash_prefix, self.thumbprint
        )


def settings(get: Get, store: Storage | None) -> PersistSettings:
    """`[dns]` resolvers and query timeout, our account at the CA and the CA's issuer
    names (`[dns_persist] issuer`, else its directory's `issuerDomainNames`, else its
    `caaIdentities`), and the shape of the record to publish."""
    from certcli.challenges import ca_facts
    from certcli.dnscheck import parse_servers

    facts = ca_facts(get, store)
    if facts.account_uri is None:
        raise UsageError(
            f"a dns-persist-01 record names your account at {facts.directory_url}, "
            "and there is none yet",
            "run `certcli account register` first",
        )
    announced = persist.announced_issuers(facts.meta.get("issuerDomainNames"))
    issuers = tuple(get("dns_persist.issuer", None) or announced or facts.caa_identities)
    if not issuers:
        raise UsageError(
            f"the CA at {facts.directory_url} announces no issuer domain name for "
            "dns-persist-01 records",
            "set the one it documents: certcli config set dns_persist.issuer NAME",
        )
    prefix = facts.meta.get("accountHashPrefix")
    prefix = prefix if isinstance(prefix, str) and prefix else None
    try:
        persist.check_ca_text(facts.account_uri, prefix)
    except persist.Malformed as exc:
        raise AcmeError(str(exc), "the CA does not follow the draft; report it to the CA") from None
    thumbprint = None
    if prefix is not None and facts.account is not None:
        from certcli.x509 import jwk_thumbprint

        thumbprint = jwk_thumbprint(facts.account.key_pem)
    until = get("dns_persist.persist_until", None)
    if until is not None and until <= time.time():
        raise UsageError(
            f"persistUntil {persist.moment(until)} is in the past",
            "give a later date (--persist-until YYYY-MM-DD)",
        )
    return PersistSettings(
        resolvers=parse_servers(get("dns.resolvers", None)),
        query_timeout=float(get("dns.query_timeout", 5)),
        issuers=issuers,
        account_uri=facts.account_uri,
        hash_prefix=prefix,
        thumbprint=thumbprint,
        persist_until=until,
        wildcard_policy=bool(get("dns_persist.wildcard_policy", False)),
    )


def base_of(san: str) -> str:
    return normalize_dns_name(san.removeprefix("*."))


def validation_name(san: str) -> str:
    return f"{persist.LABEL}.{base_of(san)}"


def wanted_value(san: str, wildcard: bool, options: PersistSettings) -> str:
    """The TXT value to publish for a SAN's base (a wildcard SAN needs policy=wildcard)."""
    base = base_of(san)
    shaped = wildcard or options.wildcard_policy
    return persist.value(options.expected(base), shaped, options.persist_until)


def _wildcard_bases(identifiers: Sequence[str]) -> set[str]:
    return {base_of(i) for i in identifiers if i.startswith("*.")}


def lookup(name: str, resolver: dns.resolver.Resolver) -> tuple[list[str], str]:
    """The TXT values at `name` and where its CNAME chain ends (the name itself when it
    has none); raises what dnspython raises when the lookup fails."""
    import dns.resolver

    from certcli.dnscheck import txt_text

    try:
        answer = resolver.resolve(name, "TXT", raise_on_no_answer=False)
    except dns.resolver.NXDOMAIN as exc:
        return [], normalize_dns_name(exc.canonical_name.to_text())
    end = normalize_dns_name(answer.canonical_name.to_text())
    return [txt_text(r) for r in answer.rrset or ()], end


def diagnose_one(
    san: str, options: PersistSettings, resolver: dns.resolver.Resolver, wildcards: set[str]
) -> Diagnosis:
    import dns.exception

    from certcli.dnscheck import Diagnosis, DnsStatus, failure

    name, base = validation_name(san), base_of(san)
    value = wanted_value(san, base in wildcards, options)
    owner = name

    def result(
        status: DnsStatus, found: str | None, reason: str | None = None, until: int | None = None
    ) -> Diagnosis:
        record = persist.zone_line(owner, value)
        return Diagnosis(san, name, status, None, found, record, reason, until)

    try:
        values, end = lookup(name, resolver)
    except dns.exception.DNSException as exc:
        return result(DnsStatus.ERROR, failure(exc, resolver), "the lookup failed")
    owner = end  # a name delegated by CNAME holds no TXT of its own: the chain's end does
    via = "" if end == name else f"{end}: "
    if not values:
        return result(DnsStatus.MISSING, end if via else None, f"no TXT record at {end}")
    found = via + "TXT " + ", ".join(zone_text(v) for v in values)
    want, wildcard, now = options.expected(base), san.startswith("*."), time.time()
    ok, reason = persist.verdict(values, want, wildcard, now)
    if not ok:
        return result(DnsStatus.WRONG, found, reason)
    return result(DnsStatus.VALID, found, until=persist.valid_until(values, want, wildcard, now))


def diagnose(identifiers: Sequence[str], options: PersistSettings) -> list[Diagnosis]:
    """Every SAN's persist record as a resolver sees it now."""
    from certcli.dnscheck import Diagnosis, DnsStatus, diagnose_each

    wildcards = _wildcard_bases(identifiers)
    address = next((i for i in identifiers if is_ip(i)), None)
    if address is not None:
        raise UsageError(
            f"{address} is an IP address: dns-persist-01 cannot validate it",
            "an IP address needs HTTP-01 (--webroot)",
        )

    def unusable(san: str, problem: str) -> Diagnosis:
        name = validation_name(san)
        record = persist.zone_line(name, wanted_value(san, base_of(san) in wildcards, options))
        return Diagnosis(san, name, DnsStatus.ERROR, None, problem, record, "the lookup failed")

    return diagnose_each(
        list(identifiers),
        options.resolvers,
        options.query_timeout,
        lambda san, resolver: diagnose_one(san, options, resolver, wildcards),
        unusable,
    )


def check(identifiers: Sequence[str], options: PersistSettings) -> list[Diagnosis]:
    """The Persist Check: raise DnsNotReadyError unless every SAN's record is valid."""
    from certcli.dnscheck import DnsStatus

    diagnoses = diagnose(identifiers, options)
    bad = [d for d in diagnoses if d.status is not DnsStatus.VALID]
    if bad:
        raise DnsNotReadyError(
            "no valid dns-persist-01 record for "
            + ", ".join(f"{d.san} ({d.status.value}: {d.reason})" for d in bad),
            next_step(bad),
            diagnoses=tuple(diagnoses),
        )
    return diagnoses


def next_step(bad: Sequence[Diagnosis]) -> str:
    """What to do: the record to publish (or how many), the resolvers to check."""
    from certcli.dnscheck import DnsStatus

    records = list(dict.fromkeys(d.record for d in bad if d.status is not DnsStatus.ERROR))
    steps = []
    if len(records) == 1:
        steps.append(f"publish the record {records[0]}")
    elif records:
        steps.append(
            f"publish the {len(records)} TXT records "
            "`certcli dns check --challenge dns-persist-01` lists"
        )
    if any(d.status is DnsStatus.ERROR for d in bad):
        steps.append("check that [dns] resolvers answer")
    return ", ".join(steps) + ", then `certcli renew` issues it"


def cache(diagnoses: Sequence[Diagnosis], now: datetime) -> dict[str, Any]:
    """The SAN DNS cache kept in state.json, which `status` shows without asking DNS;
    nothing is delegated, so no target."""
    return dns01.cache(diagnoses, None, now)


@dataclass(frozen=True)
class Published:
    """What `--publish` did: the TXT values written at the target (name, value), and the
    CNAME records still to create for the names not delegated to it."""

    written: tuple[tuple[str, str], ...]
    delegate: tuple[str, ...]


def publish(
    identifiers: Sequence[str],
    options: PersistSettings,
    target: str,
    write: Callable[[str, str], None],
) -> Published:
    """Write the record of each SAN that is not valid, once, at `target` when its
    `_validation-persist` name is delegated there by CNAME (`write(value, domain)`); for
    the others, the CNAME to create. A SAN whose lookup failed is left as it is."""
    import dns.exception

    from certcli.dnscheck import DnsStatus, make_resolver

    wildcards = _wildcard_bases(identifiers)
    target = normalize_dns_name(target)
    todo = [d for d in diagnose(identifiers, options) if d.status is not DnsStatus.VALID]
    written: dict[str, str] = {}
    delegate: dict[str, None] = {}
    resolver = make_resolver(options.resolvers, options.query_timeout)
    for d in todo:
        base = base_of(d.san)
        if d.status is DnsStatus.ERROR or base in written:
            continue
        try:
            _, end = lookup(d.challenge_name, resolver)
        except dns.exception.DNSException:
            continue  # as a lookup that failed: the diagnosis says so
        if end != target:
            delegate[f"{d.challenge_name}. 300 IN CNAME {target}."] = None
            continue
        value = wanted_value(d.san, base in wildcards, options)
        write(value, base)
        written[base] = value
    return Published(tuple((target, v) for v in written.values()), tuple(delegate))


class PersistSolver:
    """Nothing to present, wait for or clean up: the record is already published. Each
    challenge's issuerDomainNames is checked first (draft §3.1), and for our issuer."""

    challenge_type = "dns-persist-01"

    def __init__(self, issuers: Sequence[str] = ()) -> None:
        self.issuers = tuple(issuers)

    def check(self) -> None:
        return None

    def present(self, challenges: list[Challenge]) -> None:
        for challenge in challenges:  # the CA reads the persistent record; certcli writes nothing
            self._offered(challenge)

    def _offered(self, challenge: Challenge) -> None:
        import json

        try:
            fields = json.loads(challenge.offered) if challenge.offered else {}
        except ValueError:
            fields = {}
        # the draft's name, and the one of its first versions (acme2certifier's)
        key = next((k for k in ("issuerDomainNames", "issuer-domain-names") if k in fields), None)
        if key is None:
            return  # a CA that does not say: its directory's names, or the setting, decide
        offered = persist.announced_issuers(fields[key])
        if offered is None:
            raise AcmeError(
                f"the CA's dns-persist-01 challenge for {challenge.identifier} is malformed: "
                f"its {key} is not a list of 1 to {persist.MAX_ISSUERS} issuer domain names",
                "the draft asks a client to refuse it; report it to the CA",
            )
        if self.issuers and not set(self.issuers) & set(offered):
            raise AcmeError(
                f"the CA accepts for {challenge.identifier} only records naming "
                f"{', '.join(offered)}, not {', '.join(self.issuers)}",
                f"set the issuer: certcli config set dns_persist.issuer {offered[0]}, and "
                "publish the record `certcli dns check --challenge dns-persist-01` prints",
            )

    def wait(self, challenges: list[Challenge]) -> None:
        return None

    def cleanup(self, challenges: list[Challenge]) -> None:
        return None  # the record stays: it serves every later order


class Persist:
    """dns-persist-01, as the challenge registry knows it."""

    name = "dns-persist-01"
    wildcards = True  # with policy=wildcard in the record
    ip_addresses = False
    check_phase: Phase | None = Phase.PERSIST_CHECK
    wait_phase: Phase | None = None  # nothing to propagate
    secret_keys: tuple[str, ...] = ()
    #: `dns check` options that shape the record it prints.
    record_options = ("persist_until", "wildcard_policy")

    def settings(self, get: Get, store: Storage | None) -> PersistSettings:
        return settings(get, store)

    def solver(
        self, settings: PersistSettings, leftovers: Path, interactive: bool, ask: Ask
    ) -> PersistSolver:
        return PersistSolver(settings.issuers)

    def check(self, identifiers: Sequence[str], settings: PersistSettings) -> list[Diagnosis]:
        return check(identifiers, settings)

    def diagnose(self, identifiers: Sequence[str], settings: PersistSettings) -> list[Diagnosis]:
        return diagnose(identifiers, settings)

    def publish(
        self,
        identifiers: Sequence[str],
        settings: PersistSettings,
        target: str,
        write: Callable[[str, str], None],
    ) -> Published:
        return publish(identifiers, settings, target, write)

    def cache(
        self, found: Sequence[Diagnosis], settings: PersistSettings, now: datetime
    ) -> dict[str, Any]:
        return cache(found, now)

    def pinned(self, settings: PersistSettings) -> dict[str, Any]:
        return {}  # the record names the account and the CA, which the lineage keeps

    def hint(self, settings: PersistSettings) -> str | None:
        return (
            "`certcli dns check --challenge dns-persist-01 DOMAIN` shows the record the CA "
            "reads, and what to publish"
        )

    def refuse(self, domains: Sequence[str], answers: str, name: str | None) -> None:
        address = next((d for d in domains if is_ip(d)), None)
        if address is not None:
            raise UsageError(
                f"{address} is an IP address: it needs HTTP-01, and {answers} dns-persist-01",
                "use --webroot DIR for IP addresses, in a lineage of their own",
            )

    def sweep(self, leftovers: Path) -> None:
        return None  # certcli never writes anything for an order

    def describe(self, webroot: str | None) -> str:
        return "dns-persist-01 (a TXT record published once)"


METHOD = Persist()
