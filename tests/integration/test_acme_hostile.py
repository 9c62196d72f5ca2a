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

from tests.conftest import (
    ON_POSTGRES,
    Certcli,
    Run,
    has_account,
    lineage_names,
    live_dir,
    on_postgres,
    started_lab,
    version_numbers,
)
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


def _second_store(request: pytest.FixtureRequest, config_dir: Path, cwd: Path) -> Certcli:
    """Another store of the test's kind (its own database on PostgreSQL)."""
    found = Certcli(config_dir, cwd)
    if ON_POSTGRES:
        server = request.getfixturevalue("postgres")
        on_postgres(found, server.new_database(), server, "test-host")
    return found


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
    assert lineage_names(hostile) == []


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
    live = live_dir(hostile, "due.certcli.test")
    cert = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    # inside the window: half of the lifetime left
    window = cert.not_valid_before_utc + (cert.not_valid_after_utc - cert.not_valid_before_utc) / 2
    time.sleep(max(0.0, (window - datetime.now(UTC)).total_seconds()) + 0.2)
    run = hostile("renew")
    assert run.code == 0, run.stderr
    assert "Renewed due.certcli.test" in run.stdout
    renewed = x509.load_pem_x509_certificate((live / "cert.pem").read_bytes())
    assert renewed.serial_number != cert.serial_number
    assert version_numbers(hostile, "due.certcli.test") == [1, 2]


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
        assert version_numbers(hostile, name) == [1, 2]


def _issue_without_the_key_on_the_command_line(
    certcli: Certcli, lab: Lab, name: str, *args: str, env: dict[str, str] | None = None
) -> Run:
    return certcli("issue", name, "--webroot", lab.webroot, "--agree-tos", *args, env=env)


