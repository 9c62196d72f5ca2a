"""CAA before ordering, through the real executable against the lab's BIND: each verdict
is produced by a record made for it in the site zone (certcli.test), each name explicit
(a name that owns a CAA record is no longer covered by the zone's `*` A record, so names
that must resolve get an A record of their own)."""

from __future__ import annotations

import secrets

import pytest

from tests.conftest import Certcli, dns_configured, ok
from tests.lab import SITE_ZONE, Lab

pytestmark = pytest.mark.integration

#: The CA identity the tests give Pebble, whose directory announces none.
PEBBLE = "pebble.test"


@pytest.fixture
def dns(certcli: Certcli, lab: Lab, target: str) -> Certcli:
    """DNS-01 by delegation, with Pebble's CAA identity given by `[caa] identities`."""
    return dns_configured(certcli, lab, target, f'[caa]\nidentities = ["{PEBBLE}"]\n')


@pytest.fixture
def bare(certcli: Certcli, lab: Lab, target: str) -> Certcli:
    """DNS-01 by delegation, with only what Pebble's directory says (no identities)."""
    return dns_configured(certcli, lab, target, "")


def _name() -> str:
    return f"c{secrets.token_hex(3)}.{SITE_ZONE}"


def _caa(lab: Lab, name: str, *records: str) -> None:
    lab.update(SITE_ZONE, ("replace", name, "CAA", list(records)))


def _orders(lab: Lab) -> int:
    return lab.orders_created()  # a nonce Pebble rejects (5%) makes two POSTs of one order


def _check(certcli: Certcli, *names: str) -> tuple[int, dict[str, dict]]:
    run = certcli("dns", "check", *names, "--json")
    return run.code, {s["name"]: s["caa"] for s in run.json()["sans"]}


def _account(certcli: Certcli, lab: Lab, target: str) -> str:
    """Our account's URL at Pebble, made by a first issuance."""
    first = _name()
    lab.delegate(first, target)
    ok(certcli("issue", first, "--dns", "--agree-tos"))
    return ok(certcli("account", "show", "--json")).json()["uri"]


def test_no_caa_and_caa_naming_this_ca_allow(dns: Certcli, lab: Lab, target: str) -> None:
    free, ours = _name(), _name()
    for name in (free, ours):
        lab.delegate(name, target)
    _caa(lab, ours, f'0 issue "{PEBBLE}"')
    code, caa = _check(dns, free, ours)
    assert code == 0
    assert caa[free]["status"] == "none"
    assert caa[free]["owner"] is None
    assert caa[ours]["status"] == "allowed"
    assert caa[ours]["owner"] == ours
    assert caa[ours]["records"] == [f'0 issue "{PEBBLE}"']


def test_caa_naming_another_ca_forbids_with_the_record_to_add(
    dns: Certcli, lab: Lab, target: str
) -> None:
    name = _name()
    lab.delegate(name, target)
    _caa(lab, name, '0 issue "other.test"')
    code, caa = _check(dns, name)
    assert code == 17
    assert caa[name]["status"] == "caa_forbids"
    assert "names another CA than pebble.test" in caa[name]["reason"]
    # no account yet: the record names the CA and the method
    expected = f'{name}. 300 IN CAA 0 issue "{PEBBLE}; validationmethods=dns-01"'
    assert caa[name]["record"] == expected
    plain = dns("dns", "check", name)
    assert plain.code == 17
    assert f"CAA forbids {name}: " in plain.stdout
    assert f"  add: {expected}" in plain.stdout


def test_issuewild_semicolon_forbids_the_wildcard_only(dns: Certcli, lab: Lab, target: str) -> None:
    name = _name()
    lab.delegate(name, target)
    _caa(lab, name, f'0 issue "{PEBBLE}"', '0 issuewild ";"')
    code, caa = _check(dns, name, f"*.{name}")
    assert code == 17
    assert caa[name]["status"] == "allowed"
    assert caa[f"*.{name}"]["status"] == "caa_forbids"
    assert "wildcard" in caa[f"*.{name}"]["reason"]
    assert f'{name}. 300 IN CAA 0 issuewild "{PEBBLE}' in caa[f"*.{name}"]["record"]


