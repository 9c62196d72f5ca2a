"""ACME Renewal Information and profiles, through the shim of tests/lab/ari.py in front of
the lab's Pebble (Debian's Pebble 2.4 offers neither)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import Certcli, lineage_settings, lineage_state, ok
from tests.jsonschemas import problems
from tests.lab import Lab
from tests.lab.ari import AriShim

pytestmark = pytest.mark.integration


@pytest.fixture
def shim(lab: Lab) -> Iterator[AriShim]:
    server = AriShim(lab)
    yield server
    server.close()


@pytest.fixture
def ari(certcli: Certcli, lab: Lab, shim: AriShim) -> Certcli:
    certcli.point_at(lab)
    certcli.env["CERTCLI_SERVER"] = shim.directory_url
    return certcli


def _state(certcli: Certcli, name: str) -> dict:
    return lineage_state(certcli, name)


def test_the_window_is_fetched_at_issuance_and_cached_until_retry_after(
    ari: Certcli, lab: Lab, shim: AriShim
) -> None:
    ok(ari("issue", "ari.certcli.test", "--webroot", lab.webroot, "--agree-tos"))
    assert shim.ari_requests() == 1
    state = _state(ari, "ari.certcli.test")["ari"]
    assert state["url"].startswith(f"{shim.base}/renewal-info/")
    assert 0 <= state["fraction"] <= 1
    before = (len(lab.acme_requests()), len(shim.requests))
    run = ok(ari("renew"))
    assert run.stdout == ""  # the window is 60 days away: not due
    assert (len(lab.acme_requests()), len(shim.requests)) == before  # nothing asked

    shim.retry_after = 1
    ok(ari("renew", "--force"))  # a new certificate: its window is fetched, Retry-After 1 s
    asked = shim.ari_requests()
    time.sleep(1.2)
    ok(ari("renew"))
    assert shim.ari_requests() == asked + 1  # Retry-After passed: asked once more


def test_a_window_that_has_begun_makes_a_fresh_certificate_due(
    ari: Certcli, lab: Lab, shim: AriShim
) -> None:
    now = datetime.now(UTC)
    shim.window = (now - timedelta(minutes=5), now - timedelta(minutes=1))  # already passed
    ok(ari("issue", "early.certcli.test", "--webroot", lab.webroot, "--agree-tos"))
    run = ok(ari("renew", "--json"))
    (result,) = run.json()["results"]
    assert result["action"] == "renewed"
    assert result["reason"] == "inside the CA's renewal window (ARI)"


def test_status_shows_the_ari_moment_and_the_cas_explanation(
    ari: Certcli, lab: Lab, shim: AriShim
) -> None:
    shim.explanation_url = "https://ca.certcli.test/incidents/early-renewal"
    ok(ari("issue", "why.certcli.test", "--webroot", lab.webroot, "--agree-tos"))
    kept = _state(ari, "why.certcli.test")["ari"]
    assert kept["explanation_url"] == shim.explanation_url
    asked = len(shim.requests)

    (entry,) = ok(ari("status", "--json")).json()["lineages"]
    assert problems("status", {"lineages": [entry]}) == []
    assert entry["ari_explanation_url"] == shim.explanation_url
    start, end = (datetime.fromisoformat(kept[k]) for k in ("start", "end"))
    moment = start + (end - start) * kept["fraction"]  # the moment renew waits for
    renew_at = datetime.fromisoformat(entry["renew_at"])
    assert abs(renew_at - moment) < timedelta(seconds=1), (renew_at, moment)
    detail = ok(ari("status", "why.certcli.test")).stdout
    assert f"Renewal info: {shim.explanation_url}" in detail
    assert re.search(rf"^Renew at: +{moment:%Y-%m-%d}T", detail, re.M), detail
    table = ok(ari("status")).stdout.splitlines()
    assert table[0].split("\t")[6] == "renew_at" and table[1].split("\t")[6] == f"{moment:%Y-%m-%d}"
    assert len(shim.requests) == asked  # status asks the CA nothing

    # the window has come: renew renews at once, as status said it would
    now = datetime.now(UTC)
    shim.window = (now - timedelta(minutes=5), now - timedelta(minutes=1))
    shim.explanation_url = None
    ok(ari("renew", "--force"))  # the new certificate's window: already passed, unexplained
    (entry,) = ok(ari("status", "--json")).json()["lineages"]
    assert entry["ari_explanation_url"] is None
    assert datetime.fromisoformat(entry["renew_at"]) <= datetime.now(UTC)
    assert "\tdue\t" in ok(ari("status")).stdout
    (result,) = ok(ari("renew", "--json")).json()["results"]
    assert result["action"] == "renewed"


def test_profiles_are_checked_before_any_order_and_kept(
    ari: Certcli, lab: Lab, shim: AriShim
) -> None:
    orders = sum(1 for r in lab.acme_requests() if r == "POST /order-plz")
    run = ari(
        "issue", "p.certcli.test", "--webroot", lab.webroot, "--agree-tos", "--profile", "tiny"
    )
    assert run.code == 2
    assert "no profile 'tiny'" in run.stderr and "classic, shortlived" in run.stderr
    assert sum(1 for r in lab.acme_requests() if r == "POST /order-plz") == orders
    ok(
        ari(
            "issue",
            "p.certcli.test",
            "--webroot",
            lab.webroot,
            "--agree-tos",
            "--profile",
            "shortlived",
        )
    )
    assert 'profile = "shortlived"' in (lineage_settings(ari, "p.certcli.test") or "")
    ok(ari("renew", "--force"))


def test_without_ari_the_lifetime_rule_holds(certcli: Certcli, lab: Lab) -> None:
    certcli.point_at(lab)  # Pebble itself: no renewalInfo
    ok(certcli("issue", "noari.certcli.test", "--webroot", lab.webroot, "--agree-tos"))
    assert "ari" not in _state(certcli, "noari.certcli.test")
    (entry,) = ok(certcli("status", "--json")).json()["lineages"]
    not_before, not_after = (datetime.fromisoformat(entry[k]) for k in ("not_before", "not_after"))
    # the lifetime rule: due once a third of it is left
    assert datetime.fromisoformat(entry["renew_at"]) == not_after - (not_after - not_before) / 3
    assert entry["ari_explanation_url"] is None
    run = certcli(
        "issue", "noari2.certcli.test", "--webroot", lab.webroot, "--agree-tos", "--profile", "x"
    )
    assert run.code == 2 and "its profiles: none" in run.stderr