def test_the_eab_key_from_a_file_or_the_environment_never_on_the_command_line(
    hostile: Certcli, hostile_lab: Lab, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    key_file = tmp_path / "eab.key"
    key_file.write_text(HMAC + "\n")
    key_file.chmod(0o600)
    run = _issue_without_the_key_on_the_command_line(
        hostile,
        hostile_lab,
        "eabfile.certcli.test",
        "--eab-kid",
        KID,
        "--eab-hmac-key-file",
        key_file,
    )
    assert run.code == 0, run.stderr
    assert HMAC not in run.stdout + run.stderr

    # a second store (a new account), the key ID and the key from the environment alone
    other = _second_store(request, tmp_path / "other", tmp_path).point_at(hostile_lab)
    env = {"CERTCLI_EAB_KID": KID, "CERTCLI_EAB_HMAC_KEY": HMAC}
    run = _issue_without_the_key_on_the_command_line(
        other, hostile_lab, "eabenv.certcli.test", env=env
    )
    assert run.code == 0, run.stderr
    assert (live_dir(other, "eabenv.certcli.test") / "cert.pem").is_file()

    # a key on stdin ('-')
    third = _second_store(request, tmp_path / "third", tmp_path).point_at(hostile_lab)
    run = third(
        "issue",
        "eabstdin.certcli.test",
        "--webroot",
        hostile_lab.webroot,
        "--agree-tos",
        "--eab-kid",
        KID,
        "--eab-hmac-key-file",
        "-",
        input=HMAC + "\n",
    )
    assert run.code == 0, run.stderr


def test_account_register_takes_the_eab_options_of_issue(
    hostile: Certcli, hostile_lab: Lab, tmp_path: Path
) -> None:
    refused = hostile("account", "register", "--agree-tos")
    assert refused.code == 2 and "requires External Account Binding" in refused.stderr
    assert hostile("account", "register", "--agree-tos", "--eab-kid", KID).code == 2
    key_file = tmp_path / "eab.key"
    key_file.write_text(HMAC + "\n")
    key_file.chmod(0o600)
    args = ("--agree-tos", "--eab-kid", KID, "--eab-hmac-key-file", key_file, "--json")
    run = hostile("account", "register", *args)
    assert run.code == 0, run.stderr
    made = run.json()
    assert made["created_now"] is True and "/my-account/" in made["uri"]
    assert HMAC not in run.stdout + run.stderr
    # the same account is reported, and an issuance needs no EAB any more
    assert hostile("account", "register", "--json").json()["uri"] == made["uri"]
    issued = hostile("issue", "eabreg.certcli.test", "--webroot", hostile_lab.webroot)
    assert issued.code == 0, issued.stderr


def test_eab_options_that_do_not_go_together_are_refused_before_any_request(
    hostile: Certcli, hostile_lab: Lab, tmp_path: Path
) -> None:
    (tmp_path / "empty.key").write_text("\n")
    cases = [
        (["--eab-kid", KID], "needs both --eab-kid and --eab-hmac-key"),
        (["--eab-hmac-key-file", tmp_path / "empty.key", "--eab-kid", KID], "is empty"),
        (["--eab-hmac-key-file", tmp_path / "missing.key", "--eab-kid", KID], "does not exist"),
        (
            [
                "--eab-kid",
                KID,
                "--eab-hmac-key",
                HMAC,
                "--eab-hmac-key-file",
                tmp_path / "empty.key",
            ],
            "exclude each other",
        ),
    ]
    before = len(hostile_lab.acme_requests())
    for args, words in cases:
        run = _issue_without_the_key_on_the_command_line(
            hostile, hostile_lab, "eabbad.certcli.test", *map(str, args)
        )
        assert run.code in (2, 3), run.stderr
        assert words in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert len(hostile_lab.acme_requests()) == before
    assert lineage_names(hostile) == []


@pytest.mark.parametrize("wrong", ["kid", "hmac"])
def test_a_wrong_eab_key_says_so_not_the_cas_cryptic_words(
    hostile: Certcli, hostile_lab: Lab, wrong: str
) -> None:
    other_hmac = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    env = {
        "CERTCLI_EAB_KID": "no-such-kid" if wrong == "kid" else KID,
        "CERTCLI_EAB_HMAC_KEY": other_hmac if wrong == "hmac" else HMAC,
    }
    run = _issue_without_the_key_on_the_command_line(
        hostile, hostile_lab, "wrongeab.certcli.test", env=env
    )
    assert run.code == 14, run.stderr
    assert "go-jose" not in run.stderr and len(run.stderr.strip().splitlines()) == 1
    assert "the CA refused the External Account Binding" in run.stderr
    assert "the EAB key or key ID is probably wrong" in run.stderr
    assert "--eab-kid" in run.stderr and "--eab-hmac-key" in run.stderr
    assert other_hmac not in run.stderr
    assert not has_account(hostile)


def test_v_logs_the_conversation_with_the_ca_and_no_secret(
    hostile: Certcli, hostile_lab: Lab
) -> None:
    import requests

    directory = requests.get(
        hostile_lab.directory_url, verify=str(hostile_lab.ca_bundle), timeout=30
    ).json()
    run = _issue(hostile, hostile_lab, "verbose.certcli.test", "-v")
    assert run.code == 0, run.stderr
    assert f"certcli.acme: POST {directory['newOrder']} -> 201" in run.stderr, run.stderr
    assert f"certcli.acme: GET {hostile_lab.directory_url} -> 200" in run.stderr
    assert "badNonce" in run.stderr  # the CA rejects half of the nonces
    account = next((hostile.config_dir / "accounts").rglob("*.pem"), None)
    secrets_shown = [HMAC, "PRIVATE KEY", '"protected"', '"signature"', '"payload"', "Replay-Nonce"]
    if account is not None:
        secrets_shown.append(account.read_text().splitlines()[1])
    assert not [s for s in secrets_shown if s in run.stderr]
    assert not [s for s in secrets_shown if s in run.stdout]

    quiet = _issue(hostile, hostile_lab, "quiet.certcli.test")
    assert quiet.code == 0 and "certcli.acme" not in quiet.stderr
