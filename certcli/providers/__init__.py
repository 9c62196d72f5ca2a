"""DNS providers: how certcli writes a TXT value at the delegation target. One module per
provider, registered here by name. Each module declares its settings (`[dns.<name>]`, with the
kind config.py checks them by) and which of them are secrets: config.py builds its table of
settings from these declarations, so that a new provider is one new module in this package.

The registry is every module of this package that declares `NAME`: the default provider
first, then by name.

Provider modules stay light at import (config.py, which `certcli status` imports, reads their
declarations): dnspython only inside functions.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol, cast

from certcli.errors import UsageError

if TYPE_CHECKING:
    from certcli.challenges.dns01 import DnsSettings

#: Shows a message and waits for Enter (the manual provider, at a terminal).
Ask = Callable[[str], None]


class Provider(Protocol):
    def check(self) -> None:
        """Fail now, before any order, when the provider cannot work (credentials, tools)."""

    def present(self, name: str, value: str, domain: str) -> None:
        """Add the TXT `value` at `name` (the target) for the challenge of `domain`."""

    def cleanup(self, name: str, value: str, domain: str) -> None:
        """Remove this value only: others at the same name may belong to other orders."""


class ProviderModule(Protocol):
    """What a provider module declares."""

    NAME: str
    #: Its settings below `[dns.<NAME>]`, each with its kind: "text", "seconds" or "dns_name".
    SETTINGS: Mapping[str, str]
    SECRETS: tuple[str, ...]  # the settings whose values are secrets

    def make(self, settings: DnsSettings, interactive: bool, ask: Ask) -> Provider: ...


#: The provider of `dns.provider` when none is set.
DEFAULT = "rfc2136"


def _registered() -> dict[str, ProviderModule]:
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "NAME"):
            found.append(cast(ProviderModule, module))
    found.sort(key=lambda m: (m.NAME != DEFAULT, m.NAME))
    return {m.NAME: m for m in found}


PROVIDERS: dict[str, ProviderModule] = _registered()


def names() -> list[str]:
    return list(PROVIDERS)


def make_provider(settings: DnsSettings, interactive: bool, ask: Ask) -> Provider:
    module = PROVIDERS.get(settings.provider)
    if module is None:
        *others, last = PROVIDERS
        raise UsageError(
            f"unknown dns.provider {settings.provider!r}", f"choose {', '.join(others)} or {last}"
        )
    return module.make(settings, interactive, ask)


def setting_kinds() -> dict[str, str]:
    """Every provider's settings as dotted keys (`dns.rfc2136.server`), with their kinds."""
    return {
        f"dns.{m.NAME}.{key}": kind for m in PROVIDERS.values() for key, kind in m.SETTINGS.items()
    }


def secret_keys() -> tuple[str, ...]:
    return tuple(f"dns.{m.NAME}.{key}" for m in PROVIDERS.values() for key in m.SECRETS)


def provider_settings(module: ProviderModule, get: Callable[[str], object]) -> dict[str, object]:
    """A provider's settings as its constructor reads them, by key below `[dns.<NAME>]`."""
    return {key: get(f"dns.{module.NAME}.{key}") for key in module.SETTINGS}
