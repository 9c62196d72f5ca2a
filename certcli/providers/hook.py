"""The hook provider: user commands, run with CERTCLI_DNS_NAME, CERTCLI_DNS_VALUE and
CERTCLI_DOMAIN set."""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING

from certcli.domains import normalize_dns_name
from certcli.errors import DnsProviderError, UsageError

if TYPE_CHECKING:
    from certcli.challenges.dns01 import DnsSettings

NAME = "hook"
SETTINGS = {"auth": "text", "cleanup": "text", "timeout": "seconds"}
SECRETS: tuple[str, ...] = ()


class HookProvider:
    """User commands, run with CERTCLI_DNS_NAME, CERTCLI_DNS_VALUE, CERTCLI_DOMAIN set."""

    def __init__(self, settings: DnsSettings) -> None:
        conf = settings.provider_options(NAME)
        if not conf.get("auth") or not conf.get("cleanup"):
            raise UsageError(
                "the hook DNS provider needs dns.hook.auth and dns.hook.cleanup commands",
                "set them in config.toml ([dns.hook])",
            )
        try:
            self.auth = shlex.split(str(conf["auth"]))
            self.remove = shlex.split(str(conf["cleanup"]))
            self.timeout = float(conf.get("timeout") or 120)
        except ValueError as exc:
            raise UsageError(f"invalid [dns.hook] setting: {exc}") from None

    def check(self) -> None:
        for command in (self.auth, self.remove):
            if not command or not (shutil.which(command[0]) or os.access(command[0], os.X_OK)):
                raise UsageError(
                    f"the DNS hook {command[0] if command else '(empty)'!r} is not an executable",
                    "fix dns.hook.auth / dns.hook.cleanup",
                )

    def _run(self, command: list[str], name: str, value: str, domain: str) -> None:
        from certcli.hooks import run_command

        env = {
            "CERTCLI_DNS_NAME": normalize_dns_name(name),
            "CERTCLI_DNS_VALUE": value,
            "CERTCLI_DOMAIN": domain,
        }
        problem = run_command(
            f"the DNS hook {shlex.join(command)} for {domain}", command, env, self.timeout
        )
        if problem:
            raise DnsProviderError(problem)

    def present(self, name: str, value: str, domain: str) -> None:
        self._run(self.auth, name, value, domain)

    def cleanup(self, name: str, value: str, domain: str) -> None:
        self._run(self.remove, name, value, domain)


def make(settings: DnsSettings, interactive: bool, ask: Callable[[str], None]) -> HookProvider:
    return HookProvider(settings)
