"""The manual provider: shows the record and waits for Enter (only at a terminal)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from certcli.domains import normalize_dns_name
from certcli.errors import UsageError
from certcli.providers.rfc2136 import quoted

if TYPE_CHECKING:
    from certcli.challenges.dns01 import DnsSettings

NAME = "manual"
SETTINGS: dict[str, str] = {}
SECRETS: tuple[str, ...] = ()


class ManualProvider:
    """Shows the record and waits for Enter: only at a terminal."""

    def __init__(self, interactive: bool, ask: Callable[[str], None]) -> None:
        self.interactive = interactive
        self.ask = ask

    def check(self) -> None:
        if not self.interactive:
            raise UsageError(
                "the manual DNS provider needs a terminal",
                'use dns.provider = "rfc2136" or "hook" for unattended runs',
            )

    def present(self, name: str, value: str, domain: str) -> None:
        self.ask(
            f"For {domain}, create this record, then press Enter:\n"
            f"  {normalize_dns_name(name)}. 60 IN TXT {quoted(value)}"
        )

    def cleanup(self, name: str, value: str, domain: str) -> None:
        return None  # the user removes it; nothing waits on that


def make(settings: DnsSettings, interactive: bool, ask: Callable[[str], None]) -> ManualProvider:
    return ManualProvider(interactive, ask)
