"""Identifier validation, the wildcard coverage rule, and DNS text as zone files write it
(escaped, for whatever shows DNS data), without I/O."""

from __future__ import annotations

import ipaddress
import re

from certcli.errors import InvalidInputError, UsageError

# matched with fullmatch: `$` alone would accept a trailing newline
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_LINEAGE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def spaced(text: str) -> bool:
    """Whether `text` holds a space or a control character (a newline, a tab): never part of a
    name, and never stripped, since such a name is not the one meant."""
    return any(c.isspace() or not c.isprintable() for c in text)


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def normalize_identifier(raw: str) -> str:
    """Return the canonical form of a DNS name or IP address, or raise UsageError.

    DNS names are lower-cased and lose a trailing dot; a wildcard is allowed only as the
    whole leftmost label; non-ASCII names must be given in their IDNA (xn--) form.
    """
    if spaced(raw):
        raise UsageError(
            f"invalid domain name {raw!r}: holds a space or a control character",
            "give the name alone, without spaces, tabs or line breaks",
        )
    name = raw
    if is_ip(name):
        return ipaddress.ip_address(name).compressed
    if not name.isascii():
        try:
            suggestion = name.encode("idna").decode("ascii")
        except UnicodeError:
            suggestion = None
        hint = f"use its IDNA form: {suggestion}" if suggestion else "use its IDNA (xn--) form"
        raise UsageError(f"invalid domain name {raw!r}: not ASCII", hint)
    name = name.lower().removesuffix(".")
    if not name:
        raise UsageError(f"invalid domain name {raw!r}: empty")
    if len(name) > 253:
        raise UsageError(f"invalid domain name {raw[:40]}…: {len(name)} characters (at most 253)")
    labels = name.split(".")
    if labels[0] == "*":
        labels = labels[1:]
    if len(labels) < 2:
        raise UsageError(f"invalid domain name {raw!r}: needs at least two labels (example.com)")
    for label in labels:
        if not label:
            raise UsageError(f"invalid domain name {raw!r}: empty label")
        if "*" in label:
            raise UsageError(
                f"invalid domain name {raw!r}: a wildcard may only be the whole leftmost label"
            )
        if len(label) > 63:
            raise UsageError(
                f"invalid domain name {raw[:40]}…: label of {len(label)} characters (at most 63)"
            )
        if not _LABEL.fullmatch(label):
            raise UsageError(
                f"invalid domain name {raw!r}: label {label!r} may hold only letters, digits "
                "and inner hyphens"
            )
    return name


def check_email(raw: str) -> str:
    """A contact address, checked as permissively as a CA would: one `@`, a local part, and
    a domain that is a valid DNS name. Returned as given."""
    local, at, domain = raw.rpartition("@")
    problem = None
    if not at or not local or "@" in local:
        problem = "it needs exactly one @ between a name and a domain"
    elif spaced(raw) or not raw.isascii():
        problem = "it holds a space, a control character or a non-ASCII character"
    else:
        try:
            normalized = normalize_identifier(domain)
        except UsageError:
            normalized = ""
        if not normalized or is_ip(normalized) or normalized.startswith("*."):
            problem = f"{domain!r} is not a valid domain name"
    if problem:
        raise UsageError(f"invalid email address {raw!r}: {problem}", "give it as name@example.com")
    return raw


def check_certificate_names(sans: tuple[str, ...] | list[str], source: str) -> None:
    """A certificate's names that become a lineage's domains (upload, import) are checked as
    the command line's are: no newline or control character, a valid DNS name or IP."""
    for san in sans:
        try:
            normalize_identifier(san)
        except UsageError as exc:
            raise InvalidInputError(
                f"{source} names {san!r}, which is not a valid domain: {exc.message}",
                "get a certificate whose names are valid DNS names or IP addresses",
            ) from None


def normalize_identifiers(raw: list[str]) -> list[str]:
    """Normalize a list, dropping repeats but keeping the user's order."""
    seen: dict[str, None] = {}
    for item in raw:
        seen.setdefault(normalize_identifier(item), None)
    return list(seen)


