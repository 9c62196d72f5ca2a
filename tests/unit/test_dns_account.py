"""dns-account-01 (draft-ietf-acme-dns-account-label): the account-scoped label, the
challenge names it gives, the engine's choice of the challenge and the value it presents."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

import josepy as jose
import pytest
from acme import messages
from cryptography.hazmat.primitives.asymmetric import ec

from certcli.challenges import METHODS, dns_account01
from certcli.challenges.dns01 import DnsSettings
from certcli.domains import challenge_name
from certcli.engine import order as orders
from certcli.errors import AcmeError, UsageError
from certcli.flows.plan import asked_challenge


@pytest.mark.parametrize(
    ("account", "label"),
    [
        # the draft's example
        ("https://example.com/acme/acct/ExampleAccount", "ujmmovf2vn55tgye"),
        # computed by hand: base32 of SHA-256's first 10 bytes, lowercase
        (
            "https://127.0.0.1:14000/my-account/1",
            base64.b32encode(hashlib.sha256(b"https://127.0.0.1:14000/my-account/1").digest()[:10])
            .decode()
            .lower(),
        ),
    ],
)
def test_the_label_is_base32_of_the_account_urls_hash(account: str, label: str) -> None:
    assert dns_account01.account_label(account) == label
    assert len(label) == 16 and label == label.lower() and "=" not in label


def test_the_challenge_name_is_scoped_to_the_account() -> None:
    assert challenge_name("www.example.com", "ujmmovf2vn55tgye") == (
        "_ujmmovf2vn55tgye._acme-challenge.www.example.com"
    )
    assert challenge_name("*.example.com", "abc") == "_abc._acme-challenge.example.com"
    assert challenge_name("example.com") == "_acme-challenge.example.com"  # dns-01's unchanged
    assert challenge_name("192.0.2.1", "abc") is None


def _settings(label: str | None) -> DnsSettings:
    return DnsSettings("rfc2136", "t.delegation.test", [], 1.0, 1.0, [], None, label=label)


def test_without_an_account_the_method_says_to_register_one() -> None:
    method = METHODS["dns-account-01"]
    assert method.wildcards and not method.ip_addresses
    for call in (method.check, method.diagnose):
        with pytest.raises(UsageError, match="there is none at this CA yet") as raised:
            call(["example.com"], _settings(None))
        assert "certcli account register" in str(raised.value.hint)


def test_its_settings_carry_the_label_of_the_stored_account(tmp_path: Any) -> None:
    from certcli.models import Account
    from certcli.storage.files import Store

    store = Store(tmp_path / "store")
    store.ensure()
    url = "https://127.0.0.1:14000/dir"
    store.write_account(Account(url, "https://127.0.0.1:14000/my-account/7", (), None, "x", b""))
    table = {"server": url, "dns.target": "t.delegation.test"}
    settings = METHODS["dns-account-01"].settings(lambda k, d: table.get(k, d), store)
    assert settings.label == dns_account01.account_label("https://127.0.0.1:14000/my-account/7")
    assert settings.target == "t.delegation.test"
    other = table | {"server": "https://127.0.0.1:14001/dir"}  # no account there
    assert METHODS["dns-account-01"].settings(lambda k, d: other.get(k, d), store).label is None


# -- the engine: choosing the challenge, and what is presented -----------------------------

KEY = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))


def _order(*challenges: dict[str, Any], wildcard: bool = False) -> messages.OrderResource:
    authz = messages.Authorization.from_json(
        {
            "identifier": {"type": "dns", "value": "example.com"},
            "status": "pending",
            "wildcard": wildcard,
            "challenges": list(challenges),
        }
    )
    resource = messages.AuthorizationResource(uri="https://ca/authz/1", body=authz)
    return messages.OrderResource(
        body=messages.Order(), uri="https://ca/order/1", authorizations=[resource]
    )


class _Solver:
    def __init__(self, challenge_type: str) -> None:
        self.challenge_type = challenge_type


TOKEN = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"
OFFERED = (
    {"type": "http-01", "url": "https://ca/chall/1", "status": "pending", "token": TOKEN},
    {"type": "dns-01", "url": "https://ca/chall/2", "status": "pending", "token": TOKEN},
    {"type": "dns-account-01", "url": "https://ca/chall/3", "status": "pending", "token": TOKEN},
    {
        "type": "dns-persist-01",
        "url": "https://ca/chall/4",
        "status": "pending",
        "issuer-domain-names": ["a2c.test"],
    },
)


def test_the_engine_picks_the_challenge_of_the_solvers_type() -> None:
    solver = _Solver("dns-account-01")
    (work,) = orders.answers(_order(*OFFERED, wildcard=True), lambda _i: solver, KEY)
    assert work.body.uri == "https://ca/chall/3"
    thumbprint = jose.b64encode(KEY.thumbprint()).decode()
    key_authorization = f"{TOKEN}.{thumbprint}"
    expected = jose.b64encode(hashlib.sha256(key_authorization.encode()).digest()).decode()
    assert work.challenge.identifier == "*.example.com"
    assert work.challenge.type == "dns-account-01"
    assert work.challenge.key_authorization == key_authorization
    assert work.challenge.validation == expected  # as DNS-01's TXT value
    assert work.response.to_partial_json() == {}  # the draft's answer: an empty object
    # the same value dns-01 would present for the same token, through the acme library
    (dns01,) = orders.answers(_order(*OFFERED), lambda _i: _Solver("dns-01"), KEY)
    assert dns01.challenge.validation == expected


def test_a_challenge_with_no_token_is_answered_with_an_empty_object() -> None:
    (work,) = orders.answers(_order(*OFFERED), lambda _i: _Solver("dns-persist-01"), KEY)
    assert work.body.uri == "https://ca/chall/4"
    assert (work.challenge.token, work.challenge.validation) == ("", "")
    assert work.response.json_dumps() == "{}"
    assert work.response  # acme sends a falsy object as a POST-as-GET: no answer at all


def test_a_ca_that_does_not_offer_the_type_is_named_with_what_it_offers() -> None:
    with pytest.raises(AcmeError) as raised:
        orders.answers(_order(*OFFERED[:2]), lambda _i: _Solver("dns-account-01"), KEY)
    assert str(raised.value) == (
        "the CA offers no dns-account-01 challenge for example.com (it offers dns-01, http-01)"
    )


# -- the command line's choice ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("challenge", "dns", "webroot", "expected"),
    [
        (None, False, False, None),
        (None, True, False, "dns-01"),
        (None, False, True, "http-01"),
        ("dns-account-01", True, False, "dns-account-01"),
        ("dns-account-01", False, False, "dns-account-01"),
        ("http-01", False, True, "http-01"),
    ],
)
def test_the_asked_method(challenge: str | None, dns: bool, webroot: bool, expected: Any) -> None:
    assert asked_challenge(challenge, dns=dns, webroot=webroot) == expected


@pytest.mark.parametrize(
    ("challenge", "dns", "webroot", "error"),
    [
        (None, True, True, "--webroot (HTTP-01) and --dns/--wildcard (DNS-01) exclude each other"),
        ("dns-01", False, True, "--webroot answers http-01: it excludes --challenge dns-01"),
        ("http-01", True, False, "--dns and --wildcard answer over DNS: they exclude --challenge"),
        ("tls-alpn-01", False, False, "unknown challenge method 'tls-alpn-01'"),
    ],
)
def test_contradictions_are_refused(
    challenge: str | None, dns: bool, webroot: bool, error: str
) -> None:
    with pytest.raises(UsageError, match=re.escape(error)):
        asked_challenge(challenge, dns=dns, webroot=webroot)


@pytest.mark.parametrize("token", [123, ["a"], {"t": "x"}, "a b", "tok\n\x1b[2J", "x" * 5000])
def test_a_hostile_token_of_a_type_acme_does_not_know_is_one_clear_error(token: Any) -> None:
    """The acme library checks the token of the types it knows; for dns-account-01 the
    engine has the CA's JSON as it is: a token that is not base64url text is refused before
    anything is written, never turned into a TXT value by str()."""
    offered = {
        "type": "dns-account-01",
        "url": "https://ca/c/3",
        "status": "pending",
        "token": token,
    }
    with pytest.raises(AcmeError) as raised:
        orders.answers(_order(offered), lambda _i: _Solver("dns-account-01"), KEY)
    assert raised.value.message.startswith(
        "the CA's dns-account-01 challenge for example.com has a token that is not base64url text"
    )
    assert raised.value.message.isprintable() and len(raised.value.message) < 200


def test_a_dns_account_challenge_without_a_token_writes_nothing() -> None:
    """No token, no TXT value: the solver refuses rather than writing an empty string."""
    from certcli.challenges import Challenge
    from certcli.challenges.dns01 import DelegationSolver

    class Provider:
        def __init__(self) -> None:
            self.written: list[str] = []

        def present(self, target: str, value: str, domain: str) -> None:
            self.written.append(value)

    offered = {"type": "dns-account-01", "url": "https://ca/c/3", "status": "pending"}
    (work,) = orders.answers(_order(offered), lambda _i: _Solver("dns-account-01"), KEY)
    assert isinstance(work.challenge, Challenge) and work.challenge.validation == ""
    settings = DnsSettings("rfc2136", "t.example", [], 1, 1, [], None)
    provider = Provider()
    solver = DelegationSolver(settings, provider, None, "dns-account-01")  # type: ignore[arg-type]
    with pytest.raises(AcmeError, match="has no token, so there is no TXT value to write"):
        solver.present([work.challenge])
    assert provider.written == []


@pytest.mark.parametrize(
    "names",
    [
        [],
        [f"ca{i}.test" for i in range(11)],
        "a2c.test",
        [3],
        ["A2C.test"],
        ["a2c.test\nx"],
        ["x" * 254],
        {"a2c.test": True},
    ],
)
def test_a_malformed_persist_challenge_is_refused_before_it_is_answered(names: Any) -> None:
    """draft-ietf-acme-dns-persist §3.1: a client MUST refuse a challenge whose
    issuerDomainNames is empty or over 10 names (and each is a lowercase domain name)."""
    from certcli.challenges.dns_persist01 import PersistSolver

    for key in ("issuerDomainNames", "issuer-domain-names"):
        offered = {
            "type": "dns-persist-01",
            "url": "https://ca/c/4",
            "status": "pending",
            key: names,
        }
        (work,) = orders.answers(_order(offered), lambda _i: _Solver("dns-persist-01"), KEY)
        assert json.loads(work.challenge.offered)[key] == names
        with pytest.raises(AcmeError) as raised:
            PersistSolver(("a2c.test",)).present([work.challenge])
        assert raised.value.message == (
            f"the CA's dns-persist-01 challenge for example.com is malformed: its {key} is not "
            "a list of 1 to 10 issuer domain names"
        )


def test_a_persist_challenge_for_other_issuers_says_which_before_it_is_answered() -> None:
    from certcli.challenges.dns_persist01 import PersistSolver

    names = ["authority.example", "ca.example.net"]
    offered = {
        "type": "dns-persist-01",
        "url": "https://c/4",
        "status": "pending",
        "issuerDomainNames": names,
    }
    (work,) = orders.answers(_order(offered), lambda _i: _Solver("dns-persist-01"), KEY)
    with pytest.raises(AcmeError) as raised:
        PersistSolver(("a2c.test",)).present([work.challenge])
    assert raised.value.message == (
        "the CA accepts for example.com only records naming authority.example, ca.example.net, "
        "not a2c.test"
    )
    assert "dns_persist.issuer authority.example" in str(raised.value.hint)
    PersistSolver(("ca.example.net",)).present([work.challenge])  # one in common: answered
    (plain,) = orders.answers(_order(OFFERED[3]), lambda _i: _Solver("dns-persist-01"), KEY)
    PersistSolver(("a2c.test",)).present([plain.challenge])  # acme2certifier's spelling
