from __future__ import annotations

import pytest

from certcli.challenges.dns01 import DnsSettings
from certcli.dnscheck import Diagnosis, DnsStatus, parse_servers
from certcli.errors import UsageError
from certcli.providers import make_provider
from certcli.providers.hook import HookProvider
from certcli.providers.manual import ManualProvider
from certcli.providers.rfc2136 import Rfc2136Provider


def test_servers_parse_with_and_without_ports() -> None:
    assert parse_servers(["127.0.0.1:8053", "192.0.2.1", "[::1]:5353", "[2001:db8::1]"]) == [
        ("127.0.0.1", 8053),
        ("192.0.2.1", 53),
        ("::1", 5353),
        ("2001:db8::1", 53),
    ]
    assert parse_servers("127.0.0.1:1, 127.0.0.2") == [("127.0.0.1", 1), ("127.0.0.2", 53)]
    assert parse_servers(None) == [] and parse_servers([]) == []
    for bad in (["ns1.example.com"], ["127.0.0.1:x"]):
        with pytest.raises(UsageError, match="invalid DNS server"):
            parse_servers(bad)


def _d(status: DnsStatus, found: str | None = None) -> Diagnosis:
    return Diagnosis("*.x.com", "_acme-challenge.x.com", status, "t.acme.net", found)


def test_a_diagnosis_names_the_record_to_create() -> None:
    assert _d(DnsStatus.MISSING).record == "_acme-challenge.x.com. 300 IN CNAME t.acme.net."
    assert _d(DnsStatus.WRONG, "y.net").to_json()["found"] == "y.net"
    assert _d(DnsStatus.MISSING).to_json()["dns_status"] == "missing"


def _settings(**kw: object) -> DnsSettings:
    base: dict = dict(
        provider="rfc2136",
        target="t.acme.net",
        resolvers=[],
        propagation_timeout=1,
        query_timeout=1,
        authoritative=[],
        zone="acme.net",
        options={
            "rfc2136": {"server": "127.0.0.1:53", "tsig_name": "k", "tsig_secret": "c2VjcmV0"}
        },
    )
    base.update(kw)
    return DnsSettings(**base)


def test_provider_settings_are_checked() -> None:
    with pytest.raises(UsageError, match=r"dns\.rfc2136\.tsig_secret"):
        Rfc2136Provider(_settings(options={"rfc2136": {"server": "127.0.0.1", "tsig_name": "k"}}))
    with pytest.raises(UsageError, match="tsig_algorithm"):
        Rfc2136Provider(
            _settings(
                options={
                    "rfc2136": {
                        "server": "127.0.0.1",
                        "tsig_name": "k",
                        "tsig_secret": "a",
                        "tsig_algorithm": "md5",
                    }
                }
            )
        )
    with pytest.raises(UsageError, match=r"dns\.hook\.auth"):
        HookProvider(_settings(provider="hook"))
    hook = HookProvider(
        _settings(
            provider="hook", options={"hook": {"auth": "/nonexistent/add", "cleanup": "true"}}
        )
    )
    with pytest.raises(UsageError, match="not an executable"):
        hook.check()
    with pytest.raises(UsageError, match=r"unknown dns\.provider"):
        make_provider(_settings(provider="route53"), True, print)


def test_the_manual_provider_needs_a_terminal_and_shows_the_record() -> None:
    with pytest.raises(UsageError, match="needs a terminal"):
        ManualProvider(False, print).check()
    shown: list[str] = []
    provider = ManualProvider(True, shown.append)
    provider.check()
    provider.present("T.acme.net.", "value-1", "*.x.com")
    assert shown == [
        'For *.x.com, create this record, then press Enter:\n  t.acme.net. 60 IN TXT "value-1"'
    ]


def test_propagation_needs_one_answering_address_per_name_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A host whose IPv6 address is unreachable from here still counts by its IPv4 one."""
    from certcli import dnscheck
    from certcli.errors import DnsPropagationError

    def txt_values(name: str, server: tuple[str, int], timeout: float = 2.0) -> set[str]:
        if ":" in server[0]:
            raise OSError(101, "Network is unreachable")
        return {"v1"} if server[0] == "192.0.2.1" else set()

    monkeypatch.setattr(dnscheck, "txt_values", txt_values)
    ok = {"ns1.": [("2001:db8::1", 53), ("192.0.2.1", 53)]}
    dnscheck.wait_for_txt("t.acme.net", {"v1"}, ok, timeout=1)
    lagging = {**ok, "ns2.": [("192.0.2.2", 53)]}
    with pytest.raises(DnsPropagationError, match=r"ns2\. \(192\.0\.2\.2:53 serves nothing\)"):
        dnscheck.wait_for_txt("t.acme.net", {"v1"}, lagging, timeout=0.3)


def test_hooks_never_see_certclis_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    from certcli.hooks import hook_environment

    monkeypatch.setenv("CERTCLI_PASSPHRASE", "p")
    monkeypatch.setenv("CERTCLI_DNS_RFC2136_TSIG_SECRET", "s")
    monkeypatch.setenv("PATH", "/bin")
    env = hook_environment({"CERTCLI_NAME": "x"})
    assert "CERTCLI_PASSPHRASE" not in env and "CERTCLI_DNS_RFC2136_TSIG_SECRET" not in env
    assert env["PATH"] == "/bin" and env["CERTCLI_NAME"] == "x"


class _FlakyProvider:
    """Records what it is asked; its add fails (as an RFC 2136 update that timed out)."""

    def __init__(self) -> None:
        self.zone: set[str] = set()
        self.removed: list[str] = []

    def check(self) -> None:
        pass

    def present(self, name: str, value: str, domain: str) -> None:
        from certcli.errors import DnsProviderError

        self.zone.add(value)  # it landed all the same
        raise DnsProviderError("no answer from the DNS server")

    def cleanup(self, name: str, value: str, domain: str) -> None:
        self.zone.discard(value)
        self.removed.append(value)


def test_an_add_that_failed_is_removed_and_its_record_kept_for_the_next_run(tmp_path) -> None:
    from certcli.challenges import Challenge
    from certcli.challenges.dns01 import DelegationSolver
    from certcli.errors import DnsProviderError
    from certcli.leftovers import Journal

    settings = DnsSettings("rfc2136", "t.example", [], 1, 1, [], None)
    journal = Journal(tmp_path / "leftovers", "dns-01")
    provider = _FlakyProvider()
    solver = DelegationSolver(settings, provider, journal)
    challenge = Challenge("a.example", "dns-01", "tok", "ka", "value-1")
    with pytest.raises(DnsProviderError):
        solver.present([challenge])
    solver.cleanup([challenge])
    assert provider.removed == ["value-1"] and provider.zone == set()
    (record,) = (tmp_path / "leftovers").iterdir()  # the add may still land: kept
    assert record.name.startswith("dns-01-")
    # the next run removes it once more, and forgets it
    provider.zone.add("value-1")
    assert DelegationSolver(settings, provider, journal).remove_leftovers() == ["value-1"]
    assert provider.zone == set() and list((tmp_path / "leftovers").iterdir()) == []
