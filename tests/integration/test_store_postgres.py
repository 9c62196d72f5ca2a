"""The PostgreSQL store's schema through the real executable, against the lab's real
PostgreSQL (run as its own unprivileged user): `certcli store migrate` creates it, finds
nothing to do the second time, lets two hosts migrating at once take turns, and every
fault (a wrong password, the server down, a newer schema, a password in the URL) is one
line and a documented exit code, with nothing changed."""

from __future__ import annotations

import concurrent.futures
from typing import TYPE_CHECKING

import pytest

from tests.conftest import Certcli, ok

if TYPE_CHECKING:
    from tests.lab.postgres import Postgres

pytestmark = pytest.mark.integration

TABLES = {"schema_version", "store", "lineages", "versions", "accounts", "hosts", "pending"}
TABLES |= {"retired_accounts"}


@pytest.fixture
def store(certcli: Certcli, postgres: Postgres) -> Certcli:
    """certcli pointed at the lab's database, its schema dropped first."""
    import psycopg

    with psycopg.connect(postgres.url, password=postgres.password) as connection:
        connection.execute("DROP SCHEMA IF EXISTS certcli CASCADE")
    certcli.env.update({**postgres.env(), "CERTCLI_STORE_URL": postgres.url})
    return certcli


def _tables(postgres: Postgres) -> set[str]:
    import psycopg

    with psycopg.connect(postgres.url, password=postgres.password) as connection:
        rows = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'certcli'"
        ).fetchall()
    return {r[0] for r in rows}


def _shown(postgres: Postgres) -> str:
    return postgres.url.split("?")[0]


def test_migrate_creates_the_schema_once(store: Certcli, postgres: Postgres) -> None:
    first = ok(store("store", "migrate", "--json")).json()
    assert first == {"url": _shown(postgres), "schema_version": 2, "applied": [1, 2]}
    assert _tables(postgres) == TABLES
    again = ok(store("store", "migrate"))
    assert again.stdout.strip() == f"{_shown(postgres)} is at schema version 2: nothing to do."
    assert ok(store("store", "migrate", "--json")).json()["applied"] == []


def test_hosts_migrating_at_once_take_turns(store: Certcli, postgres: Postgres) -> None:
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: store("store", "migrate", "--json"), range(4)))
    assert [r.code for r in runs] == [0, 0, 0, 0], [r.stderr for r in runs]
    applied = sorted(tuple(r.json()["applied"]) for r in runs)
    assert applied == [(), (), (), (1, 2)]  # one host migrated; the others found it done
    assert _tables(postgres) == TABLES


def test_a_password_in_the_url_is_refused_and_never_shown(
    store: Certcli, postgres: Postgres
) -> None:
    secret = "s3cret-in-url"
    with_password = postgres.url.replace("certcli@", f"certcli:{secret}@", 1)
    for args, env in (
        (("--url", with_password), {}),
        ((), {"CERTCLI_STORE_URL": with_password}),
        (("--url", f"{postgres.url}?password={secret}"), {}),
    ):
        run = store("store", "migrate", *args, env=env)
        assert run.code == 2, run.stderr
        assert "holds a password" in run.stderr and "PGPASSWORD" in run.stderr
        assert secret not in run.stderr + run.stdout
    assert _tables(postgres) == set()


def test_faults_are_one_line_and_change_nothing(store: Certcli, postgres: Postgres) -> None:
    run = store("store", "migrate", env={"PGPASSWORD": "wrong"})
    assert run.code == 5
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith(
        f"certcli: error: cannot reach the PostgreSQL store at {_shown(postgres)}"
    )
    assert "password authentication failed" in line
    not_a_url = store("store", "migrate", "--url", "mysql://x@127.0.0.1/db")
    assert (not_a_url.code, "is not a PostgreSQL URL" in not_a_url.stderr) == (2, True)
    assert _tables(postgres) == set()

    # a schema newer than this certcli: refused, and left as it is
    ok(store("store", "migrate"))
    import psycopg

    with psycopg.connect(postgres.url, password=postgres.password) as connection:
        connection.execute("INSERT INTO certcli.schema_version (version) VALUES (99)")
    newer = store("store", "migrate")
    assert newer.code == 5
    assert "has schema version 99, newer than this certcli knows (2)" in newer.stderr
    assert "Traceback" not in newer.stderr


def test_the_server_down_is_one_line(store: Certcli, postgres: Postgres) -> None:
    postgres.stop()
    try:
        run = store("store", "migrate")
    finally:
        postgres.start()
    assert run.code == 5, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith(
        f"certcli: error: cannot reach the PostgreSQL store at {_shown(postgres)}"
    )
    assert ok(store("store", "migrate", "--json")).json()["applied"] == [1, 2]


@pytest.mark.file_store
def test_the_file_store_has_nothing_to_migrate(certcli: Certcli) -> None:
    run = certcli("store", "migrate")
    assert run.code == 2
    assert "no PostgreSQL store to migrate: this store is the file store" in run.stderr


def test_a_store_named_in_config_toml_is_the_store_of_every_command(
    store: Certcli, postgres: Postgres
) -> None:
    del store.env["CERTCLI_STORE_URL"]
    store.env["CERTCLI_PASSPHRASE"] = "a passphrase"
    store.config_dir.mkdir(parents=True, exist_ok=True)
    (store.config_dir / "config.toml").write_text(f'[store]\nurl = "{postgres.url}"\n')
    for args in (("status",), ("renew",), ("issue", "x.certcli.test", "--webroot", "/tmp")):
        run = store(*args)  # not migrated yet: said, and nothing done anywhere
        assert run.code == 5, (args, run.stderr)
        assert "has schema version 0" in run.stderr and "`certcli store migrate`" in run.stderr
        assert len(run.stderr.strip().splitlines()) == 1
    assert not (store.config_dir / "certs").exists()  # nothing was written to the file store
    # config stays usable, to read and change the setting
    assert ok(store("config", "get", "store.url")).stdout.strip() == postgres.url
    ok(store("store", "migrate"))
    assert ok(store("status", "--json")).json()["lineages"] == []
    assert not (store.config_dir / "certs").exists()
