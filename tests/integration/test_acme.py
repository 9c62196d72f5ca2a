"""`certcli issue` and `certcli renew` through the real executable against the lab's Pebble
(HTTP-01 answered from the lab's webroot, served by a real web server)."""

from __future__ import annotations

import json
import os
import tomllib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.verification import PolicyBuilder, Store

from tests.conftest import (
    Certcli,
    Run,
    has_account,
    lineage_names,
    lineage_settings,
    lineage_state,
    live_dir,
    live_version,
    ok,
    on_pg,
    store_contents,
    store_query,
    version_numbers,
)
from tests.lab import Lab, free_port

pytestmark = pytest.mark.integration


def _issue(acme: Certcli, lab: Lab, *args: str) -> Run:
    return acme("issue", *args, "--webroot", lab.webroot, "--agree-tos")


def _live(acme: Certcli, name: str) -> Path:
    return live_dir(acme, name)


def _version_cert(acme: Certcli, name: str, version: int) -> x509.Certificate:
    if on_pg(acme):
        ((pem,),) = store_query(
            acme,
            "SELECT cert FROM certcli.versions WHERE name = %s AND version = %s",
            (name, version),
        )
        return x509.load_pem_x509_certificate(bytes(pem))
    path = acme.config_dir / "certs" / name / "archive" / f"{version:04d}" / "cert.pem"
    return x509.load_pem_x509_certificate(path.read_bytes())


