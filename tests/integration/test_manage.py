"""delete, revoke, account and config through the real executable (against Pebble where a
CA is involved)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    PASSPHRASE,
    Certcli,
    lineage_names,
    lineage_state,
    ok,
    on_pg,
    store_query,
    write_state,
)
from tests.jsonschemas import problems
from tests.lab import Lab

pytestmark = pytest.mark.integration


def _issue(acme: Certcli, lab: Lab, name: str, *args: str) -> None:
    ok(acme("issue", name, "--webroot", lab.webroot, "--agree-tos", *args))


def _endpoint(lab: Lab, resource: str) -> str:
    """The path of a directory resource, as Pebble names it."""
    directory = json.loads(lab._get(lab.directory_url))
    return "POST " + directory[resource].split(str(lab.acme_port), 1)[1]


def _account_dir(acme: Certcli) -> Path:
    (host,) = (acme.config_dir / "accounts").iterdir()
    (account,) = [p for p in host.iterdir() if "deactivated" not in p.name]
    return account


def _account(acme: Certcli) -> dict:
    """The stored account (account.json), whichever store."""
    if on_pg(acme):
        ((account,),) = store_query(acme, "SELECT account FROM certcli.accounts")
        return dict(account)
    return json.loads((_account_dir(acme) / "account.json").read_text())


def _account_key(acme: Certcli) -> bytes:
    """The stored account key as stored (encrypted on PostgreSQL): it changes with the key."""
    if on_pg(acme):
        ((key,),) = store_query(acme, "SELECT key_encrypted FROM certcli.accounts")
        return bytes(key)
    return (_account_dir(acme) / "key.pem").read_bytes()


def _store(acme: Certcli) -> Any:
    """The store certcli uses, opened here as a second process would hold its locks."""
    if on_pg(acme):
        from certcli.storage.pgstore import PostgresStore
        from certcli.storage.postgres import StoreUrl

        url = StoreUrl.parse(acme.env["CERTCLI_STORE_URL"], "the test")
        return PostgresStore(url, acme.config_dir, PASSPHRASE.encode(), "the-test")
    from certcli.storage.files import Store

    return Store(acme.config_dir)


def test_delete_asks_and_removes_the_whole_lineage(acme: Certcli, lab: Lab) -> None:
    _issue(acme, lab, "del.certcli.test")
    run = acme("delete", "del.certcli.test")
    assert run.code == 7 and "--yes" in run.stderr
    assert lineage_names(acme) == ["del.certcli.test"]
    ok(acme("delete", "del.certcli.test", "--yes"))
    assert lineage_names(acme) == [] and lineage_state(acme, "del.certcli.test") == {}
    if on_pg(acme):
        assert store_query(acme, "SELECT count(*) FROM certcli.versions") == [(0,)]
        assert not (acme.config_dir / "live" / "del.certcli.test").exists()
    else:
        assert list((acme.config_dir / "certs").iterdir()) == []
    # its lock file goes too; another lineage's stays (the file store's locks are files)
    locks = acme.config_dir / "locks"
    assert not (locks / "lineage-del.certcli.test.lock").exists()
    assert acme("delete", "del.certcli.test", "--yes").code == 3
    ok(acme("csr", "kept.certcli.test", "--out", "k.csr"))
    ok(acme("csr", "gone.certcli.test", "--out", "g.csr"))
    ok(acme("delete", "gone.certcli.test", "--yes"))
    assert lineage_names(acme) == ["kept.certcli.test"]
    if not on_pg(acme):
        kept = ["lineage-kept.certcli.test.lock"]
        assert sorted(p.name for p in locks.glob("lineage-*")) == kept


def test_config_set_and_get(certcli: Certcli) -> None:
    ok(certcli("config", "set", "renewal.jitter", "60"))
    ok(certcli("config", "set", "dns.resolvers", '["127.0.0.1:8053"]'))
    ok(certcli("config", "set", "hooks.deploy", "systemctl reload nginx"))
    path = certcli.config_dir / "config.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ok(certcli("config", "get", "renewal.jitter")).stdout == "60\n"
    assert ok(certcli("config", "get", "dns.resolvers")).stdout == '["127.0.0.1:8053"]\n'
    assert ok(certcli("config", "get", "hooks.deploy")).stdout == "systemctl reload nginx\n"
    assert ok(certcli("config", "get", "dns.resolvers", "--json")).json() == {
        "key": "dns.resolvers",
        "value": ["127.0.0.1:8053"],
    }
    assert certcli("config", "get", "dns.target").code == 3
    assert certcli("config", "set", "Bad Key", "1").code == 2


def test_account_show_update_rollover_deactivate(acme: Certcli, lab: Lab) -> None:
    assert acme("account", "show").code == 3
    _issue(acme, lab, "acct.certcli.test", "--email", "first@certcli.test")
    shown = ok(acme("account", "show", "--json")).json()
    assert shown["contact"] == ["mailto:first@certcli.test"]
    assert "key" not in json.dumps(shown).lower().replace("key_", "")

    before = len(lab.acme_requests())
    updated = ok(acme("account", "update", "--email", "second@certcli.test", "--json")).json()
    assert updated["contact"] == ["mailto:second@certcli.test"]
    assert "POST /my-account/" in lab.acme_requests()[before:]  # Pebble logs the route
    assert _account(acme)["contact"] == ["mailto:second@certcli.test"]

    old_key = _account_key(acme)
    before = len(lab.acme_requests())
    rolled = ok(acme("account", "rollover"))
    assert "dns-persist-01 records" in rolled.stderr and "stay valid" in rolled.stderr
    assert _endpoint(lab, "keyChange") in lab.acme_requests()[before:]
    assert _account_key(acme) != old_key
    if on_pg(acme):  # the staged key is gone once the CA has the new one
        staged = "SELECT count(*) FROM certcli.accounts WHERE staged_key_encrypted IS NOT NULL"
        assert store_query(acme, staged) == [(0,)]
    else:
        key = _account_dir(acme) / "key.pem"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert not (_account_dir(acme) / "key.pem.new").exists()
    # the CA knows the new key: the next order needs no new account
    before = len(lab.acme_requests())
    _issue(acme, lab, "after-rollover.certcli.test")
    assert _endpoint(lab, "newAccount") not in lab.acme_requests()[before:]

    assert acme("account", "deactivate").code == 7
    gone = ok(acme("account", "deactivate", "--yes"))
    assert shown["uri"] in gone.stdout and "dns-persist-01 records" in gone.stderr
    assert "re-publish them with the new account's URL" in gone.stderr
    assert acme("account", "show").code == 3
    before = len(lab.acme_requests())
    _issue(acme, lab, "new-account.certcli.test")
    assert _endpoint(lab, "newAccount") in lab.acme_requests()[before:]
    assert ok(acme("account", "show", "--json")).json()["uri"] != shown["uri"]


def test_account_register_creates_the_account_once_then_reports_it(acme: Certcli, lab: Lab) -> None:
    # not interactive and no --agree-tos: refused as `issue` refuses it, nothing stored
    refused = acme("account", "register")
    assert refused.code == 2, refused.stderr
    assert "terms of service must be accepted" in refused.stderr and "--agree-tos" in refused.stderr
    assert "Traceback" not in refused.stderr and acme("account", "show").code == 3
    assert acme("account", "register", "--agree-tos", "--email", "not-an-address").code == 2

    before = len(lab.acme_requests())
    run = ok(acme("account", "register", "--agree-tos", "--email", "reg@certcli.test", "--json"))
    made = run.json()
    assert problems("account register", made) == []
    assert made["created_now"] is True and made["contact"] == ["mailto:reg@certcli.test"]
    assert made["uri"].startswith(f"https://127.0.0.1:{lab.acme_port}/my-account/")
    assert made["directory"] == lab.directory_url
    assert _endpoint(lab, "newAccount") in lab.acme_requests()[before:]
    assert ok(acme("account", "show", "--json")).json() == {
        k: v for k, v in made.items() if k != "created_now"
    }

    # again: no error and no request, the same account; a script can run it every time
    before = len(lab.acme_requests())
    again = ok(acme("account", "register", "--agree-tos", "--email", "other@certcli.test"))
    assert "already registered" in again.stderr and made["uri"] in again.stdout
    assert "--email other@certcli.test is not the contact" in again.stderr
    assert not any(line.startswith("POST") for line in lab.acme_requests()[before:])
    again_json = ok(acme("account", "register", "--json")).json()  # no --agree-tos needed now
    assert again_json["created_now"] is False and again_json["uri"] == made["uri"]
    assert again_json["created"] == made["created"]

    # the first issuance uses the account registered ahead
    before = len(lab.acme_requests())
    _issue(acme, lab, "registered-ahead.certcli.test")
    assert _endpoint(lab, "newAccount") not in lab.acme_requests()[before:]


def test_revoke_then_renew_replaces_it(acme: Certcli, lab: Lab) -> None:
    _issue(acme, lab, "rev.certcli.test")
    assert acme("revoke", "rev.certcli.test", "--reason", "stolen").code == 2
    before = len(lab.acme_requests())
    run = ok(acme("revoke", "rev.certcli.test", "--reason", "keyCompromise", "--json"))
    assert run.json()["revoked"] is True
    assert _endpoint(lab, "revokeCert") in lab.acme_requests()[before:]
    run = ok(acme("renew", "--json"))
    (result,) = run.json()["results"]
    assert result["action"] == "renewed" and result["reason"] == "revoked"
    assert ok(acme("renew", "--json")).json()["results"][0]["action"] == "not_due"


def test_an_account_change_waits_for_the_account_lock(acme: Certcli, lab: Lab) -> None:
    _issue(acme, lab, "acctlock.certcli.test")
    key = _account_key(acme)
    with _store(acme).lock_account(lab.directory_url):
        run = acme("account", "rollover")  # CERTCLI_LOCK_WAIT=1 in the tests
    # the file store names the PID; PostgreSQL names the host and the PID
    assert run.code == 6 and "the ACME account is locked by" in run.stderr, run.stderr
    assert f"PID {os.getpid()}" in run.stderr
    assert _account_key(acme) == key
    ok(acme("account", "rollover"))
    assert _account_key(acme) != key


def _state(acme: Certcli, name: str) -> dict:
    return lineage_state(acme, name)


def test_revoking_twice_records_the_revocation_the_ca_already_had(acme: Certcli, lab: Lab) -> None:
    _issue(acme, lab, "twice.certcli.test")
    ok(acme("revoke", "twice.certcli.test"))
    recorded = lineage_state(acme, "twice.certcli.test")
    del recorded["revoked"]  # as if the first run could not record it
    write_state(acme, "twice.certcli.test", recorded)
    run = ok(acme("revoke", "twice.certcli.test", "--reason", "superseded", "--json"))
    assert run.json()["revoked"] is True and run.json()["already_revoked"] is True
    assert "was already revoked at the CA; recorded now" in run.stderr
    assert _state(acme, "twice.certcli.test")["revoked"]["reason"] == "superseded"
    run = ok(acme("revoke", "twice.certcli.test"))  # and again: the same, exit 0
    assert "already revoked" in run.stderr
    (result,) = ok(acme("renew", "--json")).json()["results"]
    assert result["action"] == "renewed" and result["reason"] == "revoked"


def _read_only(acme: Certcli, on: bool) -> None:
    """The PostgreSQL store's database read-only for new sessions (or writable again)."""
    import psycopg

    url = acme.env["CERTCLI_STORE_URL"]
    database = url.rsplit("/", 1)[1]
    setting = "SET default_transaction_read_only = on" if on else "RESET ALL"
    options = "-c default_transaction_read_only=off"
    with psycopg.connect(url, autocommit=True, options=options) as c:
        c.execute(f'ALTER DATABASE "{database}" {setting}')


