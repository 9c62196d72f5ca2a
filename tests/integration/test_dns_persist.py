"""dns-persist-01 through the real executable: `_validation-persist.<name>` TXT records in the
lab's BIND (site zone certcli.test), read by `certcli dns check --challenge dns-persist-01`
and by the Persist Check before an order; `--publish` writes at the delegation target by
RFC 2136. Pebble offers no dns-persist-01, and announces no issuer names: the tests name the
issuer with `[dns_persist] issuer = "a2c.test"`."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from certcli.models import Account
from certcli.persist import hashed_account_uri
from certcli.storage.files import Store
from certcli.storage.protocol import Storage
from certcli.x509 import jwk_thumbprint
from tests.conftest import PASSPHRASE, Certcli, Run, dns_configured, ok, on_pg
from tests.lab import DELEGATION_ZONE, SITE_ZONE, Lab

pytestmark = pytest.mark.integration

PERSIST = ("dns", "check", "--challenge", "dns-persist-01")


def _store(certcli: Certcli) -> Storage:
    """The store this certcli uses, opened in this process (for what only a test does)."""
    if not on_pg(certcli):
        return Store(certcli.config_dir)
    from certcli.storage.pgstore import PostgresStore
    from certcli.storage.postgres import StoreUrl

    url = StoreUrl.parse(certcli.env["CERTCLI_STORE_URL"], "the test")
    return PostgresStore(url, certcli.config_dir, PASSPHRASE.encode(), "test-host")


def _account(certcli: Certcli, lab: Lab, meta: dict[str, Any] | None = None) -> Account:
    """An account of the store at the lab's CA, as `certcli account register` leaves it (and
    the CA's directory kept beside it, with `meta`)."""
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    uri = f"https://127.0.0.1:{lab.acme_port}/my-account/{secrets.token_hex(4)}"
    account = Account(lab.directory_url, uri, (), None, "2026-01-01T00:00:00Z", key)
    store = _store(certcli)
    store.write_account(account)
    if meta is not None:
        store.write_directory(lab.directory_url, {"newNonce": lab.directory_url, "meta": meta})
    return account


@pytest.fixture
def persist(certcli: Certcli, lab: Lab, target: str) -> Certcli:
    dns_configured(certcli, lab, target, '[dns_persist]\nissuer = "a2c.test"\n')
    return certcli


def _name() -> str:
    return f"p{secrets.token_hex(3)}.{SITE_ZONE}"


def _publish(lab: Lab, name: str, *values: str, rtype: str = "TXT") -> None:
    quoted = [f'"{v}"' for v in values] if rtype == "TXT" else list(values)
    lab.update(SITE_ZONE, ("replace", f"_validation-persist.{name}", rtype, quoted))


def _sans(run: Run) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in run.json()["sans"]}


def _uri(persist: Certcli) -> str:
    return ok(persist("account", "show", "--json")).json()["uri"]


