"""The rfc2136 provider: dynamic updates (RFC 2136) signed with TSIG (BIND, Knot, PowerDNS, …)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from certcli.domains import normalize_dns_name
from certcli.errors import DnsProviderError, UsageError

if TYPE_CHECKING:
    from certcli.challenges.dns01 import DnsSettings

NAME = "rfc2136"
SETTINGS = {
    "server": "text",
    "tsig_name": "text",
    "tsig_secret": "text",
    "tsig_algorithm": "text",
    "zone": "dns_name",
}
SECRETS = ("tsig_secret",)
#: The TSIG algorithms certcli signs with (certbot's import refuses the others).
TSIG_ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1")


class Rfc2136Provider:
    """Dynamic updates (RFC 2136) signed with TSIG: BIND, Knot, PowerDNS, …"""

    def __init__(self, settings: DnsSettings) -> None:
        from certcli.dnscheck import parse_servers

        conf = settings.provider_options(NAME)
        missing = [k for k in ("server", "tsig_name", "tsig_secret") if not conf.get(k)]
        if missing:
            raise UsageError(
                f"the rfc2136 DNS provider needs {', '.join('dns.rfc2136.' + k for k in missing)}",
                "set them in config.toml ([dns.rfc2136]) or CERTCLI_DNS_RFC2136_*",
            )
        (self.host, self.port), *_ = parse_servers(str(conf["server"]))
        # unset arrives as None: the documented default applies
        self.algorithm = str(conf.get("tsig_algorithm") or "hmac-sha256").lower()
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

    def present(self, name: str, value: str, domain: str) -> None:
        update = self._update()
        update.add(_absolute(name), 60, "TXT", quoted(value))
        self._send(update, f"add the TXT record for {domain}")

    def cleanup(self, name: str, value: str, domain: str) -> None:
        update = self._update()
        update.delete(_absolute(name), "TXT", quoted(value))
        self._send(update, f"remove the TXT record for {domain}")


def _absolute(name: str) -> Any:
    import dns.name

    return dns.name.from_text(normalize_dns_name(name) + ".")


def quoted(value: str) -> str:
    """A TXT value in zone-file syntax."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def make(settings: DnsSettings, interactive: bool, ask: Callable[[str], None]) -> Rfc2136Provider:
    return Rfc2136Provider(settings)