def _leaf(acme: Certcli, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((_live(acme, name) / "cert.pem").read_bytes())


def _sans(cert: x509.Certificate) -> set[str]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(ext.get_values_for_type(x509.DNSName))


def _verify_to_pebble_root(acme: Certcli, lab: Lab, name: str, domain: str) -> None:
    root = x509.load_pem_x509_certificate(lab.issuing_root())
    chain = x509.load_pem_x509_certificates((_live(acme, name) / "fullchain.pem").read_bytes())
    verifier = (
        PolicyBuilder()
        .store(Store([root]))
        .time(datetime.now(UTC))
        .build_server_verifier(x509.DNSName(domain))
    )
    verified = verifier.verify(chain[0], chain[1:])
    assert verified[-1] == root


def _no_tokens_left(lab: Lab) -> None:
    directory = lab.webroot / ".well-known" / "acme-challenge"
    assert not directory.exists() or os.listdir(directory) == []


def test_single_san(acme: Certcli, lab: Lab) -> None:
    run = ok(_issue(acme, lab, "one.certcli.test"))
    assert run.stdout.startswith("Issued one.certcli.test: one.certcli.test, version 1")
    assert "one.certcli.test: Validating" in run.stderr  # phases, as plain lines
    assert _sans(_leaf(acme, "one.certcli.test")) == {"one.certcli.test"}
    _verify_to_pebble_root(acme, lab, "one.certcli.test", "one.certcli.test")
    _no_tokens_left(lab)
    assert live_version(acme, "one.certcli.test") == 1
    assert (_live(acme, "one.certcli.test") / "privkey.pem").stat().st_mode & 0o777 == 0o600
    state = lineage_state(acme, "one.certcli.test")
    assert state["phase"] == "Completed" and "last_error" not in state
    (entry,) = ok(acme("status", "--json")).json()["lineages"]
    assert entry["mode"] == "auto" and entry["status"] == "active"
    assert entry["issuer"].startswith("Pebble Intermediate CA")


def test_three_sans_and_the_account_is_reused(acme: Certcli, lab: Lab) -> None:
    ok(_issue(acme, lab, "first.certcli.test"))
    accounts_before = sum(1 for r in lab.acme_requests() if r == "POST /sign-me-up")
    names = ["three.certcli.test", "www.three.certcli.test", "api.three.certcli.test"]
    ok(_issue(acme, lab, *names))
    assert sum(1 for r in lab.acme_requests() if r == "POST /sign-me-up") == accounts_before
    assert _sans(_leaf(acme, "three.certcli.test")) == set(names)
    _verify_to_pebble_root(acme, lab, "three.certcli.test", "api.three.certcli.test")
    _no_tokens_left(lab)


def _kept_directory(acme: Certcli, lab: Lab) -> dict:
    """The CA's directory as the store keeps it with the account."""
    if on_pg(acme):
        ((directory,),) = store_query(acme, "SELECT directory FROM certcli.accounts")
    else:
        (path,) = (acme.config_dir / "accounts").glob("*/*/directory.json")
        directory = json.loads(path.read_text())["directory"]
    assert directory["newOrder"].startswith(lab.directory_url[:-4])
    return directory


def _keep_directory(acme: Certcli, directory: dict) -> None:
    """Replace the kept directory, its age unchanged."""
    if on_pg(acme):
        from psycopg.types.json import Jsonb

        store_query(
            acme, "UPDATE certcli.accounts SET directory = %s RETURNING 1", (Jsonb(directory),)
        )
        return
    (path,) = (acme.config_dir / "accounts").glob("*/*/directory.json")
    path.write_text(json.dumps({**json.loads(path.read_text()), "directory": directory}))


def test_a_known_account_issues_in_eight_requests_without_the_directory(
    acme: Certcli, lab: Lab
) -> None:
    ok(_issue(acme, lab, "first8.certcli.test"))
    _kept_directory(acme, lab)
    before = len(lab.acme_requests())
    ok(_issue(acme, lab, "eight.certcli.test"))
    sent = lab.acme_requests()[before:]
    assert "GET /dir" not in sent
    # One nonce, the order, its authorization, the answer, a poll, the finalize, a poll and
    # the download: 8 (a repeat is a poll or the retry of a nonce the lab's CA rejected).
    assert [r for i, r in enumerate(sent) if i == 0 or sent[i - 1] != r] == [
        "HEAD /nonce-plz",
        "POST /order-plz",
        "POST /authZ/",
        "POST /chalZ/",
        "POST /my-order/",
        "POST /finalize-order/",
        "POST /my-order/",
        "POST /certZ/",
    ]


def test_a_stale_kept_directory_is_fetched_again(acme: Certcli, lab: Lab) -> None:
    ok(_issue(acme, lab, "kept.certcli.test"))
    directory = _kept_directory(acme, lab)
    _keep_directory(acme, {**directory, "newOrder": directory["newOrder"] + "-moved"})
    before = len(lab.acme_requests())
    ok(_issue(acme, lab, "stale.certcli.test"))
    assert lab.acme_requests()[before:].count("GET /dir") == 1
    assert _sans(_leaf(acme, "stale.certcli.test")) == {"stale.certcli.test"}
    assert not _kept_directory(acme, lab)["newOrder"].endswith("-moved")


def test_a_damaged_kept_directory_is_fetched_again(acme: Certcli, lab: Lab) -> None:
    ok(_issue(acme, lab, "damaged.certcli.test"))
    _kept_directory(acme, lab)
    _keep_directory(acme, {"not": "a directory"})
    ok(_issue(acme, lab, "damaged2.certcli.test"))
    _kept_directory(acme, lab)  # a good copy again


def test_each_issues_five_lineages_concurrently(acme: Certcli, lab: Lab) -> None:
    domains = [f"e{i}.certcli.test" for i in range(5)]
    run = ok(acme("issue", *domains, "--each", "--webroot", lab.webroot, "--agree-tos", "--json"))
    results = run.json()["results"]
    assert sorted(r["name"] for r in results) == domains
    assert {r["action"] for r in results} == {"issued"}
    for domain in domains:
        assert _sans(_leaf(acme, domain)) == {domain}
    _no_tokens_left(lab)


def test_renew_force_moves_live_and_keeps_the_old_version(acme: Certcli, lab: Lab) -> None:
    ok(_issue(acme, lab, "renew.certcli.test"))
    old_serial = _leaf(acme, "renew.certcli.test").serial_number
    run = ok(acme("renew", "--force"))
    assert run.stdout.startswith("Renewed renew.certcli.test")
    assert live_version(acme, "renew.certcli.test") == 2
    assert _leaf(acme, "renew.certcli.test").serial_number != old_serial
    assert _version_cert(acme, "renew.certcli.test", 1).serial_number == old_serial


def test_a_relative_webroot_is_kept_absolute_for_renewals_from_elsewhere(
    acme: Certcli, lab: Lab
) -> None:
    relative = os.path.relpath(lab.webroot, acme.cwd)
    ok(acme("issue", "relative.certcli.test", "--webroot", relative, "--agree-tos"))
    toml = lineage_settings(acme, "relative.certcli.test")
    assert toml is not None
    kept = Path(tomllib.loads(toml)["webroot"])
    assert kept.is_absolute() and kept.resolve() == lab.webroot.resolve()
    acme.cwd = Path("/")  # cron runs renew from elsewhere
    ok(acme("renew", "--force", "relative.certcli.test"))


def test_renew_with_nothing_due_sends_no_request_and_prints_nothing(
    acme: Certcli, lab: Lab
) -> None:
    ok(_issue(acme, lab, "quiet.certcli.test"))
    before = len(lab.acme_requests())
    run = acme("renew")
    assert run.code == 0, run.stderr
    assert run.stdout == "" and run.stderr == ""
    assert len(lab.acme_requests()) == before
    assert acme("renew", "-v").stdout == "quiet.certcli.test: not due\n"


def test_dry_run_stores_nothing(acme: Certcli, lab: Lab) -> None:
    run = ok(_issue(acme, lab, "dry.certcli.test", "--dry-run"))
    assert "Dry run dry.certcli.test" in run.stdout
    assert lineage_names(acme) == []
    assert not (acme.config_dir / "certs" / "dry.certcli.test").exists()
    ok(_issue(acme, lab, "wet.certcli.test"))
    before = store_contents(acme)
    run = ok(acme("renew", "--dry-run"))
    assert "Dry run wet.certcli.test" in run.stdout
    assert store_contents(acme) == before


def test_a_webroot_that_is_not_served_fails_validation_naming_the_domain(
    acme: Certcli, lab: Lab, tmp_path: Path
) -> None:
    unserved = tmp_path / "unserved"
    unserved.mkdir()
    run = acme("issue", "lost.certcli.test", "--webroot", unserved, "--agree-tos")
    assert run.code == 13, run.stderr
    error = run.stderr.strip().splitlines()[-1]
    assert error.startswith("certcli: error: validation failed for lost.certcli.test (http-01)")
    assert error.endswith(
        f"; check that the web server serves {unserved} as http://DOMAIN/ "
        "(the CA fetches /.well-known/acme-challenge/ on port 80)"
    )
    assert os.listdir(unserved / ".well-known" / "acme-challenge") == []
    (entry,) = ok(acme("status", "--json")).json()["lineages"]
    assert entry["status"] == "failed" and "lost.certcli.test" in entry["error"]
    assert acme("status", "--fail-on", "any").code == 1
    # renew retries it; fixed (served webroot) it succeeds, with no flag needed to re-issue
    ok(_issue(acme, lab, "lost.certcli.test"))
    assert ok(acme("status", "--json")).json()["lineages"][0]["status"] == "active"


def test_ca_unreachable_is_one_clear_line_and_stores_nothing(acme: Certcli, lab: Lab) -> None:
    dead = f"https://127.0.0.1:{free_port()}/dir"
    before = store_contents(acme)
    run = _issue(acme, lab, "down.certcli.test", "--server", dead)
    assert run.code == 10
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith(f"certcli: error: cannot reach the CA at {dead}")
    )
    assert "Traceback" not in run.stderr
    assert store_contents(acme) == before


