"""One PostgreSQL store, several hosts: each host a certcli configuration of its own (its
config dir, its live/), all against the lab's one database and Pebble, through the real
executable."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CERTCLI, Certcli, ok, on_postgres, started_postgres
from tests.lab import Lab
from tests.lab.postgres import Postgres

pytestmark = pytest.mark.integration


def _hosts(tmp_path: Path, lab: Lab, server: Postgres) -> list[Certcli]:
    """Three hosts of one fresh store: host-a, host-b, host-c."""
    url = server.new_database()
    found = []
    for name in ("host-a", "host-b", "host-c"):
        home = tmp_path / name
        home.mkdir(mode=0o700)
        found.append(on_postgres(Certcli(home / "config", home), url, server, name).point_at(lab))
    return found


@pytest.fixture
def hosts(tmp_path: Path, lab: Lab, postgres: Postgres) -> list[Certcli]:
    return _hosts(tmp_path, lab, postgres)


@pytest.fixture
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Postgres]:
    """A server of the test's own, which it may stop and restart (the session's stays up)."""
    yield from started_postgres(tmp_path_factory, "own-postgres")


def _issue(host: Certcli, lab: Lab, *names: str) -> None:
    ok(host("issue", *names, "--each", "--webroot", lab.webroot, "--agree-tos"))


def _serving(host: Certcli, name: str) -> str:
    return os.readlink(host.config_dir / "live" / name)


def _db(postgres: Postgres, host: Certcli, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(host.env["CERTCLI_STORE_URL"], password=postgres.password) as c:
        return c.execute(sql).fetchall()


def test_a_second_host_serves_what_the_first_issued_and_runs_its_deploy_hook(
    hosts: list[Certcli], lab: Lab, postgres: Postgres
) -> None:
    a, b, _ = hosts
    _issue(a, lab, "one.hosts.certcli.test", "two.hosts.certcli.test")
    assert _serving(a, "one.hosts.certcli.test") == "../archive/one.hosts.certcli.test/0001"
    hook_log = b.cwd / "deployed"
    b.env["CERTCLI_HOOKS_DEPLOY"] = f'echo "$CERTCLI_NAME $RENEWED_LINEAGE" >> {hook_log}'

    run = ok(b("sync"))
    assert run.stdout.splitlines() == [
        "one.hosts.certcli.test: now serving version 1.",
        "two.hosts.certcli.test: now serving version 1.",
    ]
    for name in ("one.hosts.certcli.test", "two.hosts.certcli.test"):
        live_a, live_b = (h.config_dir / "live" / name for h in (a, b))
        for filename in ("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"):
            assert (live_b / filename).read_bytes() == (live_a / filename).read_bytes()
        assert (live_b / "privkey.pem").stat().st_mode & 0o777 == 0o600
    assert hook_log.read_text().splitlines() == [
        f"one.hosts.certcli.test {b.config_dir / 'live' / 'one.hosts.certcli.test'}",
        f"two.hosts.certcli.test {b.config_dir / 'live' / 'two.hosts.certcli.test'}",
    ]

    # nothing changed: nothing written, no hook; the host table says what each serves
    assert ok(b("sync")).stdout == ""
    assert len(hook_log.read_text().splitlines()) == 2
    rows = dict(_db(postgres, b, "SELECT host, serving FROM certcli.hosts"))
    assert rows["host-b"] == {"one.hosts.certcli.test": 1, "two.hosts.certcli.test": 1}

    # a renewal on a: status says b serves the old version until b's next sync
    ok(a("renew", "--force", "one.hosts.certcli.test"))
    served = {h["host"]: h for h in ok(a("status", "--json")).json()["hosts"]}
    assert served["host-b"]["serving"] == {"one.hosts.certcli.test": 1, "two.hosts.certcli.test": 1}
    assert served["host-a"]["serving"]["one.hosts.certcli.test"] == 2
    detail = ok(a("status", "one.hosts.certcli.test")).stdout
    assert "host-b: version 1, not the current 2" in detail
    assert "Host host-b: serves the current version of 1 of 2" in ok(a("status")).stdout
    assert ok(b("sync")).stdout == "one.hosts.certcli.test: now serving version 2.\n"
    assert _serving(b, "one.hosts.certcli.test") == "../archive/one.hosts.certcli.test/0002"
    ok(a("delete", "two.hosts.certcli.test", "--yes"))
    assert ok(b("sync")).stdout == "two.hosts.certcli.test: removed (deleted from the store).\n"
    assert not os.path.lexists(b.config_dir / "live" / "two.hosts.certcli.test")
    assert not (b.config_dir / "archive" / "two.hosts.certcli.test").exists()


def test_keys_are_only_encrypted_in_the_database_and_no_passphrase_is_refused(
    hosts: list[Certcli], lab: Lab, postgres: Postgres
) -> None:
    a, b, _ = hosts
    _issue(a, lab, "keys.hosts.certcli.test")
    ok(a("csr", "csr.hosts.certcli.test"))
    blobs = _db(
        postgres,
        a,
        "SELECT key_encrypted FROM certcli.versions UNION ALL "
        "SELECT key_encrypted FROM certcli.accounts UNION ALL "
        "SELECT key_encrypted FROM certcli.pending",
    )
    assert len(blobs) == 3
    for (blob,) in blobs:
        assert bytes(blob).startswith(b"certcli-encrypted-key-v1\n")
        assert b"PRIVATE KEY" not in bytes(blob)

    del b.env["CERTCLI_PASSPHRASE"]
    run = b("status")
    assert run.code == 2 and run.stdout == ""
    assert run.stderr.startswith(
        "certcli: error: the PostgreSQL store at postgresql://certcli@127.0.0.1"
    )
    assert "holds keys only encrypted" in run.stderr and "Traceback" not in run.stderr
    b.env["CERTCLI_PASSPHRASE"] = "not the passphrase"
    run = b("sync")
    assert run.code == 4 and "the passphrase does not open" in run.stderr
    assert not os.path.lexists(b.config_dir / "live" / "keys.hosts.certcli.test")


def test_three_hosts_renewing_at_once_renew_each_lineage_once(
    hosts: list[Certcli], lab: Lab, postgres: Postgres
) -> None:
    names = [f"r{i}.hosts.certcli.test" for i in range(8)]
    _issue(hosts[0], lab, *names)
    orders = lab.orders_created()
    procs = [
        subprocess.Popen(
            [str(CERTCLI), "renew", "--force", "--json"],
            env=h.environ(),
            cwd=h.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for h in hosts
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        import json

        results.append({r["name"]: r for r in json.loads(out)["results"]})
    assert lab.orders_created() - orders == len(names)  # one order per lineage at the CA
    for name in names:
        actions = sorted(r[name]["action"] for r in results)
        assert actions == ["renewed", "skipped", "skipped"], (name, actions)
        for r in results:
            if r[name]["action"] == "skipped":
                assert "renewed by host-" in r[name]["reason"]
                assert "(PID " in r[name]["reason"]
    versions = dict(_db(postgres, hosts[0], "SELECT name, live_version FROM certcli.lineages"))
    assert versions == dict.fromkeys(names, 2)
    for h in hosts:  # each renew ends with a sync; one that ended first syncs again
        ok(h("sync"))
        assert {_serving(h, n) for n in names} == {f"../archive/{n}/0002" for n in names}


def test_a_host_killed_mid_renewal_loses_its_lock_and_another_completes_it(
    hosts: list[Certcli], lab: Lab, postgres: Postgres
) -> None:
    a, b, _ = hosts
    names = [f"k{i}.hosts.certcli.test" for i in range(6)]
    _issue(a, lab, *names)
    proc = subprocess.Popen(
        [str(CERTCLI), "renew", "--force", "--parallel", "1"],
        env=a.environ(),
        cwd=a.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    held: list[tuple] = []
    deadline = time.monotonic() + 60
    while not held and time.monotonic() < deadline and proc.poll() is None:
        held = _db(
            postgres,
            a,
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE "
            "'certcli host-a%'",
        )
    proc.send_signal(signal.SIGKILL)  # mid-renewal: it holds a lineage's lock
    proc.wait()
    assert held, "host-a never held a lineage lock"
    run = ok(b("renew", "--force", "--json", *names))
    actions = {r["name"]: r["action"] for r in run.json()["results"]}
    assert actions == dict.fromkeys(names, "renewed")  # no lock left behind
    assert ok(b("status", "--json")).json()["lineages"][0]["status"] == "active"


def test_the_database_down_fails_in_one_line_and_live_keeps_serving(
    tmp_path: Path, lab: Lab, own: Postgres
) -> None:
    a, _, _ = _hosts(tmp_path, lab, own)
    postgres = own
    _issue(a, lab, "down.hosts.certcli.test")
    live = a.config_dir / "live" / "down.hosts.certcli.test"
    before = (live / "fullchain.pem").read_bytes()
    postgres.stop()
    try:
        for argv in (
            ("status",),
            ("renew",),
            ("sync",),
            ("issue", "x.hosts.certcli.test", "--webroot", lab.webroot),
        ):
            run = a(*map(str, argv))
            assert run.code == 5, (argv, run.stderr)
            lines = run.stderr.strip().splitlines()
            assert lines[0].startswith("certcli: error: cannot reach the PostgreSQL store at "), (
                lines
            )
            assert "Traceback" not in run.stderr
        assert (live / "fullchain.pem").read_bytes() == before
    finally:
        postgres.start()
    assert ok(a("renew")).code == 0


def test_the_database_restarted_mid_run_fails_that_run_cleanly_and_the_next_succeeds(
    tmp_path: Path, lab: Lab, own: Postgres
) -> None:
    a, _, _ = _hosts(tmp_path, lab, own)
    postgres = own
    names = [f"d{i}.hosts.certcli.test" for i in range(10)]
    _issue(a, lab, *names)
    proc = subprocess.Popen(
        [str(CERTCLI), "renew", "--force", "--parallel", "1"],
        env=a.environ(),
        cwd=a.cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    postgres.restart()
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err
    if proc.returncode != 0:  # the restart met the run: its failures are one line each
        assert proc.returncode == 1, err
        assert "PostgreSQL store" in err
    run = ok(a("renew", "--force", "--json"))
    assert {r["action"] for r in run.json()["results"]} == {"renewed"}
    versions = dict(_db(postgres, a, "SELECT name, live_version FROM certcli.lineages"))
    assert all(v >= 2 for v in versions.values()) and set(versions) == set(names)


def test_a_failure_on_one_host_backs_off_every_host(
    hosts: list[Certcli], lab: Lab, postgres: Postgres
) -> None:
    a, b, _ = hosts
    _issue(a, lab, "fail.hosts.certcli.test")
    # host-a cannot reach the CA: its forced renewal fails, and the backoff is the store's
    run = a("renew", "--force", env={"CERTCLI_SERVER": "https://127.0.0.1:9/dir"})
    assert run.code == 1, run.stderr
    (entry,) = ok(b("status", "--json")).json()["lineages"]
    assert entry["status"] == "failed" and entry["next_attempt"]
    # due now (a name its certificate lacks), but host-b waits out host-a's backoff
    import tomllib

    import psycopg
    import tomli_w

    settings = tomllib.loads(_db(postgres, a, "SELECT settings FROM certcli.lineages")[0][0])
    settings["domains"] = ["fail.hosts.certcli.test", "www.fail.hosts.certcli.test"]
    wider = tomli_w.dumps(settings)

    with psycopg.connect(a.env["CERTCLI_STORE_URL"], password=postgres.password) as c:
        c.execute("UPDATE certcli.lineages SET settings = %s", (wider,))
    before = len(lab.acme_requests())
    run = ok(b("renew", "-v"))
    assert "fail.hosts.certcli.test: failed before; next attempt at" in run.stdout
    assert len(lab.acme_requests()) == before