def test_revoke_on_a_store_that_cannot_record_it_asks_the_ca_nothing(
    acme: Certcli, lab: Lab
) -> None:
    """The lineage directory on a read-only mount (root ignores file modes), or the
    PostgreSQL store's database read-only: the revocation could not be recorded, so the CA
    is not asked; later, with the store writable, it is."""
    import subprocess

    from tests.conftest import CERTCLI

    name = "rostore.certcli.test"
    _issue(acme, lab, name)
    before = len(lab.acme_requests())
    if on_pg(acme):
        _read_only(acme, True)
        try:
            run = acme("revoke", name)
        finally:
            _read_only(acme, False)
        code, stderr, says = run.code, run.stderr, "read-only transaction"
    else:
        if subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode != 0:
            pytest.fail("this test needs root and mount namespaces (unshare -m)")
        lineage = acme.config_dir / "certs" / name
        script = f"mount --bind -o ro {lineage} {lineage} && exec {CERTCLI} revoke {name}"
        proc = subprocess.run(
            ["unshare", "-m", "sh", "-c", script],
            capture_output=True,
            text=True,
            env=acme.environ(),
            cwd=acme.cwd,
        )
        code, stderr, says = proc.returncode, proc.stderr, "Read-only file system"
    assert code == 5, stderr
    assert says in stderr and "Traceback" not in stderr, stderr
    if not on_pg(acme):
        assert len(stderr.strip().splitlines()) == 1
    assert _endpoint(lab, "revokeCert") not in lab.acme_requests()[before:]
    assert "revoked" not in _state(acme, name)
    run = ok(acme("revoke", name, "--json"))  # the CA had not revoked it: now it does
    assert run.json()["already_revoked"] is False
    assert _state(acme, name)["revoked"]["reason"] == "unspecified"


def test_revoke_waits_for_the_lineage_lock(acme: Certcli, lab: Lab) -> None:
    _issue(acme, lab, "revlock.certcli.test")
    before = len(lab.acme_requests())
    with _store(acme).lock("revlock.certcli.test"):
        run = acme("revoke", "revlock.certcli.test")  # CERTCLI_LOCK_WAIT=1 in the tests
    assert run.code == 6 and "is locked by" in run.stderr, run.stderr
    assert f"PID {os.getpid()}" in run.stderr
    assert _endpoint(lab, "revokeCert") not in lab.acme_requests()[before:]
    assert not (acme.config_dir / "locks" / "lineage-nosuch.certcli.test.lock").exists()
    assert acme("revoke", "nosuch.certcli.test").code == 3
    assert not (acme.config_dir / "locks" / "lineage-nosuch.certcli.test.lock").exists()
