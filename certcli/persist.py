"""The dns-persist-01 record (draft-ietf-acme-dns-persist), without I/O: its syntax, how one
CA judges it for one account, and how certcli writes the one to publish.

`_validation-persist.<domain> TXT "<issuer>; accounturi=<URI>[; policy=wildcard][;
persistUntil=<unix seconds>]"`: the value follows RFC 8659's issue-value grammar (an issuer
domain name, then `;`-separated `tag=value` parameters); tags are compared without case,
unknown ones are ignored, a tag given twice makes the record malformed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from certcli.caa import ISSUER, PARAMETER, WSP
from certcli.domains import zone_string

#: The label before the domain, as the draft names it.
LABEL = "_validation-persist"
#: The hash whose name a hashed accounturi carries, the one every CA accepts.
HASH_NAME = "sha-256"
#: The most issuer domain names a CA may list, and the longest one (the draft's §3.1).
MAX_ISSUERS, MAX_ISSUER_OCTETS = 10, 253


class Malformed(ValueError):
    """A record that breaks the grammar; its text says how."""


@dataclass(frozen=True)
class PersistRecord:
    issuer: str  # lowercase
    parameters: dict[str, str]  # by lowercase tag

    @property
    def account_uri(self) -> str:
        return self.parameters["accounturi"]

    @property
    def wildcard(self) -> bool:
        return self.parameters.get("policy", "").lower() == "wildcard"

    @property
    def persist_until(self) -> int | None:
        value = self.parameters.get("persistuntil")
        return None if value is None else int(value)


def parse(text: str) -> PersistRecord:
    """One TXT value as a persist record; Malformed says what breaks the grammar."""
    head, semicolon, rest = text.strip(WSP).partition(";")
    issuer = head.strip(WSP)
    if not issuer:
        raise Malformed("no issuer domain name before the first ';'")
    if not ISSUER.fullmatch(issuer):
        raise Malformed(f"{issuer!r} is not an issuer domain name")
    parameters: dict[str, str] = {}
    if semicolon and rest.strip(WSP):
        for part in (p.strip(WSP) for p in rest.split(";")):
            found = PARAMETER.fullmatch(part)
            if not part:
                raise Malformed("an empty parameter (a ';' with nothing after it)")
            if found is None:
                raise Malformed(f"{part!r} is not a tag=value parameter")
            tag, value = found.group(1).lower(), found.group(2)
            if tag in parameters:
                raise Malformed(f"the parameter {tag} is given twice")
            parameters[tag] = value
    if "accounturi" not in parameters:
        raise Malformed("no accounturi parameter")
    until = parameters.get("persistuntil")
    if until is not None and not (until.isascii() and until.isdigit()):
        raise Malformed(f"persistUntil={until} is not a number of seconds")
    return PersistRecord(issuer.lower(), parameters)


def hashed_account_uri(prefix: str, thumbprint: str, account_uri: str, domain: str) -> str:
    """The hashed form of an account URL for `domain` (or `*`, for every domain): the CA's
    `accountHashPrefix`, `sha-256/`, and base64url SHA-256 of the domain's length octet,
    the domain, the account key's JWK thumbprint and the account URL."""
    name = domain.encode()
    digest = hashlib.sha256(bytes([len(name)]) + name + thumbprint.encode() + account_uri.encode())
    encoded = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    return f"{prefix}{HASH_NAME}/{encoded}"


@dataclass(frozen=True)
class Expected:
    """What one CA accepts from one account: its issuer names (the first is the one to
    publish), the account URI to publish, the others that also name the account (the
    hashed form for every domain), and whether the CA hashes account URIs at all."""

    issuers: tuple[str, ...]
    account_uri: str
    also: frozenset[str] = frozenset()
    plain_uri: str | None = None  # the account URL itself, when the CA hashes it

    def names_us(self, uri: str) -> bool:
        return uri == self.account_uri or uri in self.also


def expected(
    issuers: Sequence[str],
    account_uri: str,
    domain: str,
    hash_prefix: str | None = None,
    thumbprint: str | None = None,
) -> Expected:
    """What a CA accepts for `domain` (no `*.`): the plain account URL, or where the CA
    announces `accountHashPrefix`, the hashed form (for this domain, or for every one)."""
    if hash_prefix and thumbprint:
        mine = hashed_account_uri(hash_prefix, thumbprint, account_uri, domain)
        every = hashed_account_uri(hash_prefix, thumbprint, account_uri, "*")
        return Expected(tuple(issuers), mine, frozenset({every}), account_uri)
    return Expected(tuple(issuers), account_uri)


def judge(record: PersistRecord, want: Expected, wildcard: bool, now: float) -> str | None:
    """Why this record does not validate the SAN for this CA and account (None: it does)."""
    if record.issuer not in want.issuers:
        return f"issued to another CA ({record.issuer}; this CA is {', '.join(want.issuers)})"
    uri = record.account_uri
    if not want.names_us(uri):
        if uri == want.plain_uri:
            return "accounturi is the account URL itself: this CA asks for its hashed form"
        return f"accounturi names another account ({uri})"
    if wildcard and not record.wildcard:
        return "no policy=wildcard, which a wildcard SAN needs"
    until = record.persist_until
    if until is not None and until < now:
        return f"expired: persistUntil={until} ({moment(until)}) is past"
    return None