def test_accounturi_of_another_account_forbids_and_ours_allows(
    dns: Certcli, lab: Lab, target: str
) -> None:
    uri = _account(dns, lab, target)
    other, ours = _name(), _name()
    for name in (other, ours):
        lab.delegate(name, target)
    _caa(lab, other, f'0 issue "{PEBBLE}; accounturi={uri}0"')
    _caa(lab, ours, f'0 issue "{PEBBLE}; accounturi={uri}"')
    code, caa = _check(dns, other, ours)
    assert code == 17
    assert caa[other]["status"] == "caa_forbids"
    assert f"names another account than {uri}" in caa[other]["reason"]
    assert caa[other]["record"] == (
        f'{other}. 300 IN CAA 0 issue "{PEBBLE}; accounturi={uri}; validationmethods=dns-01"'
    )
    assert caa[ours]["status"] == "allowed"


def test_validationmethods_for_http01_forbids_dns01(dns: Certcli, lab: Lab, target: str) -> None:
    name, both = _name(), _name()
    for each in (name, both):
        lab.delegate(each, target)
    _caa(lab, name, f'0 issue "{PEBBLE}; validationmethods=http-01"')
    _caa(lab, both, f'0 issue "{PEBBLE}; validationmethods=http-01,dns-01"')
    code, caa = _check(dns, name, both)
    assert code == 17
    assert caa[name]["status"] == "caa_forbids"
    assert "allows only http-01, not dns-01" in caa[name]["reason"]
    assert caa[both]["status"] == "allowed"


def test_a_parents_set_applies_to_its_children(dns: Certcli, lab: Lab, target: str) -> None:
    parent = _name()
    child = f"www.{parent}"
    lab.delegate(child, target)
    _caa(lab, parent, '0 issue "other.test"')
    code, caa = _check(dns, child)
    assert code == 17
    assert caa[child]["status"] == "caa_forbids"
    assert caa[child]["owner"] == parent
    assert caa[child]["record"].startswith(f"{parent}. 300 IN CAA 0 issue ")
    # a set at the child itself wins over the parent's
    _caa(lab, child, f'0 issue "{PEBBLE}"')
    code, caa = _check(dns, child)
    assert (code, caa[child]["status"], caa[child]["owner"]) == (0, "allowed", child)


def test_a_cname_at_the_san_leads_to_the_targets_set(dns: Certcli, lab: Lab) -> None:
    name, holder = _name(), _name()
    lab.update(SITE_ZONE, ("replace", name, "CNAME", [f"{holder}."]))
    _caa(lab, holder, '0 issue "other.test"')
    code, caa = _check(dns, name)
    assert code == 17
    assert caa[name]["status"] == "caa_forbids"
    assert caa[name]["owner"] == holder
    assert f"reached from {name} by CNAME" in caa[name]["reason"]


def test_issue_refuses_and_orders_nothing(dns: Certcli, lab: Lab, target: str) -> None:
    name = _name()
    lab.delegate(name, target)
    _caa(lab, name, '0 issue "other.test"')
    before = _orders(lab)
    run = dns("issue", name, "--dns", "--agree-tos")
    assert run.code == 17, run.stderr
    assert _orders(lab) == before
    uri = ok(dns("account", "show", "--json")).json()["uri"]
    record = f'{name}. 300 IN CAA 0 issue "{PEBBLE}; accounturi={uri}; validationmethods=dns-01"'
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith(f"certcli: error: CAA forbids {name}: the CAA records at {name} ")
    assert line.endswith(f"; add the record {record}, then `certcli renew` issues it")
    (entry,) = ok(dns("status", "--json")).json()["lineages"]
    assert entry["status"] == "failed" and entry["error_kind"] == "caa_forbids"
    # fixed as told, the renewal issues it
    _caa(lab, name, record.split(" CAA ", 1)[1])
    ok(dns("renew"))
    (entry,) = ok(dns("status", "--json")).json()["lineages"]
    assert entry["status"] == "active"


def test_issue_json_carries_each_sans_verdict(dns: Certcli, lab: Lab, target: str) -> None:
    name = _name()
    lab.delegate(name, target)
    _caa(lab, name, '0 issuewild ";"', f'0 issue "{PEBBLE}"')
    run = dns("issue", name, "--wildcard", "--agree-tos", "--json")
    assert run.code == 17
    (result,) = run.json()["results"]
    assert result["error_kind"] == "caa_forbids"
    verdicts = {f["name"]: f["status"] for f in result["caa"]}
    assert verdicts == {name: "allowed", f"*.{name}": "caa_forbids"}