def covers(cert_name: str, domain: str) -> bool:
    """Whether a certificate SAN covers a domain.

    `*.example.com` covers exactly one label below example.com: not the apex and not
    `a.b.example.com`. A wildcard domain is covered only by the same wildcard.
    """
    cert_name = cert_name.lower().removesuffix(".")
    domain = domain.lower().removesuffix(".")
    if cert_name == domain:
        return True
    if is_ip(cert_name) or is_ip(domain):
        return False
    if not cert_name.startswith("*.") or domain.startswith("*."):
        return False
    head, _, rest = domain.partition(".")
    return bool(head) and rest == cert_name[2:]


def covered_by(sans: list[str] | tuple[str, ...], domain: str) -> bool:
    return covered_in(san_index(sans), domain)


def san_index(sans: list[str] | tuple[str, ...]) -> frozenset[str]:
    """A certificate's SANs as a set, for `covered_in`: with it, checking n domains against n
    SANs is linear, not quadratic."""
    return frozenset(san.lower().removesuffix(".") for san in sans)


def covered_in(index: frozenset[str], domain: str) -> bool:
    """`covers` against a `san_index`: the name itself, or the wildcard of its parent (one
    set lookup; the IP check only when such a wildcard is there, as an IP is never one)."""
    domain = domain.lower().removesuffix(".")
    if domain in index:
        return True
    if domain.startswith("*."):
        return False
    head, _, rest = domain.partition(".")
    return bool(head) and f"*.{rest}" in index and not is_ip(domain)


def uncovered(sans: list[str] | tuple[str, ...], domains: list[str] | tuple[str, ...]) -> list[str]:
    """The domains that no SAN covers, in order."""
    index = san_index(sans)
    return [d for d in domains if not covered_in(index, d)]


def default_lineage_name(domains: list[str]) -> str:
    """certbot's convention: the first domain, without a wildcard prefix."""
    return domains[0].removeprefix("*.").replace(":", "-")


def is_lineage_name(name: str) -> bool:
    """Whether `name` can name a lineage: never a path (`/`, `..`), never hidden, one line."""
    return _LINEAGE_NAME.fullmatch(name) is not None and ".." not in name


def validate_lineage_name(name: str) -> str:
    if not is_lineage_name(name):
        raise UsageError(
            f"invalid certificate name {name!r}",
            "use letters, digits, '.', '-' and '_' (at most 100, not starting with '.' or '-')",
        )
    return name


def challenge_name(identifier: str, label: str | None = None) -> str | None:
    """`_acme-challenge.<base>`, where `*.x` has base `x` (dns-account-01's is
    `_<label>._acme-challenge.<base>`); IP identifiers have none."""
    if is_ip(identifier):
        return None
    scope = f"_{label}." if label else ""
    return f"{scope}_acme-challenge.{identifier.removeprefix('*.')}"


def normalize_dns_name(name: str) -> str:
    """Case and a trailing dot never matter when comparing DNS names."""
    return name.strip().lower().removesuffix(".")


def order_identifiers(domains: list[str] | tuple[str, ...]) -> list[str]:
    """The names to put in an order: a lineage's domains less those its own wildcards cover
    (a.example.com beside *.example.com adds nothing but a validation)."""
    wildcards = san_index([d for d in domains if d.startswith("*.")])
    return [d for d in domains if d.startswith("*.") or not covered_in(wildcards, d)]


def zone_string(raw: bytes) -> str:
    """One character string as a zone file writes it (RFC 1035 §5.1): in quotes, `"` and
    `\\` escaped, every byte outside printable ASCII as `\\DDD`. DNS data is anyone's: shown
    this way, a TXT or CAA value never breaks a line or sends a terminal escape."""
    out = []
    for byte in raw:
        char = chr(byte)
        if char in '"\\':
            out.append("\\" + char)
        elif 0x20 <= byte <= 0x7E:
            out.append(char)
        else:
            out.append(f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


def zone_text(text: str) -> str:
    """A value (a TXT record's strings joined, a CAA value) as one quoted zone-file string."""
    return zone_string(text.encode(errors="replace"))
