"""The challenge registry and each method's functions, and the flows that call them."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from certcli import challenges
from certcli.challenges import METHODS, check_identifiers, chosen, dns01, http01, method, names
from certcli.challenges.dns01 import DnsSettings, san_json
from certcli.challenges.http01 import WebrootSettings, WebrootSolver
from certcli.dnscheck import Diagnosis, DnsStatus
from certcli.errors import DnsNotReadyError, UsageError, ValidationFailedError
from certcli.flows import attempt as flows_attempt
from certcli.flows import dns as flows_dns
from certcli.flows import plan as flows_plan
from certcli.storage.files import Store

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _getter(table: dict[str, Any]) -> Any:
    return lambda key, default: table.get(key, default)


def test_the_registry_holds_one_method_per_challenge_type() -> None:
    assert names() == ["http-01", "dns-01", "dns-account-01", "dns-persist-01"]  # default first
    modules = sorted(p.stem for p in Path(challenges.__file__).parent.glob("[!_]*.py"))
    assert modules == ["dns01", "dns_account01", "dns_persist01", "http01"]  # all registered
    assert all(METHODS[n].name == n for n in names())
    assert method("dns-01") is dns01.METHOD and method("http-01") is http01.METHOD
    for unknown in (None, ""):
        with pytest.raises(UsageError, match="no way to answer the CA's challenge"):
            method(unknown)
    with pytest.raises(UsageError, match="unknown challenge method 'tls-alpn-01'") as raised:
        method("tls-alpn-01")
    assert raised.value.hint == "use one of: " + ", ".join(names())


def test_what_each_method_can_validate() -> None:
    assert (http01.METHOD.wildcards, http01.METHOD.ip_addresses) == (False, True)
    assert (dns01.METHOD.wildcards, dns01.METHOD.ip_addresses) == (True, False)
    assert http01.METHOD.secret_keys == ()
    assert dns01.METHOD.secret_keys == ("dns.rfc2136.tsig_secret",)
    assert (http01.METHOD.wait_phase, dns01.METHOD.wait_phase) == (None, "Waiting for DNS")


def test_the_method_asked_for_else_the_setting_else_http01_with_a_webroot() -> None:
    assert chosen("dns-01", _getter({"webroot": "/w"})) == "dns-01"
    assert chosen(None, _getter({"challenge": "dns-01", "webroot": "/w"})) == "dns-01"
    assert chosen(None, _getter({"webroot": "/w"})) == "http-01"
    assert chosen(None, _getter({})) is None


WILDCARD = (
    "*.x.com needs DNS-01, and this order answers HTTP-01 (--webroot)",
    "use --dns or --wildcard (DNS-01 through the CNAME delegation) instead",
)
ADDRESS = (
    "2001:db8::1 is an IP address: it needs HTTP-01, and this order answers DNS-01 (--dns)",
    "use --webroot DIR for IP addresses, in a lineage of their own",
)


@pytest.mark.parametrize(
    ("domains", "challenge", "refused"),
    [
        (["x.com", "*.x.com"], "dns-01", None),
        (["x.com", "192.0.2.1", "2001:db8::1"], "http-01", None),
        (["x.com", "*.x.com"], "http-01", WILDCARD),
        (["x.com", "*.x.com"], None, WILDCARD),  # no method: as the default would
        (["x.com", "192.0.2.1"], None, None),
        (["x.com", "2001:db8::1"], "dns-01", ADDRESS),
    ],
)
def test_names_a_method_cannot_validate_are_refused(
    domains: list[str], challenge: str | None, refused: tuple[str, str] | None
) -> None:
    try:
        check_identifiers(domains, challenge)
    except UsageError as exc:
        assert (exc.message, exc.hint) == refused
    else:
        assert refused is None


def test_a_refusal_names_the_lineage() -> None:
    with pytest.raises(UsageError) as refused:
        check_identifiers(["x.com", "*.x.com"], "http-01", "x.com")
    assert refused.value.hint == (
        "use --dns or --wildcard (DNS-01 through the CNAME delegation) instead; "
        "`certcli issue ... --name x.com --dns --expand` moves it"
    )


def test_a_wildcard_needs_dns01_and_an_address_http01() -> None:
    with pytest.raises(UsageError, match=r"^\*\.x\.com needs DNS-01, and 'x\.com' answers"):
        check_identifiers(["x.com", "*.x.com"], "http-01", "x.com")
    with pytest.raises(UsageError, match="is an IP address: it needs HTTP-01"):
        check_identifiers(["192.0.2.1"], "dns-01")


# -- http-01 -------------------------------------------------------------------------------


def test_the_webroot_method_reads_its_setting_and_checks_the_webroot(tmp_path: Path) -> None:
    webroot = http01.METHOD.settings(_getter({"webroot": str(tmp_path)}), None)
    assert webroot == WebrootSettings(str(tmp_path))
    assert http01.METHOD.check(["x.com"], webroot) is None  # nothing found to keep
    assert http01.METHOD.pinned(webroot) == {}
    assert http01.METHOD.diagnose(["x.com"], webroot) is None
    with pytest.raises(UsageError, match="no webroot for HTTP-01"):
        http01.METHOD.check(["x.com"], WebrootSettings(None))
    with pytest.raises(UsageError, match="does not exist"):
        http01.METHOD.check(["x.com"], WebrootSettings(str(tmp_path / "none")))
    with pytest.raises(UsageError, match="no webroot for HTTP-01"):
        http01.METHOD.solver(WebrootSettings(""), tmp_path / "leftovers", False, print)
    solver = http01.METHOD.solver(webroot, tmp_path / "leftovers", False, print)
    assert isinstance(solver, WebrootSolver) and solver.challenge_type == "http-01"
    http01.METHOD.sweep(tmp_path / "leftovers")  # nothing left behind: nothing to do


def _hint(challenge: str, settings: Any) -> str | None:
    exc = ValidationFailedError("failed", "as it was")
    plan = flows_plan.Plan(
        ca=None,  # type: ignore[arg-type]
        key_type="ec-p256",
        webroot=None,
        preferred_chain=None,
        challenge=challenge,
        challenge_settings=settings,
    )
    flows_attempt._add_next_step(exc, plan)
    return exc.hint


def test_a_failed_validation_says_what_its_method_suggests() -> None:
    assert _hint("http-01", WebrootSettings("/srv/www")) == (
        "check that the web server serves /srv/www as http://DOMAIN/ "
        "(the CA fetches /.well-known/acme-challenge/ on port 80)"
    )
    assert _hint("http-01", WebrootSettings(None)) == "as it was"  # nothing to suggest
    assert _hint("dns-01", _dns()) == (
        "`certcli dns check DOMAIN` shows what a resolver finds, and what to fix"
    )
    assert http01.METHOD.describe("/srv/www") == "webroot /srv/www"
    assert dns01.METHOD.describe(None) == "DNS-01 by delegation"


# -- dns-01 --------------------------------------------------------------------------------


def _dns(**kw: Any) -> DnsSettings:
    return DnsSettings("rfc2136", "t.acme.net", [], 1, 1, [], None, **kw)


CONFIG = {
    "dns": {
        "zone": "acme.example",
        "resolvers": ["127.0.0.1:8053", "192.0.2.1"],
        "propagation_timeout": 30,
        "rfc2136": {"server": "127.0.0.1:8053", "tsig_name": "k", "tsig_secret": "c2VjcmV0"},
        "hook": {"auth": "/bin/true", "cleanup": "/bin/true", "timeout": 9},
    }
}


def test_the_delegation_settings(tmp_path: Path) -> None:
    plan = flows_plan.make_plan(
        flows_plan.AcmeOptions(challenge="dns-01"), CONFIG, None, Store(tmp_path)
    )
    ours = plan.challenge_settings
    assert isinstance(ours, DnsSettings) and plan.method is dns01.METHOD
    assert (ours.provider, ours.propagation_timeout, ours.query_timeout) == ("rfc2136", 30, 5)
    assert ours.resolvers == [("127.0.0.1", 8053), ("192.0.2.1", 53)]
    assert (ours.authoritative, ours.zone) == ([], "acme.example")
    assert ours.target.startswith("certcli-") and ours.target.endswith(".acme.example")
    assert dns01.METHOD.pinned(ours) == {"dns": {"target": ours.target}}
    assert ours.provider_options("rfc2136") == {
        "server": "127.0.0.1:8053",
        "tsig_name": "k",
        "tsig_secret": "c2VjcmV0",
        "tsig_algorithm": None,
        "zone": None,
    }
    assert ours.provider_options("hook") == {
        "auth": "/bin/true",
        "cleanup": "/bin/true",
        "timeout": 9,
    }
    assert ours.provider_options("manual") == {}
    assert "c2VjcmV0" not in repr(ours)
    with pytest.raises(UsageError, match="DNS-01 needs a delegation target"):
        dns01.settings(_getter({}), Store(tmp_path))


def test_a_provider_reads_only_its_own_settings() -> None:
    assert _dns(options={"hook": {"auth": "a"}}).provider_options("hook") == {"auth": "a"}
    assert _dns(options={"hook": {"auth": "a"}}).provider_options("rfc2136") == {}


def _diagnosis(san: str, status: DnsStatus, found: str | None = None) -> Diagnosis:
    return Diagnosis(san, f"_acme-challenge.{san}", status, "t.delegation.example", found)


SEVERAL = [
    _diagnosis("a.example.com", DnsStatus.MISSING),
    _diagnosis("b.example.com", DnsStatus.WRONG, "elsewhere.example"),
    _diagnosis("c.example.com", DnsStatus.DUPLICATE, 'TXT "x"'),
    _diagnosis("d.example.com", DnsStatus.ERROR, "SERVFAIL"),
]


def test_the_next_step_of_two_names_to_delegate() -> None:
    assert dns01.next_step(SEVERAL[:2]) == (
        "create the 2 CNAME records `certcli dns check` lists, then `certcli renew` issues it"
    )


def test_the_cname_check_refuses_unless_every_san_is_valid(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from certcli import dnscheck

    answers = [_diagnosis("v.example.com", DnsStatus.VALID), *SEVERAL[:1]]
    monkeypatch.setattr(dnscheck, "diagnose", lambda *a, **k: answers)
    with pytest.raises(DnsNotReadyError) as ours:
        dns01.METHOD.check(["v.example.com", "a.example.com"], _dns())
    assert ours.value.message == "DNS is not ready for a.example.com (missing)"
    assert ours.value.hint == dns01.next_step(SEVERAL[:1])
    assert ours.value.diagnoses == tuple(answers)
    answers[1:] = []
    assert dns01.METHOD.check(["v.example.com"], _dns()) == answers
    assert dns01.METHOD.diagnose(["v.example.com"], _dns()) == answers


def test_the_dns_cache_at_the_time_given() -> None:
    assert dns01.METHOD.cache(SEVERAL[:2], _dns(), NOW) == {
        "checked_at": "2026-01-02T03:04:05Z",
        "target": "t.acme.net",
        "sans": {
            "a.example.com": {"status": "missing", "found": None},
            "b.example.com": {"status": "wrong", "found": "elsewhere.example"},
        },
    }


def _plan(challenge: str, settings: Any) -> flows_plan.Plan:
    return flows_plan.Plan(None, "ec-p256", None, None, challenge, settings)  # type: ignore[arg-type]


def test_the_flow_keeps_what_the_check_found_whether_or_not_it_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from certcli import dnscheck

    answers = [_diagnosis("v.example.com", DnsStatus.VALID), *SEVERAL[:1]]
    monkeypatch.setattr(dnscheck, "diagnose", lambda *a, **k: answers)
    found, problem = flows_dns.checked(["v.example.com", "a.example.com"], _plan("dns-01", _dns()))
    assert isinstance(problem, DnsNotReadyError)
    assert found is not None
    assert found["sans"]["a.example.com"] == {"status": "missing", "found": None}
    cached = flows_dns.fresh_cache(["v.example.com", "a.example.com"], _plan("dns-01", _dns()))
    assert cached is not None and cached["sans"] == found["sans"]
    answers[1:] = []
    found, problem = flows_dns.checked(["v.example.com"], _plan("dns-01", _dns()))
    assert problem is None and found is not None
    assert list(found["sans"]) == ["v.example.com"]


def test_the_flow_keeps_nothing_of_a_webroot(tmp_path: Path) -> None:
    assert flows_dns.checked(["x.com"], _plan("http-01", WebrootSettings(str(tmp_path)))) == (
        None,
        None,
    )
    assert flows_dns.fresh_cache(["x.com"], _plan("http-01", WebrootSettings(None))) is None


def test_one_builder_of_a_sans_json() -> None:
    from certcli.models import SslStatus
    from certcli.report import SanReport

    diagnosis = Diagnosis("*.x.com", "_acme-challenge.x.com", DnsStatus.WRONG, "t.net", "y.net")
    report = SanReport("*.x.com", SslStatus.COVERED, "wrong", "t.net", "y.net")
    assert diagnosis.to_json("covered") == report.to_json()
    assert san_json("192.0.2.1", None, "covered", None, None)["challenge_name"] is None


# -- no challenge-type string compared outside the registry --------------------------------

CERTCLI = Path(challenges.__file__).parent.parent
TYPES = {"http-01", "dns-01"}


def _is_type(node: ast.AST) -> bool:
    if isinstance(node, ast.Constant):
        return node.value in TYPES
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_is_type(e) for e in node.elts)
    return False


def challenge_type_comparisons() -> list[str]:
    """`x == "dns-01"`, `x in ("http-01", …)` and the like, outside certcli/challenges/."""
    found = []
    for path in sorted(CERTCLI.rglob("*.py")):
        relative = path.relative_to(CERTCLI.parent)
        if relative.parts[1] == "challenges":
            continue
        lines = sorted(
            node.lineno
            for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.Compare)
            and any(_is_type(side) for side in (node.left, *node.comparators))
        )
        found += [f"{relative}:{line}" for line in lines]
    return found


def test_no_challenge_type_is_compared_outside_the_registry() -> None:
    assert challenge_type_comparisons() == []