def test_each_status_and_reason(persist: Certcli, lab: Lab) -> None:
    me = _account(persist, lab).uri
    n: Callable[[], str] = _name
    valid, several, missing, other_ca, other_account, wildcard, expired, malformed = (
        n() for _ in range(8)
    )
    _publish(lab, valid, f"a2c.test; accounturi={me}")
    # records for other CAs beside ours: ours is enough
    _publish(lab, several, f"other.ca; accounturi={me}", "junk", f"A2C.TEST;accounturi={me}")
    _publish(lab, other_ca, f"other.ca; accounturi={me}")
    _publish(lab, other_account, "a2c.test; accounturi=https://127.0.0.1/acct/other")
    _publish(lab, wildcard, f"a2c.test; accounturi={me}")
    _publish(lab, expired, f"a2c.test; accounturi={me}; persistUntil=1700000000")
    _publish(lab, malformed, f"a2c.test; accounturi={me}; policy=wildcard; Policy=wildcard")
    names = [valid, several, missing, other_ca, other_account, f"*.{wildcard}", expired, malformed]
    run = persist(*PERSIST, *names, "--json")
    assert run.code == 17, run.stderr
    sans = _sans(run)
    assert {name: (s["dns_status"], s["reason"]) for name, s in sans.items()} == {
        valid: ("valid", None),
        several: ("valid", None),
        missing: ("missing", f"no TXT record at _validation-persist.{missing}"),
        other_ca: ("wrong", "issued to another CA (other.ca; this CA is a2c.test)"),
        other_account: (
            "wrong",
            "accounturi names another account (https://127.0.0.1/acct/other)",
        ),
        f"*.{wildcard}": ("wrong", "no policy=wildcard, which a wildcard SAN needs"),
        expired: (
            "wrong",
            "expired: persistUntil=1700000000 (2023-11-14T22:13:20Z) is past",
        ),
        malformed: ("wrong", "malformed: the parameter policy is given twice"),
    }
    assert sans[valid]["found"] == f'TXT "a2c.test; accounturi={me}"'
    assert sans[valid]["challenge_name"] == f"_validation-persist.{valid}"
    assert sans[valid]["expected_target"] is None
    assert sans[missing]["found"] is None
    assert sans[missing]["record"] == (
        f'_validation-persist.{missing}. 300 IN TXT "a2c.test; accounturi={me}"'
    )
    assert sans[f"*.{wildcard}"]["record"] == (
        f'_validation-persist.{wildcard}. 300 IN TXT "a2c.test; accounturi={me}; policy=wildcard"'
    )
    # as text: the table, then each record to publish and why
    text = persist(*PERSIST, valid, missing, f"*.{wildcard}")
    assert text.code == 17 and text.stderr == ""
    assert f"{valid}\tValid\t_validation-persist.{valid}\t" in text.stdout
    assert "Publish once, at each name's DNS provider (zone-file syntax):" in text.stdout
    assert f'  _validation-persist.{missing}. 300 IN TXT "a2c.test; accounturi={me}"' in (
        text.stdout.splitlines()
    )
    assert f"  ; *.{wildcard}: no policy=wildcard, which a wildcard SAN needs" in text.stdout
    assert f"_validation-persist.{valid}. 300" not in text.stdout  # nothing to do there
    ok(persist(*PERSIST, valid, several))


def test_a_cname_is_followed_and_its_end_reported(persist: Certcli, lab: Lab, target: str) -> None:
    me = _account(persist, lab).uri
    chained, dangling = _name(), _name()
    _publish(lab, chained, f"{target}.", rtype="CNAME")
    lab.update(DELEGATION_ZONE, ("replace", target, "TXT", [f'"a2c.test; accounturi={me}"']))
    _publish(lab, dangling, f"nowhere.{DELEGATION_ZONE}.", rtype="CNAME")
    sans = _sans(persist(*PERSIST, chained, dangling, "--json"))
    assert sans[chained]["dns_status"] == "valid"
    assert sans[chained]["found"] == f'{target}: TXT "a2c.test; accounturi={me}"'
    assert (sans[dangling]["dns_status"], sans[dangling]["found"]) == (
        "missing",
        f"nowhere.{DELEGATION_ZONE}",
    )
    assert sans[dangling]["reason"] == f"no TXT record at nowhere.{DELEGATION_ZONE}"
    # a name delegated by CNAME holds no TXT itself: the record goes where the chain ends
    assert sans[dangling]["record"] == (
        f'nowhere.{DELEGATION_ZONE}. 300 IN TXT "a2c.test; accounturi={me}"'
    )


def test_a_failed_lookup_is_an_error(persist: Certcli, lab: Lab) -> None:
    _account(persist, lab)
    name = _name()
    run = persist(*PERSIST, name, "--json", env={"CERTCLI_DNS_RESOLVERS": "127.0.0.1:9"})
    assert run.code == 17
    (san,) = run.json()["sans"]
    assert (san["dns_status"], san["found"]) == ("error", "no answer from 127.0.0.1:9")
    assert san["reason"] == "the lookup failed"


