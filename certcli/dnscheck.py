"""DNS for DNS-01 by CNAME delegation: the per-SAN diagnosis (Valid / Missing / Wrong /
Duplicate / Error) and the propagation check at the target zone's authoritative servers.

Every query goes to the configured resolvers (`[dns] resolvers`), or the system's when none
are configured; the propagation check asks the authoritative servers directly.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.nameserver
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from certcli.challenges.dns01 import san_json
from certcli.domains import challenge_name, normalize_dns_name, zone_text
from certcli.errors import DnsPropagationError, UsageError

MAX_CNAME_HOPS = 16


class DnsStatus(StrEnum):
    VALID = "valid"
    MISSING = "missing"
    WRONG = "wrong"
    DUPLICATE = "duplicate"
    ERROR = "error"  # the resolver failed: never reported as missing


@dataclass(frozen=True)
class Diagnosis:
    san: str
    challenge_name: str
    status: DnsStatus
    expected_target: str | None  # the delegation target; None where nothing is delegated
    found: str | None = None  # where a chain ends, the stray TXT values, or the error
    #: The record to create when it is not the CNAME to the target (dns-persist-01's TXT),
    #: and why what was found does not do (None: the status says it all).
    expected_record: str | None = None
    reason: str | None = None
    #: Until when a valid record holds (unix seconds: dns-persist-01's persistUntil);
    #: None when it has no end.
    valid_until: int | None = None

    @property
    def record(self) -> str:
        """The record to create, in zone-file syntax."""
        if self.expected_record is not None:
            return self.expected_record
        return f"{self.challenge_name}. 300 IN CNAME {self.expected_target}."

    def to_json(self, ssl_status: str | None = None) -> dict[str, Any]:
        found = san_json(
            self.san,
            self.status.value,
            ssl_status,
            self.expected_target,
            self.found,
            self.challenge_name,
        )
        if self.expected_record is not None:  # a method with a record of its own says so
            found |= {"record": self.expected_record, "reason": self.reason}
        return found


def _is_port(text: str) -> bool:
    # isdigit alone accepts '²' and other digits int() refuses
    return text.isascii() and text.isdigit() and 0 < int(text) < 65536


def parse_servers(value: str | list[str] | None) -> list[tuple[str, int]]:
    """`["127.0.0.1:8053", "[::1]:53", "192.0.2.1"]` (or one comma-separated string)."""
    if not value:
        return []
    items = value.split(",") if isinstance(value, str) else value
    servers = []
    for item in (str(i).strip() for i in items):
        host, port = item, 53
        if item.startswith("["):
            host, _, rest = item[1:].partition("]")
            port = int(rest[1:]) if rest.startswith(":") and _is_port(rest[1:]) else 53
        elif item.count(":") == 1:
            host, _, port_text = item.partition(":")
            if not _is_port(port_text):
                raise UsageError(f"invalid DNS server {item!r}", "write it as IP or IP:PORT")
            port = int(port_text)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise UsageError(
                f"invalid DNS server {item!r}: not an IP address", "write it as IP or IP:PORT"
            ) from None
        servers.append((host, port))
    return servers


def make_resolver(servers: list[tuple[str, int]], timeout: float) -> dns.resolver.Resolver:
    if servers:
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(h, p) for h, p in servers]
    else:
        resolver = dns.resolver.Resolver()
    resolver.lifetime = timeout
    resolver.timeout = min(timeout, 2.0)
    return resolver


def diagnose_one(
    san: str, target: str, resolver: dns.resolver.Resolver, label: str | None = None
) -> Diagnosis:
    """One SAN's delegation; `label` scopes its challenge name to an account
    (dns-account-01)."""
    name = challenge_name(san, label)
    if name is None:
        raise UsageError(f"{san} is an IP address: DNS-01 cannot validate it", "use --webroot")
    expected = normalize_dns_name(target)

    def result(status: DnsStatus, found: str | None = None) -> Diagnosis:
        return Diagnosis(san, name, status, expected, found)

    try:
        chain: list[str] = []
        current = name
        while True:
            try:
                answer = resolver.resolve(current, "CNAME", raise_on_no_answer=False)
            except dns.resolver.NXDOMAIN:
                break  # the chain (if any) ends at a name with no records yet: the target, often
            if answer.rrset is None:
                break
            current = normalize_dns_name(answer.rrset[0].target.to_text())
            if current in chain or len(chain) >= MAX_CNAME_HOPS:
                return result(DnsStatus.WRONG, f"a CNAME loop through {current}")
            chain.append(current)
        if chain:
            return result(DnsStatus.VALID if chain[-1] == expected else DnsStatus.WRONG, chain[-1])
        try:
            txt = resolver.resolve(name, "TXT", raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return result(DnsStatus.MISSING)
        if txt.rrset is not None:
            values = ", ".join(zone_text(txt_text(r)) for r in txt.rrset)
            return result(DnsStatus.DUPLICATE, f"TXT {values}")
        return result(DnsStatus.MISSING)
    except dns.exception.DNSException as exc:
        return result(DnsStatus.ERROR, failure(exc, resolver))


def failure(exc: dns.exception.DNSException, resolver: dns.resolver.Resolver) -> str:
    """What a failed lookup says, naming the servers asked: an Error, never Missing."""
    if isinstance(exc, dns.resolver.NoNameservers):
        return f"{_short(exc)} from {_asked(resolver)}"
    if isinstance(exc, dns.exception.Timeout):
        return f"no answer from {_asked(resolver)}"
    return f"{_short(exc)} (asking {_asked(resolver)})"


def _asked(resolver: dns.resolver.Resolver) -> str:
    """The servers a resolver asks, as `[dns] resolvers` writes them."""
    servers = []
    for ns in resolver.nameservers:
        if isinstance(ns, dns.nameserver.Do53Nameserver):
            host, port = ns.address, ns.port
        else:
            host, port = str(ns), resolver.port
        servers.append(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    return ", ".join(servers) or "no resolver"


def diagnose(
    sans: list[str],
    target: str,
    servers: list[tuple[str, int]],
    timeout: float = 5.0,
    label: str | None = None,
) -> list[Diagnosis]:
    """Every SAN's delegation diagnosis, checked concurrently, in the order given."""

    def unusable(san: str, problem: str) -> Diagnosis:
        name = challenge_name(san, label) or san
        return Diagnosis(san, name, DnsStatus.ERROR, normalize_dns_name(target), problem)

    return diagnose_each(
        sans, servers, timeout, lambda san, r: diagnose_one(san, target, r, label), unusable
    )


