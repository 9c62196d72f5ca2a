"""DNS-01 by CNAME delegation: every SAN's `_acme-challenge` name CNAMEs to one target that
certcli writes through a provider (rfc2136, hook or manual)."""

from __future__ import annotations

import os
import shlex
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from certcli.domains import normalize_dns_name
from certcli.errors import CertcliError, DnsProviderError, UsageError
from certcli.solvers import Challenge

if TYPE_CHECKING:
    from certcli.leftovers import Journal, Record

TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1")


class DnsProvider(Protocol):
    def check(self) -> None:
        """Fail now, before any order, when the provider cannot work (credentials, tools)."""

    def add(self, name: str, value: str, domain: str) -> None: ...

    def remove(self, name: str, value: str, domain: str) -> None:
        """Remove this value only: others at the same name may belong to other orders."""


@dataclass(frozen=True)
class DnsSettings:
    provider: str
    target: str
    resolvers: list[tuple[str, int]]
    propagation_timeout: float
    query_timeout: float
    authoritative: list[tuple[str, int]]  # empty: the target zone's NS
    zone: str | None
    rfc2136: dict[str, Any] = field(repr=False)  # holds the TSIG secret: never shown
    hook: dict[str, Any]


class Rfc2136Provider:
    """Dynamic updates (RFC 2136) signed with TSIG: BIND, Knot, PowerDNS, …"""

    def __init__(self, settings: DnsSettings) -> None:
        from certcli.dnscheck import parse_servers

        conf = settings.rfc2136
        missing = [k for k in ("server", "tsig_name", "tsig_secret") if not conf.get(k)]
        if missing:
            raise UsageError(
                f"the rfc2136 DNS provider needs {', '.join('dns.rfc2136.' + k for k in missing)}",
                "set them in config.toml ([dns.rfc2136]) or CERTCLI_DNS_RFC2136_*",
            )
        (self.host, self.port), *_ = parse_servers(str(conf["server"]))
        self.algorithm = str(conf.get("tsig_algorithm", "hmac-sha256")).lower()
        if self.algorithm not in TSIG_ALGORITHMS:
            raise UsageError(
                f"unknown dns.rfc2136.tsig_algorithm {self.algorithm!r}",
                f"choose one of: {', '.join(TSIG_ALGORITHMS)}",
            )
        self.key_name = str(conf["tsig_name"])
        self.secret = str(conf["tsig_secret"])
        self.settings = settings
        self._zone = settings.zone

    @property
    def zone(self) -> str:
        if self._zone is None:
            from certcli.dnscheck import find_zone

            self._zone = find_zone(self.settings.target, self.settings.resolvers)
        return self._zone

    def _update(self) -> Any:
        import dns.tsigkeyring
        import dns.update

        try:
            keyring = dns.tsigkeyring.from_text({self.key_name: (self.algorithm, self.secret)})
        except Exception:  # dnspython raises several kinds for a bad base64 secret
            raise UsageError(
                "dns.rfc2136.tsig_secret is not valid base64", "copy it from tsig-keygen's output"
            ) from None
        return dns.update.UpdateMessage(self.zone, keyring=keyring)

    def _send(self, update: Any, action: str) -> None:
        import dns.exception
        import dns.query
        import dns.rcode
        import dns.tsig

        where = f"{self.host}:{self.port}"
        try:
            response = dns.query.tcp(update, self.host, port=self.port, timeout=10)
        except (dns.tsig.PeerBadKey, dns.tsig.PeerBadSignature, dns.tsig.PeerBadTime) as exc:
            raise DnsProviderError(
                f"the DNS server {where} rejected TSIG key {self.key_name!r} "
                f"({type(exc).__name__.removeprefix('Peer')}) while trying to {action}",
                "check dns.rfc2136.tsig_name, tsig_secret and tsig_algorithm",
            ) from None
        except (dns.exception.DNSException, OSError) as exc:
            raise DnsProviderError(
                f"no answer from the DNS server {where} while trying to {action} "
                f"({exc or type(exc).__name__})",
                "check dns.rfc2136.server",
            ) from None
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            raise DnsProviderError(
                f"the DNS server {where} answered {dns.rcode.to_text(rcode)} to the update of "
                f"zone {self.zone} while trying to {action}",
                "check that the key may update that zone (allow-update / update-policy) "
                "and dns.rfc2136.zone",
            )

    def check(self) -> None:
        import dns.name

        # An update whose only content is a prerequisite that always holds: the server
        # checks the signature and the key's rights, and changes nothing.
        update = self._update()
        update.present(dns.name.from_text(self.zone), "SOA")
        self._send(update, "check the update credentials")

    def add(self, name: str, value: str, domain: str) -> None:
        update = self._update()
        update.add(_absolute(name), 60, "TXT", _quoted(value))
        self._send(update, f"add the TXT record for {domain}")

    def remove(self, name: str, value: str, domain: str) -> None:
        update = self._update()
        update.delete(_absolute(name), "TXT", _quoted(value))
        self._send(update, f"remove the TXT record for {domain}")