def test_the_record_shaped_by_the_options(persist: Certcli, lab: Lab) -> None:
    me = _account(persist, lab).uri
    name = _name()
    run = persist(*PERSIST, name, "--persist-until", "2027-01-01", "--wildcard-policy", "--json")
    (san,) = run.json()["sans"]
    assert san["record"] == (
        f'_validation-persist.{name}. 300 IN TXT "a2c.test; accounturi={me}; '
        'policy=wildcard; persistUntil=1798761600"'
    )
    rfc3339 = persist(*PERSIST, name, "--persist-until", "2027-01-01T01:00:00+01:00", "--json")
    assert rfc3339.json()["sans"][0]["record"].endswith('; persistUntil=1798761600"')
    # the shape of what to publish changes nothing of what is judged
    _publish(lab, name, f"a2c.test; accounturi={me}")
    ok(persist(*PERSIST, name, "--persist-until", "2027-01-01", "--wildcard-policy"))


def test_the_hashed_account_uri_a_directory_announces(
    certcli: Certcli, lab: Lab, target: str
) -> None:
    dns_configured(certcli, lab, target, "")  # the issuer names come from the directory
    prefix = f"https://127.0.0.1:{lab.acme_port}/account-hash/"
    meta = {"accountHashPrefix": prefix, "issuerDomainNames": ["persist.certcli.test"]}
    account = _account(certcli, lab, meta)
    name = _name()
    _publish(lab, name, f"persist.certcli.test; accounturi={account.uri}")
    (san,) = certcli(*PERSIST, name, "--json").json()["sans"]
    assert san["reason"] == "accounturi is the account URL itself: this CA asks for its hashed form"
    hashed = hashed_account_uri(prefix, jwk_thumbprint(account.key_pem), account.uri, name)
    assert san["record"] == (
        f'_validation-persist.{name}. 300 IN TXT "persist.certcli.test; accounturi={hashed}"'
    )
    _publish(lab, name, f"persist.certcli.test; accounturi={hashed}")
    ok(certcli(*PERSIST, name))


def test_publish_writes_where_delegated_and_names_the_cname_elsewhere(
    persist: Certcli, lab: Lab, target: str
) -> None:
    me = _account(persist, lab).uri
    delegated, alone = _name(), _name()
    _publish(lab, delegated, f"{target}.", rtype="CNAME")
    run = persist(*PERSIST, "--publish", delegated, f"*.{delegated}", alone, "--json")
    assert run.code == 17, run.stderr  # `alone` is not delegated: nothing written for it
    value = f"a2c.test; accounturi={me}; policy=wildcard"  # the wildcard SAN needs it
    document = run.json()
    assert document["published"] == [{"name": target, "value": value}]
    assert document["delegate"] == [f"_validation-persist.{alone}. 300 IN CNAME {target}."]
    assert lab.txt(target) == [value], "written once, through RFC 2136"
    sans = _sans(run)
    assert sans[delegated]["dns_status"] == sans[f"*.{delegated}"]["dns_status"] == "valid"
    assert sans[alone]["dns_status"] == "missing"
    # once published, nothing more to write
    again = ok(persist(*PERSIST, "--publish", delegated, "--json")).json()
    assert again["published"] == [] and lab.txt(target) == [value]
    text = persist(*PERSIST, "--publish", alone)
    assert "Not delegated, so not published: create (zone-file syntax)" in text.stdout
    assert f"  _validation-persist.{alone}. 300 IN CNAME {target}." in text.stdout.splitlines()