Found = TypeVar("Found")


def diagnose_each(
    sans: Sequence[str],
    servers: list[tuple[str, int]],
    timeout: float,
    one: Callable[[str, dns.resolver.Resolver], Found],
    unusable: Callable[[str, str], Found],
) -> list[Found]:
    """`one(san, resolver)` for every SAN once, concurrently, in the order given; when no
    resolver can be made (no /etc/resolv.conf), `unusable(san, problem)` says so. Each
    lookup of names (a delegation, a persist record, CAA) runs through it."""
    unique = list(dict.fromkeys(sans))

    def each(san: str) -> Found:
        try:
            resolver = make_resolver(servers, timeout)
        except dns.exception.DNSException as exc:
            return unusable(san, _short(exc))
        return one(san, resolver)

    if len(unique) <= 1:  # one name (an order of one SAN): no thread to start and join
        return [each(san) for san in unique]
    with ThreadPoolExecutor(max_workers=min(8, len(unique))) as pool:
        return list(pool.map(each, unique))


def txt_text(txt: Any) -> str:
    """A TXT record's value: its character strings joined."""
    return b"".join(txt.strings).decode(errors="replace")


def _short(exc: Exception) -> str:
    text = str(exc)
    if "SERVFAIL" in text:
        return "SERVFAIL"
    if "REFUSED" in text:
        return "REFUSED"
    return text.split(";")[0][:120]


# -- the target zone and its servers --------------------------------------------------


def find_zone(name: str, servers: list[tuple[str, int]], timeout: float = 5.0) -> str:
    """The zone holding `name`, from the SOA found walking up from it."""
    try:
        zone = dns.resolver.zone_for_name(name, resolver=make_resolver(servers, timeout))
    except dns.exception.DNSException as exc:
        raise DnsPropagationError(
            f"cannot find the DNS zone of {name}: {_short(exc)}",
            "set [dns.rfc2136] zone, or check [dns] resolvers",
        ) from None
    return normalize_dns_name(zone.to_text())


def authoritative_servers(
    zone: str, servers: list[tuple[str, int]], timeout: float = 5.0
) -> dict[str, list[tuple[str, int]]]:
    """Each NS host of the zone with its addresses (port 53), looked up through `servers`."""
    resolver = make_resolver(servers, timeout)
    try:
        hosts = [r.target.to_text() for r in resolver.resolve(zone, "NS")]
        found: dict[str, list[tuple[str, int]]] = {}
        for host in hosts:
            for rtype in ("A", "AAAA"):
                answer = resolver.resolve(host, rtype, raise_on_no_answer=False)
                found.setdefault(host, []).extend((r.address, 53) for r in answer.rrset or ())
    except dns.exception.DNSException as exc:
        raise DnsPropagationError(
            f"cannot find the name servers of {zone}: {_short(exc)}",
            "check [dns] resolvers, or name the servers in [dns] authoritative",
        ) from None
    found = {host: addresses for host, addresses in found.items() if addresses}
    if not found:
        raise DnsPropagationError(f"the name servers of {zone} have no address")
    return found


def txt_values(name: str, server: tuple[str, int], timeout: float = 2.0) -> set[str]:
    """The TXT values a server itself holds at `name` (empty when it has none)."""
    query = dns.message.make_query(name, "TXT")
    query.flags &= ~dns.flags.RD
    response = dns.query.udp(query, server[0], port=server[1], timeout=timeout)
    if response.flags & dns.flags.TC:
        response = dns.query.tcp(query, server[0], port=server[1], timeout=timeout)
    return {
        txt_text(r) for rrset in response.answer if rrset.rdtype == dns.rdatatype.TXT for r in rrset
    }


def wait_for_txt(
    name: str,
    values: set[str],
    servers: dict[str, list[tuple[str, int]]],
    timeout: float,
) -> None:
    """Return once every name server (any one of its addresses: a host may have an IPv6
    address this machine cannot reach) serves every value; raise after `timeout` seconds
    saying which server still lacks what."""
    deadline = time.monotonic() + timeout
    delay = 0.2
    while True:
        lacking: dict[str, str] = {}
        for host, addresses in servers.items():
            seen = []
            for address in addresses:
                try:
                    found = txt_values(name, address)
                except (dns.exception.DNSException, OSError) as exc:
                    seen.append(f"{address[0]}:{address[1]}: {_short(exc) or type(exc).__name__}")
                    continue
                if values <= found:
                    break
                shown = ", ".join(sorted(found)) or "nothing"
                seen.append(f"{address[0]}:{address[1]} serves {shown}")
            else:
                lacking[host] = "; ".join(seen)
        if not lacking:
            return
        if time.monotonic() + delay > deadline:
            host, what = next(iter(lacking.items()))
            raise DnsPropagationError(
                f"{name} did not propagate in {timeout:.0f} s: {host} ({what}), "
                f"expected {', '.join(sorted(values))}",
                "check the DNS provider, or raise [dns] propagation_timeout",
            )
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
