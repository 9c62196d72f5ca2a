"""dns-persist-01 end to end through the real executable against the lab's second CA,
acme2certifier: the account registered first, the record published once by the domain's
owner (here `lab.update`), diagnosed before any order, then an apex + wildcard certificate
issued and renewed with no DNS write at all (BIND's own count of UPDATE messages)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from cryptography import x509

from tests.conftest import Certcli, lineage_settings, lineage_state, live_dir, ok
from tests.lab import SITE_ZONE, Lab
from tests.lab.a2c import A2C, ISSUER_DOMAIN

pytestmark = pytest.mark.integration


PERSIST = ("--challenge", "dns-persist-01")


@pytest.fixture
def persist(certcli: Certcli, lab: Lab, a2c: A2C) -> Certcli:
    """certcli at acme2certifier, asking the lab's BIND, with no DNS credentials at all."""
    certcli.env.update({**a2c.env(), "CERTCLI_ACME_TIMEOUT": "30"})
    certcli.config_dir.mkdir(parents=True, exist_ok=True)
    (certcli.config_dir / "config.toml").write_text(f'[dns]\nresolvers = ["{lab.dns_server}"]\n')
    return certcli


def _orders(a2c: A2C) -> int:
    return sum(1 for r in a2c.acme_requests() if r.startswith("POST /acme/neworders"))


def _cert(certcli: Certcli, name: str) -> x509.Certificate:
    pem = (live_dir(certcli, name) / "cert.pem").read_bytes()
    return x509.load_pem_x509_certificate(pem)


