"""The DNS provider registry: each module declares its settings and secrets, config.py's
table of settings is built from them, and none imports dnspython until it is used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from certcli import config, providers
from certcli.challenges import Challenge
from certcli.challenges.dns01 import DelegationSolver, DnsSettings
from certcli.errors import DnsProviderError, UsageError
from certcli.leftovers import Journal
from certcli.providers import PROVIDERS, make_provider, secret_keys, setting_kinds
from certcli.providers.hook import HookProvider
from certcli.providers.manual import ManualProvider
from certcli.providers.rfc2136 import TSIG_ALGORITHMS, Rfc2136Provider


def _settings(provider: str, **kw: object) -> DnsSettings:
    return DnsSettings(provider, "t.acme.net", [], 1, 1, [], "acme.net", **kw)  # type: ignore[arg-type]


def test_providers_are_registered_by_name() -> None:
    assert providers.names() == ["rfc2136", "hook", "manual"]  # the default first, then by name
    modules = sorted(p.stem for p in Path(providers.__file__).parent.glob("[!_]*.py"))
    assert modules == sorted(providers.names())  # a module of the package is a provider
    assert all(name == PROVIDERS[name].NAME for name in providers.names())
    rfc2136 = {"server": "127.0.0.1:53", "tsig_name": "k", "tsig_secret": "c2VjcmV0"}
    assert isinstance(
        make_provider(_settings("rfc2136", options={"rfc2136": rfc2136}), True, print),
        Rfc2136Provider,
    )
    hook = {"auth": "/bin/true", "cleanup": "/bin/true"}
    assert isinstance(
        make_provider(_settings("hook", options={"hook": hook}), True, print), HookProvider
    )
    assert isinstance(make_provider(_settings("manual"), True, print), ManualProvider)
    with pytest.raises(UsageError) as unknown:
        make_provider(_settings("route53"), True, print)
    assert unknown.value.message == "unknown dns.provider 'route53'"
    assert unknown.value.hint == "choose rfc2136, hook or manual"


def test_a_provider_reads_its_settings_from_the_options_by_its_name() -> None:
    options = {"hook": {"auth": "/bin/true", "cleanup": "/bin/false", "timeout": 3}}
    hook = make_provider(_settings("hook", options=options), True, print)
    assert isinstance(hook, HookProvider)
    assert (hook.auth, hook.remove, hook.timeout) == (["/bin/true"], ["/bin/false"], 3.0)


def test_config_checks_every_declared_setting_by_its_kind() -> None:
    kinds = {"text": config.TEXT, "seconds": config.SECONDS, "dns_name": config.DNS_NAME}
    declared = setting_kinds()
    assert "dns.rfc2136.tsig_secret" in declared and "dns.hook.timeout" in declared
    for key, kind in declared.items():
        assert config._KINDS[key] is kinds[kind], key
    assert {"dns.rfc2136", "dns.hook"} <= set(config.SECTIONS)
    assert config._KINDS["dns.provider"].text == "one of: rfc2136, hook, manual"


def test_secrets_are_declared_once_by_their_provider() -> None:
    assert secret_keys() == ("dns.rfc2136.tsig_secret",)
    assert config.SECRET_KEYS == ("dns.rfc2136.tsig_secret", "notify.webhook")
    from certcli.hooks import SECRET_ENV

    assert "CERTCLI_DNS_RFC2136_TSIG_SECRET" in SECRET_ENV


def test_an_unset_tsig_algorithm_is_hmac_sha256() -> None:
    rfc2136 = {"server": "127.0.0.1:53", "tsig_name": "k", "tsig_secret": "c2VjcmV0"}
    for unset in ({}, {"tsig_algorithm": None}):
        options = {"rfc2136": rfc2136 | unset}
        assert Rfc2136Provider(_settings("rfc2136", options=options)).algorithm == "hmac-sha256"


def test_the_tsig_algorithms_are_listed_once() -> None:
    from certcli import certbot_conf

    assert certbot_conf.TSIG_ALGORITHMS is TSIG_ALGORITHMS
    with pytest.raises(UsageError, match=r"unknown dns\.rfc2136\.tsig_algorithm") as refused:
        Rfc2136Provider(
            _settings(
                "rfc2136",
                options={
                    "rfc2136": {
                        "server": "::1",
                        "tsig_name": "k",
                        "tsig_secret": "a",
                        "tsig_algorithm": "md5",
                    }
                },
            )
        )
    assert refused.value.hint == "choose one of: " + ", ".join(TSIG_ALGORITHMS)


def test_settings_and_providers_import_no_dnspython() -> None:
    probe = (
        "import json, sys; import certcli.config, certcli.providers, certcli.challenges; "
        "roots = {m.split('.')[0] for m in sys.modules}; "
        "print(json.dumps(sorted(roots & {'dns', 'acme', 'josepy'})))"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(run.stdout) == []


class _Refusing:
    """Adds, and cannot remove (the server went away)."""

    def __init__(self) -> None:
        self.zone: set[str] = set()
        self.refuse = True

    def check(self) -> None:
        pass

    def present(self, name: str, value: str, domain: str) -> None:
        self.zone.add(value)

    def cleanup(self, name: str, value: str, domain: str) -> None:
        if self.refuse:
            raise DnsProviderError("no answer from the DNS server")
        self.zone.discard(value)


def test_a_value_that_could_not_be_removed_is_journalled_and_the_next_run_removes_it(
    tmp_path: Path,
) -> None:
    settings = _settings("rfc2136")
    journal = Journal(tmp_path / "leftovers", "dns-01")
    provider = _Refusing()
    solver = DelegationSolver(settings, provider, journal)
    challenge = Challenge("a.example", "dns-01", "tok", "ka", "value-1")
    solver.present([challenge])
    solver.cleanup([challenge])  # never raises
    assert provider.zone == {"value-1"} and not hasattr(solver, "cleanup_errors")
    (record,) = (tmp_path / "leftovers").iterdir()
    assert json.loads(record.read_text())["value"] == "value-1"
    again = DelegationSolver(settings, provider, journal)
    assert again.remove_leftovers() == []  # still refused: the record stays
    assert len(list((tmp_path / "leftovers").iterdir())) == 1
    provider.refuse = False
    again.check()  # the next run's check sweeps it
    assert provider.zone == set() and list((tmp_path / "leftovers").iterdir()) == []