def test_tls_to_the_ca_is_verified(acme: Certcli, lab: Lab) -> None:
    del acme.env["REQUESTS_CA_BUNDLE"]
    run = _issue(acme, lab, "tls.certcli.test")
    assert run.code == 11, run.stderr
    assert "did not verify" in run.stderr and "--ca-bundle" in run.stderr
    ok(_issue(acme, lab, "tls.certcli.test", "--ca-bundle", str(lab.ca_bundle)))
    # the bundle is remembered for renewals
    ok(acme("renew", "tls.certcli.test", "--force"))


def test_terms_of_service_must_be_accepted(acme: Certcli, lab: Lab) -> None:
    run = acme("issue", "tos.certcli.test", "--webroot", lab.webroot)
    assert run.code == 2
    assert "terms of service" in run.stderr and "--agree-tos" in run.stderr
    assert not has_account(acme)


def test_an_existing_name_is_refused_unless_forced_or_expanded(acme: Certcli, lab: Lab) -> None:
    ok(_issue(acme, lab, "exists.certcli.test"))
    run = _issue(acme, lab, "exists.certcli.test")
    assert run.code == 2 and "already exists" in run.stderr and "--force" in run.stderr
    ok(_issue(acme, lab, "exists.certcli.test", "--force-renewal"))
    run = _issue(acme, lab, "exists.certcli.test", "www.exists.certcli.test")
    assert run.code == 2 and "--expand" in run.stderr
    ok(_issue(acme, lab, "exists.certcli.test", "www.exists.certcli.test", "--expand"))
    assert _sans(_leaf(acme, "exists.certcli.test")) == {
        "exists.certcli.test",
        "www.exists.certcli.test",
    }
    assert version_numbers(acme, "exists.certcli.test") == [1, 2, 3]


def test_preferred_chain_picks_the_alternate_root(acme: Certcli, lab: Lab) -> None:
    alternate = x509.load_pem_x509_certificate(lab.issuing_root(1))
    cn = alternate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    ok(_issue(acme, lab, "chain.certcli.test", "--preferred-chain", str(cn)))
    chain = x509.load_pem_x509_certificates(
        (_live(acme, "chain.certcli.test") / "fullchain.pem").read_bytes()
    )
    assert chain[-1].issuer == alternate.subject
    ok(_issue(acme, lab, "default.certcli.test"))
    default = x509.load_pem_x509_certificates(
        (_live(acme, "default.certcli.test") / "fullchain.pem").read_bytes()
    )
    assert default[-1].issuer != alternate.subject


def test_an_ip_address_identifier(acme: Certcli, lab: Lab) -> None:
    ok(_issue(acme, lab, "127.0.0.1"))
    ext = _leaf(acme, "127.0.0.1").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert [str(ip) for ip in ext.value.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_custom_lineages_are_never_renewed(acme: Certcli, lab: Lab, ca, tmp_path: Path) -> None:
    from datetime import timedelta

    issued = ca.issue(["mine.example.com"], not_before=datetime.now(UTC) - timedelta(days=80))
    (tmp_path / "c.pem").write_bytes(issued.fullchain_pem)
    (tmp_path / "k.pem").write_bytes(issued.key_pem)
    ok(acme("upload", "mine", "--cert", "c.pem", "--key", "k.pem"))
    before = len(lab.acme_requests())
    run = ok(acme("renew"))
    assert run.stdout == ""
    assert "mine: uploaded certificate expires in 9 days: upload a new one" in run.stderr
    assert len(lab.acme_requests()) == before
