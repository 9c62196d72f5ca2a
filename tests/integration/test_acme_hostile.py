"""A harder CA: Pebble rejecting half of all nonces, requiring External Account Binding,
and issuing certificates that live 8 seconds (so renewal windows come by in a test).

It is a second lab of its own, started for this module only."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509

from tests.conftest import Certcli, Run, started_lab
from tests.lab import Lab

pytestmark = pytest.mark.integration

KID = "certcli-test-kid"
HMAC = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
VALIDITY = 8  # seconds: due after 4 (half the lifetime, as for any certificate under 10 days)


@pytest.fixture(scope="module")
def hostile_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from started_lab(
        tmp_path_factory,
        "hostile-lab",
        certificate_validity=VALIDITY,
        pebble_env={"PEBBLE_WFE_NONCEREJECT": "50"},
        eab_keys={KID: HMAC},
        port_53=False,  # the session's lab has it
    )


@pytest.fixture
def hostile(certcli: Certcli, hostile_lab: Lab) -> Certcli:
    return certcli.point_at(hostile_lab)


def _issue(certcli: Certcli, lab: Lab, *args: str) -> Run:
    return certcli(
        "issue",
        *args,
        "--webroot",
        lab.webroot,
        "--agree-tos",
        "--eab-kid",
        KID,
        "--eab-hmac-key",
        HMAC,
    )


def test_without_eab_the_account_is_refused_before_any_order(
    hostile: Certcli, hostile_lab: Lab
) -> None:
    run = hostile("issue", "noeab.certcli.test", "--webroot", hostile_lab.webroot, "--agree-tos")
    assert run.code == 2
    assert "requires External Account Binding" in run.stderr and "--eab-kid" in run.stderr
    assert not (hostile.config_dir / "certs" / "noeab.certcli.test").exists()


def test_twenty_issuances_in_a_row_through_half_the_nonces_rejected(
    hostile: Certcli, hostile_lab: Lab
) -> None:
    # Pebble logs no rejection, only its setting; at 50 % some of 200+ requests are rejected
    # with near certainty (certcli retries each up to 30 times).
    assert "Configured to reject 50% of good nonces" in hostile_lab.log("pebble").read_text()
    for i in range(20):
        run = _issue(hostile, hostile_lab, f"n{i}.certcli.test")
        assert run.code == 0, f"issuance {i}: {run.stderr}"
    statuses = hostile("status", "--json").json()["lineages"]
    assert len(statuses) == 20 and {s["status"] for s in statuses} <= {
        "active",
        "expiring",
        "expired",
    }


def test_renew_renews_what_is_due_and_only_that(
    hostile: Certcli, hostile_lab: Lab, tmp_path: Path
) -> None:
    assert _issue(hostile, hostile_lab, "due.certcli.test").code == 0
    live = hostile.config_dir / "certs" / "due.certcli.test" / "live"
    cert = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    # inside the window: half of the lifetime left
    window = cert.not_valid_before_utc + (cert.not_valid_after_utc - cert.not_valid_before_utc) / 2
    time.sleep(max(0.0, (window - datetime.now(UTC)).total_seconds()) + 0.2)
    run = hostile("renew")
    assert run.code == 0, run.stderr
    assert "Renewed due.certcli.test" in run.stdout
    renewed = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    assert renewed.serial_number != cert.serial_number
    assert (hostile.config_dir / "certs" / "due.certcli.test" / "archive" / "0001").is_dir()


def test_renewing_ten_lineages_four_at_a_time_through_half_the_nonces_rejected(
    hostile: Certcli, hostile_lab: Lab
) -> None:
    names = [f"p{i}.certcli.test" for i in range(10)]
    run = hostile(
        "issue",
        *names,
        "--each",
        "--webroot",
        hostile_lab.webroot,
        "--agree-tos",
        "--eab-kid",
        KID,
        "--eab-hmac-key",
        HMAC,
    )
    assert run.code == 0, run.stderr
    run = hostile("renew", *names, "--force", "--parallel", "4", "--json")
    assert run.code == 0, run.stderr
    results = run.json()["results"]
    assert sorted(r["name"] for r in results) == names
    assert {r["action"] for r in results} == {"renewed"}
    for name in names:
        assert (hostile.config_dir / "certs" / name / "archive" / "0002").is_dir()
