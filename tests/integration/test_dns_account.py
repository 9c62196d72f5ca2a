"""dns-account-01 through the real executable: the account-scoped challenge name is
delegated by CNAME to the target like dns-01's, and diagnosed against the lab's BIND
before anything is ordered. Debian's Pebble offers no dns-account-01 challenge, so an
order that passes the check stops at the CA's offer, with what it does offer."""

from __future__ import annotations

import secrets

import pytest

from certcli.challenges.dns_account01 import account_label
from tests.conftest import Certcli, lineage_settings, ok
from tests.integration.test_dns import _name, _orders
from tests.lab import DELEGATION_ZONE, SITE_ZONE, Lab

pytestmark = pytest.mark.integration


def _account(dns: Certcli, lab: Lab) -> str:
    """An account at the lab's Pebble (made by an HTTP-01 issuance): its URL."""
    ok(
        dns(
            "issue", f"h{secrets.token_hex(3)}.{SITE_ZONE}", "--webroot", lab.webroot, "--agree-tos"
        )
    )
    return ok(dns("account", "show", "--json")).json()["uri"]


def _answered(lab: Lab) -> int:
    return sum(1 for r in lab.acme_requests() if r == "POST /chalZ/")


def test_each_status_of_the_account_scoped_name(dns: Certcli, lab: Lab, target: str) -> None:
    label = account_label(_account(dns, lab))
    valid, missing, wrong, duplicate, plain = (_name() for _ in range(5))
    scoped = f"_{label}._acme-challenge"
    lab.update(
        SITE_ZONE,
        ("replace", f"{scoped}.{valid}", "CNAME", [f"{target}."]),
        ("replace", f"{scoped}.{wrong}", "CNAME", [f"elsewhere.{DELEGATION_ZONE}."]),
        ("replace", f"{scoped}.{duplicate}", "TXT", ['"left-over"']),
        # dns-01's delegation is not dns-account-01's: this one is missing
        ("replace", f"_acme-challenge.{plain}", "CNAME", [f"{target}."]),
    )
    for name in (valid, wrong, duplicate, plain):
        lab.update(SITE_ZONE, ("replace", name, "A", ["127.0.0.1"]))
    names = [valid, missing, wrong, duplicate, plain]
    for name in names:
        before = _orders(lab)
        run = dns("issue", name, "--challenge", "dns-account-01", "--agree-tos")
        if name == valid:  # ordered: Pebble then offers no dns-account-01 challenge
            assert "the CA offers no dns-account-01 challenge" in run.stderr
            continue
        assert run.code == 17, run.stderr
        assert _orders(lab) == before, "nothing is ordered while a SAN is not valid"
        if name != duplicate:
            assert f"{scoped}.{name}. 300 IN CNAME {target}." in run.stdout
    found = ok(dns("status", "--json")).json()["lineages"]
    sans = {e["name"]: e["sans"][0] for e in found if e["name"] in names}
    assert {n: s["dns_status"] for n, s in sans.items()} == {
        valid: "valid",
        missing: "missing",
        wrong: "wrong",
        duplicate: "duplicate",
        plain: "missing",
    }
    assert sans[missing]["challenge_name"] == f"{scoped}.{missing}"
    assert sans[wrong]["found"] == f"elsewhere.{DELEGATION_ZONE}"
    assert '"left-over"' in sans[duplicate]["found"]


def test_a_valid_delegation_orders_and_the_ca_says_what_it_offers(
    dns: Certcli, lab: Lab, target: str
) -> None:
    label = account_label(_account(dns, lab))
    domain = _name()
    lab.update(
        SITE_ZONE,
        ("replace", f"_{label}._acme-challenge.{domain}", "CNAME", [f"{target}."]),
        ("replace", domain, "A", ["127.0.0.1"]),
    )
    before, answered = _orders(lab), _answered(lab)
    run = dns("issue", domain, "--wildcard", "--challenge", "dns-account-01", "--agree-tos")
    assert run.code != 0
    assert "the CA offers no dns-account-01 challenge for" in run.stderr
    assert "dns-01" in run.stderr.splitlines()[-1]
    assert _orders(lab) > before  # (a rejected nonce may place it twice)
    assert _answered(lab) == answered
    assert lab.txt(target) == []  # nothing was written: no challenge was answered
    settings = lineage_settings(dns, domain) or ""
    assert 'challenge = "dns-account-01"' in settings  # kept for the renewals


def test_without_an_account_it_says_to_register_one(dns: Certcli, lab: Lab) -> None:
    before = _orders(lab)
    run = dns("issue", _name(), "--challenge", "dns-account-01", "--agree-tos")
    assert run.code == 2, run.stderr
    assert "dns-account-01 names your ACME account" in run.stderr
    assert "certcli account register" in run.stderr
    assert _orders(lab) == before


def test_an_unknown_challenge_is_refused_with_the_names(dns: Certcli) -> None:
    run = dns("issue", _name(), "--challenge", "tls-alpn-01")
    assert run.code == 2
    assert run.stderr.strip() == (
        "certcli: error: unknown challenge method 'tls-alpn-01'; use one of: http-01, dns-01, "
        "dns-account-01, dns-persist-01"
    )


def test_status_checks_lineages_as_another_method_would(
    dns: Certcli, lab: Lab, target: str
) -> None:
    """Before moving a dns-01 lineage to dns-account-01: what the new method would find."""
    label = account_label(_account(dns, lab))
    domain = _name()
    lab.delegate(domain, target)
    ok(dns("issue", domain, "--dns", "--agree-tos"))

    def seen(*args: str) -> dict:
        (entry,) = (
            e
            for e in ok(dns("status", "--check-dns", *args, "--json")).json()["lineages"]
            if e["name"] == domain
        )
        return entry["sans"][0]

    assert seen()["dns_status"] == "valid"
    other = seen("--challenge", "dns-account-01")
    assert (other["dns_status"], other["challenge_name"]) == (
        "missing",
        f"_{label}._acme-challenge.{domain}",
    )
    lab.update(
        SITE_ZONE, ("replace", f"_{label}._acme-challenge.{domain}", "CNAME", [f"{target}."])
    )
    assert seen("--challenge", "dns-account-01")["dns_status"] == "valid"
    bad = dns("status", "--challenge", "dns-account-01")
    assert (bad.code, bad.stderr.strip()) == (
        2,
        "certcli: error: --challenge goes with --check-dns",
    )
