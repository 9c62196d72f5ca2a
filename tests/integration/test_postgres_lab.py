"""Smoke tests of the lab's PostgreSQL server: it answers for real on loopback, as the
`certcli` role, by SCRAM only, and behaves as the shared store's fault tests expect (a
restart, a crash, a client killed while holding an advisory lock)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import started_postgres
from tests.lab.postgres import Postgres

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def own_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A server of this module's own, for tests that restart or kill it."""
    yield from started_postgres(tmp_path_factory, "postgres-faults")


def test_the_certcli_role_logs_in_over_tcp_loopback_by_scram(
    postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert postgres.url == f"postgresql://certcli@127.0.0.1:{postgres.port}/certcli"
    assert postgres.password not in postgres.url
    # the password from the environment, as certcli will take it (libpq's PGPASSWORD)
    monkeypatch.setenv("PGPASSWORD", postgres.env()["PGPASSWORD"])
    with psycopg.connect(postgres.url, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(
            "SELECT current_user, current_database(), host(inet_server_addr()),"
            " current_setting('listen_addresses')"
        ).fetchone()
        assert conn.pgconn.used_password
    assert row == ("certcli", "certcli", "127.0.0.1", "127.0.0.1")
    # the role's password is stored as a SCRAM verifier, and TCP takes nothing weaker
    stored = postgres.psql("SELECT rolpassword FROM pg_authid WHERE rolname = 'certcli'")
    assert stored.startswith("SCRAM-SHA-256$")
    methods = postgres.psql(
        "SELECT DISTINCT auth_method FROM pg_hba_file_rules WHERE type LIKE 'host%'"
    )
    assert methods.split() == ["scram-sha-256"]


def test_the_certcli_role_owns_its_database_and_may_create_tables(postgres: Postgres) -> None:
    with postgres.connect() as conn:
        conn.execute("CREATE TABLE lab_smoke (id int PRIMARY KEY)")
        conn.execute("INSERT INTO lab_smoke VALUES (1)")
        assert conn.execute("SELECT id FROM lab_smoke").fetchall() == [(1,)]
        conn.execute("DROP TABLE lab_smoke")
    owner = postgres.psql(
        "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'certcli'"
    )
    assert owner == "certcli"
    with postgres.connect() as conn:
        rights = conn.execute(
            "SELECT rolsuper, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = 'certcli'"
        ).fetchone()
    assert rights == (False, False, False)  # an ordinary role, as a DBA would give certcli


def test_a_wrong_or_missing_password_is_refused(
    postgres: Postgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", "/nonexistent")  # no ~/.pgpass of the machine's
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        postgres.connect(password="not-" + postgres.password)
    with pytest.raises(psycopg.OperationalError, match="no password supplied"):
        psycopg.connect(postgres.url, connect_timeout=5)
    # nor may a client log in as the superuser over TCP
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{postgres.port}/postgres",
            password=postgres.password,
            connect_timeout=5,
        )


def test_the_data_survives_restart_and_a_crash(own_postgres: Postgres) -> None:
    with own_postgres.connect() as conn:
        conn.execute("CREATE TABLE survives (note text)")
        conn.execute("INSERT INTO survives VALUES ('before')")
    held = own_postgres.connect()
    port = own_postgres.port

    own_postgres.restart()
    assert own_postgres.port == port
    # a session of the old server is gone: its next query fails, a new one works
    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")
    held.close()
    with own_postgres.connect() as conn:
        conn.execute("INSERT INTO survives VALUES ('after restart')")

    own_postgres.kill()
    with pytest.raises(psycopg.OperationalError):
        own_postgres.connect()
    own_postgres.start()  # crash recovery
    with own_postgres.connect() as conn:
        notes = [row[0] for row in conn.execute("SELECT note FROM survives ORDER BY note")]
    assert notes == ["after restart", "before"]


HOLDER = """
import sys, time, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True, connect_timeout=5)
conn.execute("SELECT pg_advisory_lock(%s)", (int(sys.argv[2]),))
print("held", flush=True)
time.sleep(120)
"""


def test_an_advisory_lock_of_a_killed_client_is_released(own_postgres: Postgres) -> None:
    key = 1414
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, own_postgres.url, str(key)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **own_postgres.env()},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        with own_postgres.connect() as conn:
            assert conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone() == (False,)
            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=10)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                taken = conn.execute("SELECT pg_try_advisory_lock(%s)", (key,)).fetchone()
                if taken == (True,):
                    break
                time.sleep(0.01)
            assert taken == (True,), "the dead client's advisory lock was never released"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