def _absolute(name: str) -> Any:
    import dns.name

    return dns.name.from_text(normalize_dns_name(name) + ".")


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class HookProvider:
    """User commands, run with CERTCLI_DNS_NAME, CERTCLI_DNS_VALUE, CERTCLI_DOMAIN set."""

    def __init__(self, settings: DnsSettings) -> None:
        conf = settings.hook
        if not conf.get("auth") or not conf.get("cleanup"):
            raise UsageError(
                "the hook DNS provider needs dns.hook.auth and dns.hook.cleanup commands",
                "set them in config.toml ([dns.hook])",
            )
        try:
            self.auth = shlex.split(str(conf["auth"]))
            self.cleanup = shlex.split(str(conf["cleanup"]))
            self.timeout = float(conf.get("timeout") or 120)
        except ValueError as exc:
            raise UsageError(f"invalid [dns.hook] setting: {exc}") from None

    def check(self) -> None:
        for command in (self.auth, self.cleanup):
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

    def add(self, name: str, value: str, domain: str) -> None:
        self._run(self.auth, name, value, domain)

    def remove(self, name: str, value: str, domain: str) -> None:
        self._run(self.cleanup, name, value, domain)


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

    def add(self, name: str, value: str, domain: str) -> None:
        self.ask(
            f"For {domain}, create this record, then press Enter:\n"
            f"  {normalize_dns_name(name)}. 60 IN TXT {_quoted(value)}"
        )

    def remove(self, name: str, value: str, domain: str) -> None:
        return None  # the user removes it; nothing waits on that


class DelegationSolver:
    """Writes each challenge's value at the delegation target and waits until every
    authoritative server of the target's zone serves it."""

    challenge_type = "dns-01"

    def __init__(
        self, settings: DnsSettings, provider: DnsProvider, journal: Journal | None = None
    ) -> None:
        self.settings = settings
        self.provider = provider
        self.journal = journal
        self._added: list[Challenge] = []
        self._records: dict[Challenge, Record | None] = {}
        self.cleanup_errors: list[str] = []

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
                self.provider.remove(
                    self.settings.target, str(data.get("value")), str(data.get("domain"))
                )
            except CertcliError as exc:  # the next run tries again
                self.cleanup_errors.append(exc.message)
                record.keep()
                continue
            record.done()
            removed.append(str(data.get("value")))
        return removed

    def present(self, challenges: list[Challenge]) -> None:
        for challenge in challenges:
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
            self.provider.add(self.settings.target, challenge.validation, challenge.identifier)
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
            # lands later
            removed = False
            try:
                self.provider.remove(
                    self.settings.target, challenge.validation, challenge.identifier
                )
                removed = True
            except CertcliError as exc:  # never hide the order's own outcome
                if added:
                    self.cleanup_errors.append(exc.message)
            if added:
                self._added.remove(challenge)
            if record is not None and removed and added:
                record.done()
            elif record is not None:
                record.keep()


def make_provider(
    settings: DnsSettings, interactive: bool, ask: Callable[[str], None]
) -> DnsProvider:
    if settings.provider == "rfc2136":
        return Rfc2136Provider(settings)
    if settings.provider == "hook":
        return HookProvider(settings)
    if settings.provider == "manual":
        return ManualProvider(interactive, ask)
    raise UsageError(
        f"unknown dns.provider {settings.provider!r}", "choose rfc2136, hook or manual"
    )