def test_what_cannot_be_checked_is_one_clear_error(certcli: Certcli, lab: Lab, target: str) -> None:
    dns_configured(certcli, lab, target, "")
    name = _name()

    def error(*args: str) -> str:
        run = certcli(*args)
        assert run.code == 2 and run.stdout == "", run
        (line,) = run.stderr.splitlines()
        return line

    assert error(*PERSIST, name) == (
        f"certcli: error: a dns-persist-01 record names your account at {lab.directory_url}, "
        "and there is none yet; run `certcli account register` first"
    )
    _account(certcli, lab)
    assert "announces no issuer domain name" in error(*PERSIST, name)
    assert error("dns", "check", "--challenge", "tls-alpn-01", name) == (
        "certcli: error: --challenge tls-alpn-01 is not a challenge method; "
        "use one of: dns-01, dns-account-01, dns-persist-01"
    )
    assert "has no DNS to check" in error("dns", "check", "--challenge", "http-01", name)
    assert "--publish shapes a record" in error("dns", "check", "--publish", name)
    env = {"CERTCLI_DNS_PERSIST_ISSUER": "a2c.test"}
    past = certcli(*PERSIST, name, "--persist-until", "2020-01-01", env=env)
    assert past.code == 2 and "--persist-until 2020-01-01 is in the past" in past.stderr
    bad = certcli(*PERSIST, name, "--persist-until", "soon", env=env)
    assert bad.code == 2 and "--persist-until must be a date (YYYY-MM-DD)" in bad.stderr
    address = certcli(*PERSIST, "192.0.2.1", env=env)
    assert address.code == 2 and "192.0.2.1 is an IP address" in address.stderr


def test_a_real_account_and_the_persist_check_before_ordering(persist: Certcli, lab: Lab) -> None:
    # `certcli issue` over HTTP-01 registers the account whose URL the record names
    ok(persist("issue", _name(), "--webroot", lab.webroot, "--agree-tos"))
    me = _uri(persist)
    name = _name()
    orders = sum(1 for r in lab.acme_requests() if r == "POST /order-plz")
    env = {"CERTCLI_CHALLENGE": "dns-persist-01"}
    run = persist("issue", name, "--agree-tos", env=env)
    assert run.code == 17, run.stderr
    assert f"{name}: Persist Check" in run.stderr
    assert run.stderr.strip().splitlines()[-1] == (
        f"certcli: error: no valid dns-persist-01 record for {name} (missing: no TXT record at "
        f"_validation-persist.{name}); publish the record _validation-persist.{name}. 300 IN "
        f'TXT "a2c.test; accounturi={me}", then `certcli renew` issues it'
    )
    assert sum(1 for r in lab.acme_requests() if r == "POST /order-plz") == orders
    (entry,) = [e for e in ok(persist("status", "--json")).json()["lineages"] if e["name"] == name]
    assert entry["status"] == "dns_missing"
    assert entry["sans"][0]["challenge_name"] == f"_validation-persist.{name}"
    _publish(lab, name, f"a2c.test; accounturi={me}")
    checked = ok(persist("status", name, "--check-dns", "--json")).json()["lineages"][0]
    assert checked["sans"][0]["dns_status"] == "valid"


def test_hostile_dns_a_cname_loop_and_odd_records(persist: Certcli, lab: Lab) -> None:
    """A CNAME loop at `_validation-persist` is an Error (a failed lookup), never a traceback;
    a TXT value with a line break, a terminal escape and a 255+ byte string is Wrong and
    shown in zone-file escapes, each SAN on its own line."""
    me = _account(persist, lab).uri
    loop, odd = _name(), _name()
    _publish(lab, loop, f"_validation-persist.{loop}.", rtype="CNAME")
    long = "x" * 300
    lab.update(
        SITE_ZONE,
        (
            "replace",
            f"_validation-persist.{odd}",
            "TXT",
            [
                f'"a2c.test; accounturi={me}\\010{odd}\\009Valid\\027[2J" '
                f'"{long[:200]}" "{long[200:]}"'
            ],
        ),
    )
    run = persist(*PERSIST, loop, odd, "--json")
    assert run.code == 17, run.stderr
    sans = _sans(run)
    assert sans[loop]["dns_status"] == "error"
    assert sans[odd]["dns_status"] == "wrong"
    assert sans[odd]["found"] == (
        f'TXT "a2c.test; accounturi={me}\\010{odd}\\009Valid\\027[2J{long}"'
    )
    text = persist(*PERSIST, loop, odd)
    assert text.code == 17 and "Traceback" not in text.stderr
    assert "\x1b" not in text.stdout + text.stderr
    lines = text.stdout.splitlines()
    assert sum(1 for line in lines if line.startswith(f"{odd}\t")) == 1
