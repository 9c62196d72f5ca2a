"""Smoke tests of the lab itself: each server answers for real on loopback."""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.resolver
import dns.tsig
import dns.update
import pytest

from tests.lab import DELEGATION_ZONE, SITE_ZONE, Lab, worker_index

pytestmark = pytest.mark.integration


def _resolver(lab: Lab) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = ["127.0.0.1"]
    resolver.port = lab.dns_port
    return resolver


def test_acme_directory_over_verified_tls(lab: Lab) -> None:
    context = ssl.create_default_context(cafile=str(lab.ca_bundle))
    with urllib.request.urlopen(lab.directory_url, context=context, timeout=5) as response:
        directory = json.load(response)
    assert {"newAccount", "newNonce", "newOrder"} <= directory.keys()


def test_pebble_listener_is_not_trusted_without_the_lab_ca(lab: Lab) -> None:
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(lab.directory_url, context=ssl.create_default_context(), timeout=5)


def test_every_site_name_resolves_to_loopback(lab: Lab) -> None:
    answer = _resolver(lab).resolve(f"anything.{SITE_ZONE}", "A")
    assert [r.address for r in answer] == ["127.0.0.1"]


def test_names_outside_the_lab_are_nxdomain_not_forwarded(lab: Lab) -> None:
    with pytest.raises(dns.resolver.NXDOMAIN):
        _resolver(lab).resolve("example.com", "A")


def test_rfc2136_update_with_tsig_adds_and_removes_txt(lab: Lab) -> None:
    name = f"smoke.{DELEGATION_ZONE}"
    add = dns.update.UpdateMessage(DELEGATION_ZONE, keyring=lab.tsig_keyring())
    add.add("smoke", 60, "TXT", '"token-1"')
    assert (
        dns.query.tcp(add, "127.0.0.1", port=lab.dns_port, timeout=5).rcode() == dns.rcode.NOERROR
    )
    assert [r.strings for r in _resolver(lab).resolve(name, "TXT")] == [(b"token-1",)]

    delete = dns.update.UpdateMessage(DELEGATION_ZONE, keyring=lab.tsig_keyring())
    delete.delete("smoke", "TXT", '"token-1"')
    assert (
        dns.query.tcp(delete, "127.0.0.1", port=lab.dns_port, timeout=5).rcode()
        == dns.rcode.NOERROR
    )
    with pytest.raises(dns.resolver.NXDOMAIN):
        _resolver(lab).resolve(name, "TXT")


def test_dns_updates_counts_every_update_message_accepted_or_not(lab: Lab) -> None:
    before = lab.dns_updates()
    lab.update(SITE_ZONE, ("replace", f"count.{SITE_ZONE}", "TXT", ['"a"', '"b"']))
    lab.update(SITE_ZONE, ("delete", f"count.{SITE_ZONE}", "TXT", []))
    unsigned = dns.update.UpdateMessage(SITE_ZONE)
    unsigned.add("count", 60, "TXT", '"c"')
    answer = dns.query.tcp(unsigned, "127.0.0.1", port=lab.dns_port, timeout=5)
    assert answer.rcode() == dns.rcode.REFUSED
    # a query is no update
    _resolver(lab).resolve(f"www.{SITE_ZONE}", "A")
    assert lab.dns_updates() == before + 3


def test_rfc2136_update_with_the_wrong_secret_is_refused(lab: Lab) -> None:
    import dns.tsigkeyring

    keyring = dns.tsigkeyring.from_text({"certcli-acme": ("hmac-sha256", "d3Jvbmc=")})
    update = dns.update.UpdateMessage(DELEGATION_ZONE, keyring=keyring)
    update.add("smoke-bad", 60, "TXT", '"x"')
    # BIND answers NOTAUTH with TSIG error BADSIG, which dnspython raises.
    with pytest.raises(dns.tsig.PeerBadSignature):
        dns.query.tcp(update, "127.0.0.1", port=lab.dns_port, timeout=5)


def test_recursion_follows_a_cname_into_the_delegation_zone(lab: Lab) -> None:
    """Pebble does not chase CNAMEs itself: the lab's BIND must, for DNS-01 by delegation."""
    site = dns.update.UpdateMessage(SITE_ZONE, keyring=lab.tsig_keyring(admin=True))
    site.replace("_acme-challenge.cname-smoke", 60, "CNAME", f"cname-smoke.{DELEGATION_ZONE}.")
    site.replace("cname-smoke", 60, "A", "127.0.0.1")
    assert dns.query.tcp(site, "127.0.0.1", port=lab.dns_port, timeout=5).rcode() == 0
    target = dns.update.UpdateMessage(DELEGATION_ZONE, keyring=lab.tsig_keyring(admin=True))
    target.replace("cname-smoke", 60, "TXT", '"via-cname"')
    assert dns.query.tcp(target, "127.0.0.1", port=lab.dns_port, timeout=5).rcode() == 0
    answer = _resolver(lab).resolve(f"_acme-challenge.cname-smoke.{SITE_ZONE}", "TXT")
    assert [r.strings for r in answer] == [(b"via-cname",)]


def test_webroot_is_served_on_pebbles_http_port(lab: Lab) -> None:
    token_dir = lab.webroot / ".well-known" / "acme-challenge"
    token_dir.mkdir(parents=True, exist_ok=True)
    (token_dir / "smoke").write_text("served")
    url = f"http://127.0.0.1:{lab.http_port}/.well-known/acme-challenge/smoke"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            assert response.read() == b"served"
    finally:
        (token_dir / "smoke").unlink()


def test_management_listener_serves_the_issuing_root(lab: Lab) -> None:
    assert lab.issuing_root().startswith(b"-----BEGIN CERTIFICATE-----")


def test_authoritative_answers_on_port_53(lab: Lab) -> None:
    if worker_index() != 0:
        # port 53 is the first worker's lab's, which may be stopped already: this lab's
        # clients are told its name server instead, which answers with authority
        assert not lab.on_port_53
        assert f'authoritative = ["{lab.dns_server}"]' in lab.dns_config("t.example")
        query = dns.message.make_query(DELEGATION_ZONE, "SOA")
        response = dns.query.udp(query, "127.0.0.1", port=lab.dns_port, timeout=2)
        assert response.flags & dns.flags.AA and response.answer, response
        return
    assert lab.on_port_53, "127.0.0.1:53 was taken: the NS-based propagation path goes untested"
    lab.update(DELEGATION_ZONE, ("replace", f"ns53.{DELEGATION_ZONE}", "TXT", ['"on-53"']))
    query = dns.message.make_query(f"ns53.{DELEGATION_ZONE}", "TXT")
    answer = dns.query.udp(query, "127.0.0.1", port=53, timeout=2).answer
    assert [r.strings for r in answer[0]] == [(b"on-53",)]
    lab.update(DELEGATION_ZONE, ("delete", f"ns53.{DELEGATION_ZONE}", "TXT", []))
    assert lab.txt(f"ns53.{DELEGATION_ZONE}") == []


def test_acme_requests_are_counted_by_endpoint(lab: Lab) -> None:
    before = len(lab.acme_requests())
    lab._get(lab.directory_url)
    assert lab.acme_requests()[before:] == ["GET /dir"]