def _sans(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(ext.get_values_for_type(x509.DNSName))


def _publish(lab: Lab, domain: str, value: str) -> None:
    lab.update(
        SITE_ZONE,
        ("replace", f"_validation-persist.{domain}", "TXT", [f'"{value}"']),
        ("replace", domain, "A", ["127.0.0.1"]),
    )


def test_apex_and_wildcard_by_a_persistent_record_with_no_dns_write(
    persist: Certcli, lab: Lab, a2c: A2C
) -> None:
    register = ok(persist("account", "register", "--agree-tos", "--json")).json()
    account = register["uri"]
    assert account.startswith(a2c.directory_url.removesuffix("/directory"))
    domain = f"persist-{secrets.token_hex(3)}.{SITE_ZONE}"

    # before the record: the diagnosis says what to publish, and nothing is ordered
    check = persist("dns", "check", *PERSIST, domain, f"*.{domain}", "--json")
    assert check.code == 17
    (apex, wild) = check.json()["sans"]
    assert apex["dns_status"] == wild["dns_status"] == "missing"
    assert wild["record"] == (
        f'_validation-persist.{domain}. 300 IN TXT "{ISSUER_DOMAIN}; accounturi={account}; '
        'policy=wildcard"'
    )
    before = _orders(a2c)
    refused = persist("issue", domain, "--wildcard", *PERSIST)
    assert refused.code == 17, refused.stderr
    assert _orders(a2c) == before, "nothing is ordered while a SAN is not valid"

    # a record without policy=wildcard is valid for the apex only: still refused
    _publish(lab, domain, f"{ISSUER_DOMAIN}; accounturi={account}")
    refused = persist("issue", domain, "--wildcard", *PERSIST)
    assert refused.code == 17
    assert "policy=wildcard" in refused.stderr + refused.stdout
    assert _orders(a2c) == before

    # the record as `dns check` printed it: issued, and DNS never written
    _publish(lab, domain, f"{ISSUER_DOMAIN}; accounturi={account}; policy=wildcard")
    ok(persist("dns", "check", *PERSIST, domain, f"*.{domain}"))
    updates = lab.dns_updates()
    run = ok(persist("issue", domain, "--wildcard", *PERSIST))
    assert "Persist Check" in run.stderr
    cert = _cert(persist, domain)
    assert _sans(cert) == {domain, f"*.{domain}"}
    issuing = x509.load_pem_x509_certificate(a2c.issuing_ca.read_bytes())
    assert cert.issuer == issuing.subject
    assert lab.dns_updates() == updates, "issuance wrote nothing to DNS"

    settings = lineage_settings(persist, domain) or ""
    assert 'challenge = "dns-persist-01"' in settings
    (entry,) = ok(persist("status", "--json")).json()["lineages"]
    assert {s["name"]: s["dns_status"] for s in entry["sans"]} == {
        domain: "valid",
        f"*.{domain}": "valid",
    }

    # the renewal re-checks the record and answers again, still with no DNS write
    first = cert.serial_number
    renewed = ok(persist("renew", "--force", "--json")).json()
    assert [o["action"] for o in renewed["results"]] == ["renewed"], renewed
    assert _cert(persist, domain).serial_number != first
    assert lab.dns_updates() == updates, "renewal wrote nothing to DNS"


def test_a_record_that_disappeared_fails_the_renewal_before_any_order(
    persist: Certcli, lab: Lab, a2c: A2C
) -> None:
    account = ok(persist("account", "register", "--agree-tos", "--json")).json()["uri"]
    domain = f"gone-{secrets.token_hex(3)}.{SITE_ZONE}"
    _publish(lab, domain, f"{ISSUER_DOMAIN}; accounturi={account}")
    ok(persist("issue", domain, *PERSIST))
    lab.update(SITE_ZONE, ("delete", f"_validation-persist.{domain}", "TXT", []))
    before = _orders(a2c)
    run = persist("renew", "--force", "--json")
    assert run.code == 1, run.stderr
    (result,) = run.json()["results"]
    assert result["action"] == "failed"
    assert f"{domain} (missing: no TXT record" in result["error"]
    assert _orders(a2c) == before
    state = lineage_state(persist, domain)
    assert state["dns"]["sans"][domain]["status"] == "missing"


def test_a_record_ending_before_the_next_renewal_is_said_and_notified(
    persist: Certcli, lab: Lab, a2c: A2C, tmp_path: Path
) -> None:
    """a2c's certificates live 30 days, renewed after 20: a record that ends in 5 days
    validates now, and would not then."""
    import time

    events = tmp_path / "events"
    config = persist.config_dir / "config.toml"
    config.write_text(
        config.read_text()
        + f"[notify]\ncommand = 'cat >> {events}; echo >> {events}'\non_success = true\n"
    )
    account = ok(persist("account", "register", "--agree-tos", "--json")).json()["uri"]
    domain = f"ends-{secrets.token_hex(3)}.{SITE_ZONE}"
    until = int(time.time()) + 5 * 86400
    _publish(lab, domain, f"{ISSUER_DOMAIN}; accounturi={account}; persistUntil={until}")
    run = ok(persist("issue", domain, *PERSIST))
    assert f"the record that validates {domain} at " in run.stderr
    assert "ends before the next renewal" in run.stderr
    state = lineage_state(persist, domain)
    assert state["dns"]["sans"][domain]["valid_until"] == until

    renewed = ok(persist("renew", "--force", "--json")).json()
    (result,) = renewed["results"]
    assert result["action"] == "renewed"
    assert "ends before the next renewal" in result["notes"][0]
    sent = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    assert [e["event"] for e in sent] == ["renewed", "record_expiring"]  # both, not one
    assert sent[1]["name"] == domain and "later persistUntil" in sent[1]["text"]

    # published again without an end: renewed, and nothing more to say
    _publish(lab, domain, f"{ISSUER_DOMAIN}; accounturi={account}")
    again = ok(persist("renew", "--force", "--json")).json()
    assert again["results"][0]["notes"] == []
    sent = [json.loads(line) for line in events.read_text().splitlines() if line.strip()]
    assert [e["event"] for e in sent] == ["renewed", "record_expiring", "renewed"]


def test_a_lineage_moves_to_dns_persist_01_with_force_renewal(
    persist: Certcli, lab: Lab, a2c: A2C
) -> None:
    """An HTTP-01 lineage at acme2certifier moves to dns-persist-01 by `issue NAME
    --force-renewal --challenge dns-persist-01`; its renewals then answer the new way."""
    account = ok(persist("account", "register", "--agree-tos", "--json")).json()["uri"]
    domain = f"move-{secrets.token_hex(3)}.{SITE_ZONE}"
    lab.update(SITE_ZONE, ("replace", domain, "A", ["127.0.0.1"]))
    ok(persist("issue", domain, "--webroot", lab.webroot))
    assert 'challenge = "http-01"' in (lineage_settings(persist, domain) or "")
    # not yet published: refused, and the lineage keeps its method and certificate
    refused = persist("issue", domain, "--force-renewal", *PERSIST)
    assert refused.code == 17, refused.stderr
    assert 'challenge = "http-01"' in (lineage_settings(persist, domain) or "")
    _publish(lab, domain, f"{ISSUER_DOMAIN}; accounturi={account}")
    ok(persist("issue", domain, "--force-renewal", *PERSIST))
    assert 'challenge = "dns-persist-01"' in (lineage_settings(persist, domain) or "")
    (entry,) = ok(persist("status", "--json")).json()["lineages"]
    assert entry["sans"][0]["challenge_name"] == f"_validation-persist.{domain}"
    updates = lab.dns_updates()
    renewed = ok(persist("renew", "--force", "--json")).json()
    assert [o["action"] for o in renewed["results"]] == ["renewed"]
    assert lab.dns_updates() == updates