def test_http01_is_a_method_caa_can_exclude(dns: Certcli, lab: Lab) -> None:
    name = _name()
    _caa(lab, name, f'0 issue "{PEBBLE}; validationmethods=dns-01"')
    lab.update(SITE_ZONE, ("replace", name, "A", ["127.0.0.1"]))
    before = _orders(lab)
    run = dns("issue", name, "--webroot", lab.webroot, "--agree-tos")
    assert run.code == 17, run.stderr
    assert "allows only dns-01, not http-01" in run.stderr
    assert _orders(lab) == before


def test_without_identities_the_verdict_is_unknown_and_issuance_proceeds(
    bare: Certcli, lab: Lab, target: str
) -> None:
    name, closed = _name(), _name()
    for each in (name, closed):
        lab.delegate(each, target)
    _caa(lab, name, '0 issue "other.test"')
    _caa(lab, closed, '0 issue ";"')
    code, caa = _check(bare, name, closed)
    assert code == 17  # `issue ";"` needs no identity to forbid
    assert caa[name]["status"] == "unknown"
    assert "announces no CAA identity" in caa[name]["reason"]
    assert caa[closed]["status"] == "caa_forbids" and caa[closed]["record"] is None
    # Pebble itself checks no CAA: the order goes ahead and is issued
    before = _orders(lab)
    ok(bare("issue", name, "--dns", "--agree-tos"))
    assert _orders(lab) == before + 1


def test_the_check_turned_off(dns: Certcli, lab: Lab, target: str) -> None:
    name = _name()
    lab.delegate(name, target)
    _caa(lab, name, '0 issue "other.test"')
    off = {"CERTCLI_CAA_CHECK": "false"}
    run = dns("dns", "check", name, "--json", env=off)
    assert run.code == 0
    assert run.json()["sans"][0]["caa"] is None
    ok(dns("issue", name, "--dns", "--agree-tos", env=off))


def test_status_check_dns_shows_each_sans_verdict(dns: Certcli, lab: Lab, target: str) -> None:
    name = _name()
    lab.delegate(name, target)
    ok(dns("issue", name, "--dns", "--agree-tos"))
    (entry,) = ok(dns("status", "--json")).json()["lineages"]
    assert entry["sans"][0]["caa"] is None  # not checked without --check-dns
    _caa(lab, name, '0 issue "other.test"')
    (entry,) = ok(dns("status", "--check-dns", "--json")).json()["lineages"]
    assert entry["sans"][0]["caa"]["status"] == "caa_forbids"
    detail = ok(dns("status", name, "--check-dns"))
    assert f"CAA forbids {name}: " in detail.stdout
    assert f"  add: {name}. 300 IN CAA 0 issue " in detail.stdout
    table = ok(dns("status", "--check-dns"))
    assert f"CAA forbids {name}: {name}: " in table.stdout


def test_hostile_caa_data_never_reaches_the_terminal_raw(dns: Certcli, lab: Lab) -> None:
    """A CAA value holding a line break, a terminal escape and a byte that is not UTF-8 is
    shown in zone-file escapes (the byte as U+FFFD's): one line per SAN, nothing a terminal
    obeys."""
    name = _name()
    lab.update(SITE_ZONE, ("replace", name, "A", ["127.0.0.1"]))
    _caa(lab, name, '0 issue "other.test\\010CAA allowed: all is well\\027[2J\\255"')
    run = dns("dns", "check", name)
    assert run.code == 17, run.stderr
    said = [line for line in run.stdout.splitlines() if line.startswith("CAA")]
    assert len(said) == 1 and said[0].startswith(f"CAA forbids {name}: ")
    shown = '0 issue "other.test\\010CAA allowed: all is well\\027[2J\\239\\191\\189"'
    assert f"`{shown}` is malformed" in said[0]
    assert not any(line.startswith("CAA allowed") for line in run.stdout.splitlines())
    assert "\x1b" not in run.stdout + run.stderr
    found = dns("dns", "check", name, "--json").json()["sans"][0]["caa"]
    assert found["records"] == [shown]
