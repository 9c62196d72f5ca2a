"""`certcli store copy --to URL` through the real executable, from a real file store (made
with `csr` + `upload` from a local CA, and an account registered with the lab's Pebble) into
the lab's real PostgreSQL: every row is there, keys only encrypted, a second copy changes
nothing, a conflict writes nothing, and every refusal is one line and its exit code. The
file store is never changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Certcli, ok

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.lab.localca import LocalCA
    from tests.lab.postgres import Postgres

# copies the file store's lineages: on a PostgreSQL store (make test-postgres) there are none
pytestmark = [pytest.mark.integration, pytest.mark.file_store]

PASSPHRASE = "copy-test passphrase"


@pytest.fixture
def db(postgres: Postgres) -> Postgres:
    """The lab's database with certcli's schema dropped and made anew, empty."""
    import psycopg

    with psycopg.connect(postgres.url, password=postgres.password) as connection:
        connection.execute("DROP SCHEMA IF EXISTS certcli CASCADE")
    return postgres


def _migrate(certcli: Certcli, db: Postgres) -> None:
    ok(certcli("store", "migrate", "--url", db.url, env=db.env()))


def _upload(certcli: Certcli, ca: LocalCA, name: str, versions: int = 1) -> None:
    """A custom lineage of `versions` versions: a CSR, then a certificate for it each time."""
    ok(certcli("csr", name, "--out", f"{name}.csr"))
    csr = (certcli.cwd / f"{name}.csr").read_bytes()
    for number in range(versions):
        issued = ca.sign_csr(csr, days=90 - number)
        (certcli.cwd / "cert.pem").write_bytes(issued.cert_pem)
        (certcli.cwd / "chain.pem").write_bytes(issued.chain_pem)
        key = () if number == 0 else ("--key", _live(certcli, name) / "privkey.pem")
        ok(certcli("upload", name, "--cert", "cert.pem", "--chain", "chain.pem", *key))


def _live(certcli: Certcli, name: str) -> Path:
    return certcli.config_dir / "certs" / name / "live"


def _copy(certcli: Certcli, db: Postgres, *args: str, env: dict[str, str] | None = None) -> Any:
    environ = {**db.env(), "CERTCLI_PASSPHRASE": PASSPHRASE, **(env or {})}
    return certcli("store", "copy", "--to", db.url, *args, env=environ)


def _rows(db: Postgres) -> dict[str, list[tuple]]:
    """Every row of the tables copy writes, sorted, as Python values."""
    import psycopg

    queries = {
        "store": "SELECT key, value FROM certcli.store",
        "lineages": "SELECT name, settings, state, live_version, changed_at FROM certcli.lineages",
        "versions": "SELECT name, version, cert, chain, key_encrypted, meta::text, sha256 "
        "FROM certcli.versions",
        "accounts": "SELECT directory_url, account::text, key_encrypted, directory::text "
        "FROM certcli.accounts",
        "pending": "SELECT name, key_encrypted, csr, meta::text FROM certcli.pending",
    }
    with psycopg.connect(db.url, password=db.password) as connection:
        return {
            table: sorted(
                tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                for row in connection.execute(query).fetchall()
            )
            for table, query in queries.items()
        }


def _decrypt(blob: bytes) -> bytes:
    from certcli.keycrypt import decrypt

    return decrypt(blob, PASSPHRASE.encode(), "a key in the database")


def test_copy_writes_every_row_with_keys_encrypted_and_again_changes_nothing(
    acme: Certcli,
    ca: LocalCA,
    db: Postgres,
    store_snapshot: Callable[[Path], dict[str, tuple]],
) -> None:
    import hashlib

    ok(acme("config", "set", "store.encrypt_keys", "true"))
    acme.env["CERTCLI_PASSPHRASE"] = PASSPHRASE
    _upload(acme, ca, "two.example.com", versions=2)  # version 1 keeps only privkey.pem.enc
    _upload(acme, ca, "one.example.com")
    ok(acme("account", "register", "--agree-tos"))
    _migrate(acme, db)
    # made by the first run that needs one (none of the above): as that run would
    (acme.config_dir / "installation-id").write_text("certcli-0123456789\n")
    archive = acme.config_dir / "certs" / "two.example.com" / "archive"
    assert not (archive / "0001" / "privkey.pem").exists()
    before = store_snapshot(acme.config_dir)

    wrong = _copy(acme, db, env={"CERTCLI_PASSPHRASE": "not it"})
    assert wrong.code == 4, wrong.stderr
    assert "the passphrase does not open the key of 'two.example.com' version 1" in wrong.stderr
    assert _rows(db)["lineages"] == []

    # while [store] url names the database, as the migration runs
    first = _copy(acme, db, "--json", env={"CERTCLI_STORE_URL": db.url})
    assert first.code == 0, first.stderr
    shown = db.url.split("?")[0]
    assert first.json() == {
        "url": shown,
        "lineages": 2,
        "versions": 3,
        "accounts": 1,
        "pending": 0,
        "verified": True,
        "unchanged": False,
    }
    rows = _rows(db)
    assert rows["store"] == [("installation_id", "certcli-0123456789")]
    assert [(r[0], r[3]) for r in rows["lineages"]] == [
        ("one.example.com", 1),
        ("two.example.com", 2),
    ]
    assert rows["lineages"][1][1] == (archive.parent / "lineage.toml").read_text()
    assert [(r[0], r[1]) for r in rows["versions"]] == [
        ("one.example.com", 1),
        ("two.example.com", 1),
        ("two.example.com", 2),
    ]
    every_blob = b"".join(
        v for table in rows.values() for r in table for v in r if isinstance(v, bytes)
    )
    assert b"PRIVATE KEY" not in every_blob
    # each key decrypts to the file store's, and the SHA-256 is of cert + chain + key
    old_key = _decrypt((archive / "0001" / "privkey.pem.enc").read_bytes())
    keys = {
        ("one.example.com", 1): (_live(acme, "one.example.com") / "privkey.pem").read_bytes(),
        ("two.example.com", 1): old_key,
        ("two.example.com", 2): (_live(acme, "two.example.com") / "privkey.pem").read_bytes(),
    }
    for name, version, cert, chain, sealed, meta, sha in rows["versions"]:
        files = acme.config_dir / "certs" / name / "archive" / f"{version:04d}"
        assert (cert, chain) == (
            (files / "cert.pem").read_bytes(),
            (files / "chain.pem").read_bytes(),
        )
        assert _decrypt(sealed) == keys[name, version]
        assert sha == hashlib.sha256(cert + chain + keys[name, version]).hexdigest()
        assert json.loads(meta) == json.loads((files / "meta.json").read_text())
    [(url, account, sealed, _)] = rows["accounts"]
    account_dir = next((acme.config_dir / "accounts").glob("*/*"))
    assert _decrypt(sealed) == (account_dir / "key.pem").read_bytes()
    assert json.loads(account) == json.loads((account_dir / "account.json").read_text())
    assert json.loads(account)["directory"] == url

    again = _copy(acme, db, "--json")
    assert again.code == 0, again.stderr
    assert again.json() == {**first.json(), "unchanged": True}
    text = ok(_copy(acme, db)).stdout.strip()
    assert text == (
        f"{shown} holds 2 lineages (3 versions) and 1 accounts already: nothing to copy; verified."
    )
    assert _rows(db) == rows
    assert store_snapshot(acme.config_dir) == before


def test_a_conflicting_row_is_named_and_nothing_is_written(
    certcli: Certcli, ca: LocalCA, db: Postgres
) -> None:
    import psycopg

    _upload(certcli, ca, "a.example.com")
    _migrate(certcli, db)
    copied = _copy(certcli, db)
    assert copied.code == 0, copied.stderr
    assert copied.stdout.strip() == (
        f"Copied 1 lineages (1 versions) and 0 accounts to {db.url.split('?')[0]}; verified."
    )
    with psycopg.connect(db.url, password=db.password) as connection:
        connection.execute("UPDATE certcli.versions SET sha256 = 'other' WHERE version = 1")
    _upload(certcli, ca, "b.example.com")  # new: would be written, were it not for the conflict
    before = _rows(db)
    assert before["store"] == []  # this store has no installation id, and copy made none
    assert not (certcli.config_dir / "installation-id").exists()
    run = _copy(certcli, db)
    assert run.code == 5, run.stderr
    assert run.stderr.count("\n") <= 2 and "Traceback" not in run.stderr
    assert "version 1 of 'a.example.com'" in run.stderr and "nothing was copied" in run.stderr
    assert _rows(db) == before
    assert "b.example.com" not in {r[0] for r in before["lineages"]}


def test_refusals_are_one_line_and_change_nothing(
    certcli: Certcli,
    ca: LocalCA,
    db: Postgres,
    store_snapshot: Callable[[Path], dict[str, tuple]],
) -> None:
    _upload(certcli, ca, "r.example.com")
    before = store_snapshot(certcli.config_dir)

    missing = _copy(certcli, db)  # no schema yet
    assert missing.code == 5, missing.stderr
    assert "schema version 0" in missing.stderr and "certcli store migrate" in missing.stderr

    _migrate(certcli, db)
    bare = certcli("store", "copy", "--to", db.url, env=db.env())  # no passphrase
    assert bare.code == 2, bare.stderr
    assert "a PostgreSQL store holds keys only encrypted: give a passphrase" in bare.stderr

    down = certcli(
        "store", "copy", "--to", "postgresql://certcli@127.0.0.1:1/certcli",
        env={**db.env(), "CERTCLI_PASSPHRASE": PASSPHRASE},
    )  # fmt: skip
    assert down.code == 5, down.stderr
    assert down.stderr.startswith("certcli: error: cannot reach the PostgreSQL store at ")
    assert down.stderr.count("\n") == 1
    with_password = db.url.replace("certcli@", "certcli:pw@", 1)
    secret = certcli(
        "store", "copy", "--to", with_password, env={"CERTCLI_PASSPHRASE": PASSPHRASE}
    )  # fmt: skip
    assert secret.code == 2 and "holds a password" in secret.stderr
    for run in (missing, bare, down, secret):
        assert "Traceback" not in run.stderr and not run.stdout
    assert _rows(db)["lineages"] == []
    assert store_snapshot(certcli.config_dir) == before


def test_copy_back_from_postgresql_gives_the_same_store_and_again_changes_nothing(
    acme: Certcli, ca: LocalCA, db: Postgres, tmp_path: Path
) -> None:
    _upload(acme, ca, "two.example.com", versions=2)
    _upload(acme, ca, "one.example.com")
    ok(acme("account", "register", "--agree-tos"))
    _migrate(acme, db)
    ok(_copy(acme, db))

    back = Certcli(tmp_path / "back", tmp_path)
    environ = {**db.env(), "CERTCLI_PASSPHRASE": PASSPHRASE}
    first = back("store", "copy", "--from", db.url, "--json", env=environ)
    assert first.code == 0, first.stderr
    assert first.json()["lineages"] == 2 and first.json()["versions"] == 3
    assert first.json()["unchanged"] is False
    for name in ("one.example.com", "two.example.com"):
        for version in ("0001", "0002") if name.startswith("two") else ("0001",):
            for filename in ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"):
                here = acme.config_dir / "certs" / name / "archive" / version / filename
                there = back.config_dir / "certs" / name / "archive" / version / filename
                assert there.read_bytes() == here.read_bytes(), (name, version, filename)
    ours, theirs = (ok(c("status", "--json")).json() for c in (acme, back))
    assert theirs == ours
    account = ok(back("account", "show", "--json", "--server", acme.env["CERTCLI_SERVER"]))
    assert account.json()["uri"] == ok(acme("account", "show", "--json")).json()["uri"]

    again = back("store", "copy", "--from", db.url, "--json", env=environ)
    assert again.code == 0 and again.json()["unchanged"] is True
    # the file store holding other content: a conflict, nothing written
    (tmp_path / "other").mkdir()
    other = Certcli(tmp_path / "other" / "config", tmp_path / "other")
    _upload(other, ca, "one.example.com")
    before = sorted(p.name for p in (other.config_dir / "certs").iterdir())
    clash = other("store", "copy", "--from", db.url, env=environ)
    assert clash.code == 5 and "version 1 of 'one.example.com' exists in" in clash.stderr
    assert sorted(p.name for p in (other.config_dir / "certs").iterdir()) == before


def test_a_key_waiting_for_upload_is_copied_there_and_back_and_uploads_after(
    certcli: Certcli, ca: LocalCA, db: Postgres, tmp_path: Path
) -> None:
    ok(certcli("config", "set", "store.encrypt_keys", "true"))
    certcli.env["CERTCLI_PASSPHRASE"] = PASSPHRASE
    _upload(certcli, ca, "done.example.com")
    ok(certcli("csr", "wait.example.com", "--out", "wait.csr"))  # no certificate yet
    ok(certcli("csr", "done.example.com", "--out", "next.csr"))  # its next key, waiting
    pending = certcli.config_dir / "certs" / "wait.example.com" / "pending"
    key = _decrypt((pending / "privkey.pem.enc").read_bytes())
    _migrate(certcli, db)

    first = _copy(certcli, db, "--json")
    assert first.code == 0, first.stderr
    assert (first.json()["lineages"], first.json()["pending"]) == (2, 2)
    rows = _rows(db)
    assert [r[0] for r in rows["pending"]] == ["done.example.com", "wait.example.com"]
    (_, sealed, csr, meta) = rows["pending"][1]
    assert b"PRIVATE KEY" not in sealed and _decrypt(sealed) == key
    assert csr == (pending / "csr.pem").read_bytes()
    assert json.loads(meta) == json.loads((pending / "meta.json").read_text())
    again = ok(_copy(certcli, db)).stdout.strip()
    assert again.endswith(
        "holds 2 lineages (1 versions, 2 keys waiting for upload) and 0 accounts already: "
        "nothing to copy; verified."
    )

    # back into a file store of its own: the key waits there, and the certificate uploads
    back = Certcli(tmp_path / "back", tmp_path)
    environ = {**db.env(), "CERTCLI_PASSPHRASE": PASSPHRASE}
    copied = back("store", "copy", "--from", db.url, "--json", env=environ)
    assert copied.code == 0, copied.stderr
    assert copied.json()["pending"] == 2 and copied.json()["unchanged"] is False
    assert back("store", "copy", "--from", db.url, "--json", env=environ).json()["unchanged"]
    issued = ca.sign_csr((certcli.cwd / "wait.csr").read_bytes(), days=30)
    (tmp_path / "wait.pem").write_bytes(issued.cert_pem + issued.chain_pem)
    back.env["CERTCLI_PASSPHRASE"] = PASSPHRASE
    ok(back("upload", "wait.example.com", "--cert", tmp_path / "wait.pem"))
    live = back.config_dir / "certs" / "wait.example.com" / "live"
    assert (live / "privkey.pem").read_bytes() == key
    assert (live / "cert.pem").read_bytes() == issued.cert_pem

    # another key waiting, in the database or in the file store: a conflict, nothing written
    import psycopg

    with psycopg.connect(db.url, password=db.password) as connection:
        connection.execute("UPDATE certcli.pending SET csr = 'x' WHERE name = 'done.example.com'")
    before = _rows(db)
    clash = _copy(certcli, db)
    assert clash.code == 5, clash.stderr
    assert "the pending key of 'done.example.com' exists in the PostgreSQL store" in clash.stderr
    assert _rows(db) == before
    (tmp_path / "other").mkdir()
    other = Certcli(tmp_path / "other" / "config", tmp_path / "other")
    ok(other("csr", "wait.example.com", "--out", "w.csr"))
    kept = (other.config_dir / "certs" / "wait.example.com" / "pending" / "csr.pem").read_bytes()
    refused = other("store", "copy", "--from", db.url, env=environ)
    assert refused.code == 5, refused.stderr
    assert "the pending key of 'done.example.com'" not in refused.stderr  # none there: new
    assert "the pending key of 'wait.example.com' exists in" in refused.stderr
    assert not (other.config_dir / "certs" / "done.example.com").exists()
    pending_csr = other.config_dir / "certs" / "wait.example.com" / "pending" / "csr.pem"
    assert pending_csr.read_bytes() == kept
