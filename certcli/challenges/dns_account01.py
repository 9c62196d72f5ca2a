"""dns-account-01 (draft-ietf-acme-dns-account-label) by CNAME delegation: as DNS-01, but
each SAN's challenge name is scoped to our account, `_<label>._acme-challenge.<base>`, so
that several issuers (several hosts, a CDN and an origin) each delegate their own name for
one domain without stepping on each other. The values are written at the same delegation
target, through the same providers."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from certcli.challenges import Get, ca_facts, dns01
from certcli.errors import UsageError

if TYPE_CHECKING:
    from certcli.dnscheck import Diagnosis
    from certcli.storage.protocol import Storage


def account_label(account_uri: str) -> str:
    """The draft's label: the lowercase base32 of the first 10 bytes of SHA-256 of the
    account URL (16 characters, no padding)."""
    digest = hashlib.sha256(account_uri.encode()).digest()[:10]
    return base64.b32encode(digest).decode().lower()


def _labelled(settings: dns01.DnsSettings) -> dns01.DnsSettings:
    if settings.label is None:
        raise UsageError(
            "dns-account-01 names your ACME account, and there is none at this CA yet",
            "`certcli account register` creates it; then create the CNAMEs "
            "`certcli dns check --challenge dns-account-01 DOMAIN` lists",
        )
    return settings


class AccountDelegation(dns01.Delegation):
    """dns-account-01 by CNAME delegation, as the challenge registry knows it."""

    name = "dns-account-01"

    def settings(self, get: Get, store: Storage | None) -> dns01.DnsSettings:
        account = ca_facts(get, store).account_uri
        label = account_label(account) if account else None
        return replace(dns01.settings(get, store), label=label)

    def check(self, identifiers: Sequence[str], settings: dns01.DnsSettings) -> list[Diagnosis]:
        return dns01.check(identifiers, _labelled(settings))

    def diagnose(self, identifiers: Sequence[str], settings: dns01.DnsSettings) -> list[Diagnosis]:
        return dns01.diagnose(identifiers, _labelled(settings))

    def hint(self, settings: dns01.DnsSettings) -> str | None:
        return (
            "`certcli dns check --challenge dns-account-01 DOMAIN` shows what a resolver "
            "finds, and what to fix"
        )

    def describe(self, webroot: str | None) -> str:
        return "dns-account-01 by delegation"


METHOD = AccountDelegation()
