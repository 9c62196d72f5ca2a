"""acme2certifier, the lab's second real CA: dns-persist-01 end to end with the acme library.

certcli does not answer dns-persist-01 here: these tests speak ACME themselves (account,
order, the persist record published as a user would, `{}` to the challenge, finalize) to
show that the lab's a2c validates against the lab's BIND and issues from its OpenSSL CA.
"""

from __future__ import annotations

import json
import secrets
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import josepy as jose
import pytest
from acme import client, crypto_util, messages
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from tests.lab import SITE_ZONE, Lab
from tests.lab.a2c import A2C, ISSUER_DOMAIN
from tests.lab.localca import key_pem

pytestmark = pytest.mark.integration

PERSIST = "dns-persist-01"


class _EmptyAnswer(jose.JSONDeSerializable):
    """The answer to a dns-persist-01 challenge, `{}` (an empty JSONObjectWithFields would
    be falsy, and the acme library would send a POST-as-GET instead)."""

    def to_partial_json(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_json(cls, jobj: Any) -> _EmptyAnswer:
        return cls()


def _register(a2c: A2C) -> tuple[client.ClientV2, str]:
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    net = client.ClientNetwork(key, alg=jose.ES256, verify_ssl=str(a2c.ca_bundle))
    directory = messages.Directory.from_json(net.get(a2c.directory_url).json())
    acme = client.ClientV2(directory, net)
    account = acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
    return acme, account.uri


def _order(acme: client.ClientV2, names: list[str]) -> tuple[messages.OrderResource, bytes]:
    key = key_pem(ec.generate_private_key(ec.SECP256R1()))
    return acme.new_order(crypto_util.make_csr(key, names)), key


def _persist_challenge(acme: client.ClientV2, authz_url: str) -> dict[str, Any]:
    """The dns-persist-01 challenge of an authorization, as the CA sent it."""
    body = acme._post_as_get(authz_url).json()
    found = [c for c in body["challenges"] if c["type"] == PERSIST]
    assert found, f"no {PERSIST} challenge in {body}"
    return found[0]


def _publish(lab: Lab, name: str, value: str) -> None:
    base = name.removeprefix("*.")
    lab.update(SITE_ZONE, ("replace", f"_validation-persist.{base}", "TXT", [f'"{value}"']))


def _answer_all(acme: client.ClientV2, order: messages.OrderResource) -> None:
    for authz in order.authorizations:
        challenge = _persist_challenge(acme, authz.uri)
        acme._post(challenge["url"], _EmptyAnswer())


def _authz_status(acme: client.ClientV2, url: str, timeout: float = 20) -> str:
    """The authorization's status once it has left `pending` (an invalid dns-persist-01
    challenge carries no error to wait for)."""
    deadline = time.monotonic() + timeout
    while True:
        status = acme._post_as_get(url).json()["status"]
        if status != "pending" or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def _sans(pem: str) -> list[str]:
    leaf = x509.load_pem_x509_certificates(pem.encode())[0]
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted(sans.get_values_for_type(x509.DNSName))


def _name(label: str) -> str:
    return f"{label}-{secrets.token_hex(3)}.{SITE_ZONE}"


def test_directory_over_verified_tls_names_its_caa_identity(a2c: A2C) -> None:
    context = ssl.create_default_context(cafile=str(a2c.ca_bundle))
    with urllib.request.urlopen(a2c.directory_url, context=context, timeout=5) as response:
        directory = json.load(response)
    assert {"newAccount", "newNonce", "newOrder"} <= directory.keys()
    assert directory["meta"]["caaIdentities"] == [ISSUER_DOMAIN]
    assert directory["newOrder"].startswith(f"https://127.0.0.1:{a2c.port}/")
    assert "GET /directory" in a2c.acme_requests()


def test_a2c_listener_is_not_trusted_without_the_lab_ca(a2c: A2C) -> None:
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(a2c.directory_url, context=ssl.create_default_context(), timeout=5)


def test_dns_persist_01_validates_and_issues_with_no_dns_write(lab: Lab, a2c: A2C) -> None:
    acme, account = _register(a2c)
    assert account.startswith(f"https://127.0.0.1:{a2c.port}/acme/acct/")
    name = _name("persist")
    _publish(lab, name, f"{ISSUER_DOMAIN}; accounturi={account}")
    writes, requests = lab.dns_updates(), len(a2c.acme_requests())

    order, _ = _order(acme, [name])
    (authz,) = order.authorizations
    challenge = _persist_challenge(acme, authz.uri)
    assert challenge["status"] == "pending"
    assert challenge["issuer-domain-names"] == [ISSUER_DOMAIN]
    assert challenge["accounturi"] == account  # a2c names the account it expects
    assert "token" not in challenge  # it comes with the answer
    _answer_all(acme, order)
    assert _authz_status(acme, authz.uri) == "valid"

    final = acme.poll_and_finalize(order, deadline=_deadline())
    assert _sans(final.fullchain_pem) == [name]
    leaf = x509.load_pem_x509_certificates(final.fullchain_pem.encode())[0]
    issuing = x509.load_pem_x509_certificate(a2c.issuing_ca.read_bytes())
    assert leaf.issuer == issuing.subject
    leaf.verify_directly_issued_by(issuing)
    assert lab.dns_updates() == writes  # issuance wrote nothing to DNS
    assert any(r.startswith("POST /acme/order/") for r in a2c.acme_requests()[requests:])


def test_wildcard_needs_policy_wildcard(lab: Lab, a2c: A2C) -> None:
    acme, account = _register(a2c)
    base = _name("wild")
    _publish(lab, base, f"{ISSUER_DOMAIN}; accounturi={account}; policy=wildcard")
    order, _ = _order(acme, [f"*.{base}"])
    _answer_all(acme, order)
    assert _authz_status(acme, order.authorizations[0].uri) == "valid"
    final = acme.poll_and_finalize(order, deadline=_deadline())
    assert _sans(final.fullchain_pem) == [f"*.{base}"]

    # the same record without policy=wildcard does not cover the wildcard
    bare = _name("wild-bare")
    _publish(lab, bare, f"{ISSUER_DOMAIN}; accounturi={account}")
    order, _ = _order(acme, [f"*.{bare}"])
    _answer_all(acme, order)
    assert _authz_status(acme, order.authorizations[0].uri) == "invalid"


def test_another_accounts_uri_makes_the_authorization_invalid(lab: Lab, a2c: A2C) -> None:
    acme, account = _register(a2c)
    _, other = _register(a2c)
    assert other != account
    name = _name("wrong-account")
    _publish(lab, name, f"{ISSUER_DOMAIN}; accounturi={other}")
    order, _ = _order(acme, [name])
    _answer_all(acme, order)
    assert _authz_status(acme, order.authorizations[0].uri) == "invalid"
    # a2c leaves such an order `pending` (RFC 8555 would make it invalid) and will not
    # finalize it
    with pytest.raises(messages.Error) as refused:
        acme.begin_finalization(order)
    assert refused.value.code == "orderNotReady"
    assert acme._post_as_get(order.uri).json()["status"] != "valid"


def test_another_issuer_domain_makes_the_authorization_invalid(lab: Lab, a2c: A2C) -> None:
    acme, account = _register(a2c)
    name = _name("wrong-issuer")
    _publish(lab, name, f"other-ca.test; accounturi={account}")
    order, _ = _order(acme, [name])
    _answer_all(acme, order)
    assert _authz_status(acme, order.authorizations[0].uri) == "invalid"


def _deadline() -> Any:
    import datetime

    return datetime.datetime.now() + datetime.timedelta(seconds=30)


def test_http_01_is_fetched_from_the_lab_web_server(lab: Lab, a2c: A2C) -> None:
    """a2c fetches port 80; its wrapper sends that to the lab's web server."""
    from acme import challenges

    acme, _ = _register(a2c)
    name = _name("http")
    order, _ = _order(acme, [name])
    (authz,) = order.authorizations
    challb = next(c for c in authz.body.challenges if isinstance(c.chall, challenges.HTTP01))
    response, validation = challb.chall.response_and_validation(acme.net.key)
    path = lab.webroot / challb.chall.path.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(validation)
    fetched = len(lab.log("http").read_text().splitlines())
    try:
        acme.answer_challenge(challb, response)
        assert _authz_status(acme, authz.uri) == "valid"
    finally:
        path.unlink()  # the session's webroot: other tests check that no token is left
    assert challb.chall.path in "".join(lab.log("http").read_text().splitlines()[fetched:])
    final = acme.poll_and_finalize(order, deadline=_deadline())
    assert _sans(final.fullchain_pem) == [name]


def test_a_missing_install_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.lab import LabError
    from tests.lab.a2c import python

    monkeypatch.setenv("CERTCLI_LAB_A2C_VENV", str(tmp_path / "none"))
    with pytest.raises(LabError, match=r"run `make lab-a2c`"):
        python()