def verdict(
    values: Iterable[str], want: Expected, wildcard: bool, now: float
) -> tuple[bool, str | None]:
    """Whether one of the TXT values validates the SAN (others may be for other CAs), and
    else the reason that matters most: a record for this CA and account first, then one for
    this CA, then a malformed one, then one for another CA."""
    best: tuple[int, str] | None = None
    for value in values:
        try:
            record = parse(value)
        except Malformed as exc:
            rank, reason = 2, f"malformed: {exc}"
        else:
            problem = judge(record, want, wildcard, now)
            if problem is None:
                return True, None
            if record.issuer not in want.issuers:
                rank = 3
            else:
                rank = 0 if want.names_us(record.account_uri) else 1
            reason = problem
        if best is None or rank < best[0]:
            best = (rank, reason)
    return False, best[1] if best else None


def valid_until(values: Iterable[str], want: Expected, wildcard: bool, now: float) -> int | None:
    """Until when the SAN stays validated by one of the values (persistUntil of the one that
    lasts longest), given one validates it now; None when one has no end."""
    ends = []
    for text in values:
        with contextlib.suppress(Malformed):
            record = parse(text)
            if judge(record, want, wildcard, now) is None:
                if record.persist_until is None:
                    return None
                ends.append(record.persist_until)
    return max(ends) if ends else None


def value(want: Expected, wildcard: bool = False, persist_until: int | None = None) -> str:
    """The TXT value to publish."""
    parts = [want.issuers[0], f"accounturi={want.account_uri}"]
    if wildcard:
        parts.append("policy=wildcard")
    if persist_until is not None:
        parts.append(f"persistUntil={persist_until}")
    return "; ".join(parts)


def zone_line(owner: str, text: str) -> str:
    """The TXT record at `owner` (`_validation-persist.<domain>`, or where its CNAME chain
    ends) in zone-file syntax, split in strings of at most 255 bytes."""
    raw = text.encode(errors="replace")
    chunks = [raw[i : i + 255] for i in range(0, len(raw), 255)] or [b""]
    return f"{owner}. 300 IN TXT {' '.join(zone_string(c) for c in chunks)}"


def moment(seconds: int) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return "far off"


def is_issuer_name(name: object) -> bool:
    """Whether `name` is an issuer domain name as a CA must send it: lowercase A-labels, no
    trailing dot, at most 253 octets."""
    return (
        isinstance(name, str)
        and len(name) <= MAX_ISSUER_OCTETS
        and name == name.lower()
        and ISSUER.fullmatch(name) is not None
    )


#: A parameter's value (RFC 8659: printable ASCII but ';', never a space), of a sane length.
_VALUE = re.compile(r"[\x21-\x3a\x3c-\x7e]{1,1000}")


def check_ca_text(account_uri: str, prefix: str | None) -> None:
    """Raise Malformed naming the CA's text (its account URL, its accountHashPrefix) that
    cannot be a record's parameter value: a space, a `;` or a line break in it would change
    the record the user publishes (a smuggled `; policy=wildcard`)."""
    for what, text in (("account URL", account_uri), ("accountHashPrefix", prefix)):
        if text is not None and not _VALUE.fullmatch(text):
            raise Malformed(f"the CA's {what} {text[:80]!r} cannot be written in a record")


def announced_issuers(value: object) -> tuple[str, ...] | None:
    """A CA's `issuerDomainNames` (its directory's, or a challenge's), or None when the array
    breaks the draft's rules (not a list, empty, more than 10, a name that is not one): a
    client treats such an array as not given. The CA's words become the record the user
    publishes, so a `;` or a line break in them must never reach it."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ISSUERS:
        return None
    if not all(is_issuer_name(name) for name in value):
        return None
    return tuple(value)


# -- the settings' kinds (config.py checks `[dns_persist]` with them) ---------------------


def issuers(value: object) -> list[str]:
    """Issuer domain names: one, a list, or a comma-separated text; lowercase."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError
    names = [item.strip().lower().removesuffix(".") for item in items if isinstance(item, str)]
    if len(names) != len(items) or not all(ISSUER.fullmatch(n) for n in names):
        raise ValueError
    return names


#: The last moment a date can name (9999-12-31T23:59:59Z): a persistUntil past it is no date.
LAST_SECOND = 253402300799


def unix_seconds(value: object) -> int:
    """A moment as unix seconds: a date (midnight UTC), an RFC 3339 moment, or seconds (up
    to the year 9999: a CA that reads them as a date must be able to)."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= LAST_SECOND:
        return value
    if not isinstance(value, str):
        raise ValueError
    text = value.strip()
    if text.isascii() and text.isdigit():
        if int(text) > LAST_SECOND:
            raise ValueError
        return int(text)
    if len(text) == 10:  # YYYY-MM-DD
        return int(datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
    found = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if found.tzinfo is None:  # RFC 3339 always names its offset
        raise ValueError
    return int(found.timestamp())
