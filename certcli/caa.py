"""CAA before ordering: the CAA record set a CA will use for each SAN (RFC 8659 §3: the
SAN's name, then each parent, CNAMEs followed by the resolver) and whether it lets this CA,
this account and this validation method issue (RFC 8659 §4, RFC 8657's `accounturi` and
`validationmethods`).

Parsing and evaluation are pure; only the lookup asks DNS, through the configured
resolvers. dnspython is imported inside the lookup, so that `certcli status` never loads it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from certcli.domains import is_ip, normalize_dns_name, zone_text

if TYPE_CHECKING:
    import dns.resolver

#: The flag bit that makes a property's tag one a CA must understand (RFC 8659 §4.1).
CRITICAL = 128
#: The tags CAs know (RFC 8659, RFC 8657, RFC 9495, the CA/B Forum's issuevmc): a critical
#: property with any other tag forbids issuance.
KNOWN_TAGS = frozenset(
    {"issue", "issuewild", "iodef", "contactemail", "contactphone", "issuemail", "issuevmc"}
)


class CaaStatus(StrEnum):
    ALLOWED = "allowed"
    FORBIDS = "caa_forbids"
    NONE = "none"  # no CAA record set on the way up: any CA may issue
    UNKNOWN = "unknown"  # the CA's identities (or our account) are not known: cannot judge
    ERROR = "error"  # the lookup failed: never reported as allowed or forbidden


@dataclass(frozen=True)
class Property:
    """One CAA record: flags, tag (lowercase: tags match without case) and value."""

    flags: int
    tag: str
    value: str

    @property
    def critical(self) -> bool:
        return bool(self.flags & CRITICAL)

    def to_text(self) -> str:
        return f"{self.flags} {self.tag} {zone_text(self.value)}"


@dataclass(frozen=True)
class IssueValue:
    """An `issue`/`issuewild` value: the issuer's domain name (None: no CA, as `;` alone
    says), then `key=value` parameters; `malformed` values authorize no one."""

    issuer: str | None
    parameters: dict[str, str] = field(default_factory=dict)
    malformed: bool = False


#: RFC 8659 §4.2's issue-value grammar, which dns-persist-01 records reuse (persist.py).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
ISSUER = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
#: tag *WSP "=" *WSP value; a value is printable ASCII but for ';' (and never a space)
PARAMETER = re.compile(rf"({_LABEL})[ \t]*=[ \t]*([\x21-\x3a\x3c-\x7e]*)")
WSP = " \t"


def parse_issue_value(value: str) -> IssueValue:
    """`"ca.example; accounturi=https://…; validationmethods=dns-01"`, `";"`, `""`."""
    issuer_text, _, rest = value.partition(";")
    issuer = issuer_text.strip(WSP).lower() or None
    if issuer is not None and not ISSUER.fullmatch(issuer):
        return IssueValue(issuer, malformed=True)
    parameters: dict[str, str] = {}
    for item in rest.split(";") if rest.strip(WSP) else ():
        found = PARAMETER.fullmatch(item.strip(WSP))
        if found is None or found.group(1).lower() in parameters:
            return IssueValue(issuer, parameters, malformed=True)  # a repeat is ambiguous too
        parameters[found.group(1).lower()] = found.group(2)
    return IssueValue(issuer, parameters)


@dataclass(frozen=True)
class Requester:
    """Who asks: the CA's CAA identities (empty: not known), our account's URL there (None:
    not known yet) and the validation method (None: not known)."""

    identities: tuple[str, ...]
    account_uri: str | None
    method: str | None


@dataclass(frozen=True)
class CaaFinding:
    """One SAN's CAA verdict: where its relevant record set was found, why, and (when CAA
    forbids it) the record to add in zone-file syntax."""

    san: str
    status: CaaStatus
    reason: str
    owner: str | None = None  # the name whose CAA set applies (the CNAME's target if any)
    records: tuple[str, ...] = ()  # the relevant set, as zone files write it
    record: str | None = None  # the record to add

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "owner": self.owner,
            "reason": self.reason,
            "records": list(self.records),
            "record": self.record,
        }


def suggested_record(owner: str, tag: str, requester: Requester) -> str | None:
    """The property that lets this CA, account and method issue; None when the CA's
    identity is not known."""
    if not requester.identities:
        return None
    wanted = {"accounturi": requester.account_uri, "validationmethods": requester.method}
    wanted = {tag: text for tag, text in wanted.items() if text}
    value = "; ".join([requester.identities[0], *(f"{t}={v}" for t, v in wanted.items())])
    parsed = parse_issue_value(value)
    if parsed.malformed or parsed.parameters != wanted:
        return None  # an account URL with a space or a `;` cannot be written in a record
    return f"{owner}. 300 IN CAA 0 {tag} {zone_text(value)}"


def _judge(prop: Property, requester: Requester) -> tuple[bool | None, str]:
    """Whether one issue/issuewild property allows the requester (None: cannot tell), and
    why not."""
    shown = f"`{prop.to_text()}`"
    parsed = parse_issue_value(prop.value)
    if parsed.malformed:
        return False, f"{shown} is malformed"
    if parsed.issuer is None:
        return False, f"{shown} allows no CA"
    known = not requester.identities or parsed.issuer in requester.identities
    if not known:
        return False, f"{shown} names another CA than {', '.join(requester.identities)}"
    account = parsed.parameters.get("accounturi")
    methods = parsed.parameters.get("validationmethods")
    if account is not None and requester.account_uri and account != requester.account_uri:
        return False, f"{shown} names another account than {requester.account_uri}"
    if methods is not None and requester.method:
        listed = [m.strip() for m in methods.split(",")]
        if requester.method not in listed:
            return False, f"{shown} allows only {methods}, not {requester.method}"
    unknown = not requester.identities
    unknown |= account is not None and not requester.account_uri
    unknown |= methods is not None and not requester.method
    return (None if unknown else True), ""


def evaluate(
    san: str, owner: str, properties: Sequence[Property], requester: Requester
) -> CaaFinding:
    """The verdict of a non-empty relevant record set found at `owner` for `san`."""
    records = tuple(p.to_text() for p in properties)

    def finding(status: CaaStatus, reason: str, record: str | None = None) -> CaaFinding:
        return CaaFinding(san, status, reason, owner, records, record)

    critical = [p for p in properties if p.critical and p.tag not in KNOWN_TAGS]
    if critical:
        return finding(
            CaaStatus.FORBIDS,
            f"the critical CAA record `{critical[0].to_text()}` at {owner} has a tag CAs do "
            "not know, so none may issue: remove it or clear its flag",
        )
    wildcard = san.startswith("*.")
    tag = "issuewild" if wildcard and any(p.tag == "issuewild" for p in properties) else "issue"
    relevant = [p for p in properties if p.tag == tag]
    if not relevant:
        return finding(CaaStatus.ALLOWED, f"the CAA set at {owner} has no {tag} record")
    verdicts = [_judge(p, requester) for p in relevant]
    if any(v is True for v, _ in verdicts):
        return finding(CaaStatus.ALLOWED, f"a {tag} record at {owner} allows this CA")
    if any(v is None for v, _ in verdicts):
        if not requester.identities:
            missing = "the CA announces no CAA identity (set [caa] identities)"
        elif not requester.account_uri:
            missing = "our account URL there is not known yet (`certcli account register`)"
        else:
            missing = "the validation method is not known"
        return finding(CaaStatus.UNKNOWN, f"{tag} records at {owner} restrict issuance; {missing}")
    why = "; ".join(dict.fromkeys(reason for _, reason in verdicts))
    what = "wildcard certificates" if tag == "issuewild" else "certificates"
    record = suggested_record(owner, tag, requester)
    reason = f"the CAA records at {owner} allow no {what} from this CA: {why}"
    if record is None:
        reason += " (the CA's CAA identity is not known: set [caa] identities)"
    return finding(CaaStatus.FORBIDS, reason, record)


# -- the lookup -----------------------------------------------------------------------------


def parents(name: str) -> list[str]:
    """The name, then each parent, up to but excluding the root."""
    labels = normalize_dns_name(name).split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def relevant_set(
    name: str, resolver: dns.resolver.Resolver
) -> tuple[str, list[Property], str] | None:
    """The first non-empty CAA record set climbing from `name` (RFC 8659 §3): the name
    asked, the records, and the name that holds them (a CNAME's target); None when none."""
    import dns.resolver

    for candidate in parents(name):
        try:
            answer = resolver.resolve(candidate, "CAA", raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            continue
        if answer.rrset is None or not len(answer.rrset):
            continue
        found = [from_rdata(r) for r in answer.rrset]
        holder = normalize_dns_name(answer.rrset.name.to_text())
        return candidate, found, holder
    return None


def from_rdata(rdata: Any) -> Property:
    """A CAA record as dnspython reads it (wire or zone-file text): tags match without case;
    a value that is not UTF-8 keeps U+FFFD for each bad byte (it then parses as malformed)."""
    tag = rdata.tag.decode(errors="replace").lower()
    return Property(rdata.flags, tag, rdata.value.decode(errors="replace"))


def check_one(san: str, requester: Requester, resolver: dns.resolver.Resolver) -> CaaFinding:
    """One SAN's CAA verdict (`*.x` is looked up at x)."""
    import dns.exception

    from certcli.dnscheck import failure

    if is_ip(san):
        return CaaFinding(san, CaaStatus.NONE, "an IP address: CAA names domains only")
    base = san.removeprefix("*.")
    try:
        found = relevant_set(base, resolver)
    except dns.exception.DNSException as exc:
        problem = failure(exc, resolver)
    else:
        if found is None:
            return CaaFinding(san, CaaStatus.NONE, f"no CAA record at {base} or above it")
        asked, properties, holder = found
        finding = evaluate(san, holder, properties, requester)
        if asked != holder:  # the set of a CNAME's target
            finding = _via(finding, asked)
        return finding
    return CaaFinding(san, CaaStatus.ERROR, f"the CAA lookup of {base} failed: {problem}")


def _via(finding: CaaFinding, asked: str) -> CaaFinding:
    from dataclasses import replace

    return replace(finding, reason=f"{finding.reason} (reached from {asked} by CNAME)")


#: The CAA answers of this process by resolvers, kept for their TTL (a negative one for the
#: SOA's minimum), as a caching resolver keeps them: the orders of a batch share their
#: parents' sets (`certcli.test`, `test`), asked once rather than once per order.
_answers: dict[tuple[tuple[str, int], ...], Any] = {}


def check(
    sans: Sequence[str],
    requester: Requester,
    servers: list[tuple[str, int]],
    timeout: float = 5.0,
) -> list[CaaFinding]:
    """Every SAN's CAA verdict, looked up concurrently, in the order given."""
    import dns.resolver

    from certcli.dnscheck import diagnose_each

    cache = _answers.setdefault(tuple(servers), dns.resolver.Cache())  # its own lock

    def one(san: str, resolver: dns.resolver.Resolver) -> CaaFinding:
        resolver.cache = cache
        return check_one(san, requester, resolver)

    return diagnose_each(
        sans,
        servers,
        timeout,
        one,
        lambda san, problem: CaaFinding(san, CaaStatus.ERROR, f"no resolver: {problem}"),
    )


# -- the settings -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CaaSettings:
    """`[caa]`: whether to check, and the CA identities to judge by instead of the
    directory's (for a CA that announces none); the lookups use `[dns] resolvers`."""

    check: bool
    identities: tuple[str, ...]  # empty: the directory's `meta.caaIdentities`
    resolvers: list[tuple[str, int]]
    timeout: float


def settings(get: Callable[[str, Any], Any]) -> CaaSettings:
    """`[caa]` and the `[dns]` resolvers, from a setting getter."""
    from certcli.dnscheck import parse_servers

    enabled = bool(get("caa.check", True))
    identities = get("caa.identities", None) or ()
    if isinstance(identities, str):  # from the environment: comma-separated
        identities = identities.split(",")
    return CaaSettings(
        check=enabled,
        identities=tuple(i.strip().lower() for i in identities if i.strip()),
        # parsed only when used: a check turned off never refuses a resolver setting
        resolvers=parse_servers(get("dns.resolvers", None)) if enabled else [],
        timeout=float(get("dns.query_timeout", 5)),
    )
