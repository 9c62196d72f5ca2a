"""`make bench`'s many-hosts rows (or alone: `python -m tests.bench.hosts`): one PostgreSQL
store, a real server of the lab's (tests/lab/postgres.py), and several hosts, each a certcli
configuration of its own.

- 10,000 lineages: `renew` with nothing due and `sync` with nothing changed, on one host;
- 3 hosts running `renew --force` of 300 lineages at once against the lab's Pebble, each
  lineage renewed exactly once (counted: versions in the database, orders in Pebble's log),
  against one host doing it alone.

The 10,000 lineages are one real issued lineage cloned in SQL (its rows under new names),
as the file-store rows clone one lineage's files. It replaces the "Many hosts" section of
docs/benchmarks.md and leaves the rest as it is. No test asserts a time.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from tests.bench.__main__ import CERTCLI, ROOT, Row, Sample, run
from tests.lab import Lab
from tests.lab.postgres import Postgres

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
LINEAGES = int(os.environ.get("BENCH_PG_LINEAGES", "10000"))
FORCED = int(os.environ.get("BENCH_PG_FORCED", "300"))
HEADING = "## Many hosts (PostgreSQL)"


class Hosts:
    def __init__(self, work: Path, lab: Lab, db: Postgres) -> None:
        self.work, self.lab, self.db = work, lab, db
        self.base = {k: v for k, v in os.environ.items() if not k.startswith("CERTCLI_")}
        self.idle_orders = 0

    def env(self, url: str, host: str) -> dict[str, str]:
        home = self.work / host
        home.mkdir(mode=0o700, exist_ok=True)
        return {
            **self.base,
            **self.lab.env(),
            **self.db.env(),
            "CERTCLI_CONFIG_DIR": str(home / f"config-{url.rsplit('/', 1)[1]}"),
            "CERTCLI_STORE_URL": url,
            "CERTCLI_STORE_HOST": host,
            "CERTCLI_PASSPHRASE": "bench passphrase",
            "CERTCLI_RENEWAL_JITTER": "0",
        }

    def certcli(self, env: dict[str, str], *args: str) -> Sample:
        return run([str(CERTCLI), *args, "-q"], env, self.work)

    def issue(self, env: dict[str, str], names: list[str]) -> None:
        for start in range(0, len(names), 100):
            argv = ["issue", *names[start : start + 100], "--each"]
            self.certcli(env, *argv, "--webroot", str(self.lab.webroot), "--agree-tos")

    def sql(self, url: str, statement: str) -> None:
        import psycopg

        with psycopg.connect(url, password=self.db.password, autocommit=True) as c:
            c.execute(statement)

    def count(self, url: str, statement: str) -> int:
        import psycopg

        with psycopg.connect(url, password=self.db.password, autocommit=True) as c:
            row = c.execute(statement).fetchone()
        return int(row[0]) if row else 0

    # -- 10,000 lineages, nothing to do ----------------------------------------------------

    def idle(self) -> dict[str, Row]:
        url = self.db.new_database()
        env = self.env(url, "idle-host")
        origin = "origin.hosts-bench.certcli.test"
        self.issue(env, [origin])
        # clones of the one lineage, in SQL: its settings (a new name, the same domains, as
        # the file store's clones: other domains would not be covered, and so due), state
        # and version rows under each new name
        self.sql(
            url,
            "INSERT INTO certcli.lineages (name, settings, state, live_version) "
            f"SELECT 'c' || n || '.hosts-bench.certcli.test', replace(settings, "
            f"'name = \"{origin}\"', 'name = \"c' || n || '.hosts-bench.certcli.test\"'), "
            "state, live_version "
            f"FROM certcli.lineages, generate_series(1, {LINEAGES - 1}) AS n "
            f"WHERE name = '{origin}'",
        )
        self.sql(
            url,
            "INSERT INTO certcli.versions "
            "(name, version, cert, chain, key_encrypted, meta, sha256) "
            "SELECT l.name, v.version, v.cert, v.chain, v.key_encrypted, v.meta, v.sha256 "
            "FROM certcli.versions v JOIN certcli.lineages l ON l.name <> v.name "
            f"WHERE v.name = '{origin}'",
        )
        rows = {
            "first sync": Row(f"sync, {LINEAGES:,} lineages new to this host (once)"),
            "sync": Row(f"sync, nothing changed, {LINEAGES:,} lineages"),
            "renew": Row(f"renew, nothing due, {LINEAGES:,} lineages, per host"),
        }
        before = self.lab.orders_created()
        rows["first sync"].samples.append(self.certcli(env, "sync"))
        self.certcli(env, "renew")  # the first run reads every lineage and keeps its index
        for _ in range(RUNS):
            rows["sync"].samples.append(self.certcli(env, "sync"))
            rows["renew"].samples.append(self.certcli(env, "renew"))
        # nothing was due: a clone its certificate did not cover would have been renewed
        self.idle_orders = self.lab.orders_created() - before
        return rows

    # -- 3 hosts, renew --force of 300 lineages at once -----------------------------------

    def forced(self) -> tuple[dict[str, Row], list[str]]:
        rows = {
            "one": Row(f"renew --force, {FORCED} lineages, one host alone"),
            "three": Row(f"renew --force, {FORCED} lineages, 3 hosts at once (the slowest)"),
        }
        checks: list[str] = []
        for round_ in range(max(1, RUNS // 2)):
            url = self.db.new_database()
            names = [f"f{i}-{round_}.hosts-bench.certcli.test" for i in range(FORCED)]
            envs = [self.env(url, f"host-{h}") for h in "abc"]
            self.issue(envs[0], names)
            rows["one"].samples.append(self.certcli(envs[0], "renew", "--force"))
            before = self.lab.orders_created()
            start = time.perf_counter()
            procs = [
                subprocess.Popen(
                    [str(CERTCLI), "renew", "--force", "-q"],
                    env=env,
                    cwd=self.work,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for env in envs
            ]
            usages = [os.wait4(p.pid, 0) for p in procs]
            wall = time.perf_counter() - start
            ok = all(status == 0 for _, status, _ in usages)
            rss = max(usage.ru_maxrss for _, _, usage in usages)
            cpu = sum(u.ru_utime + u.ru_stime for _, _, u in usages)
            rows["three"].samples.append(Sample(wall, rss, ok, cpu=cpu))
            orders = self.lab.orders_created() - before
            versions = self.count(
                url, "SELECT count(*) FROM certcli.lineages WHERE live_version = 3"
            )
            checks.append(
                f"round {round_ + 1}: {orders} orders at the CA for {FORCED} lineages, "
                f"{versions} of {FORCED} lineages at version 3 (renewed exactly once by the "
                "three), every host's exit status 0: " + ("yes" if ok else "no")
            )
        return rows, checks


def section(
    idle: dict[str, Row],
    forced: dict[str, Row],
    checks: list[str],
    idle_orders: int,
    load: tuple[float, float],
) -> str:
    lines = [
        HEADING,
        "",
        "Written by `make bench` (tests/bench/hosts.py): one PostgreSQL store (the lab's "
        "server, PostgreSQL 15 on loopback, fsync off), each host a certcli configuration of "
        "its own on this machine. Median of the runs, min and max; peak memory of the "
        "process (of the largest, for hosts at once); CPU s: the process's own user + system "
        "time (of the three together, for hosts at once), what a busy machine's wall hides. "
        "Load average (1 min) at the start and "
        f"at the end: {load[0]:.1f}, {load[1]:.1f} (other work may share the machine).",
        "",
        "| what | median s | min s | max s | max RSS MiB | median CPU s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r.label} | {r.cells()} | {statistics.median(x.cpu for x in r.samples):.3f} |"
        for r in [*idle.values(), *forced.values()]
    ]
    renew, sync = idle["renew"].median, idle["sync"].median
    one, three = forced["one"], forced["three"]
    ratios = [t.wall / o.wall for o, t in zip(one.samples, three.samples, strict=False)]
    lines += [
        "",
        f"- renew with nothing due over {LINEAGES:,} lineages: {renew:.3f} s per host, "
        f"{verdict(renew, 1)} (target ≤ 1 s); sync with nothing changed: {sync:.3f} s, "
        f"{verdict(sync, 0.5)} (target ≤ 0.5 s), one query to the database; orders at the "
        f"CA meanwhile: {idle_orders}.",
        f"- 3 hosts at once take {statistics.median(ratios):.2f}x the time of one host "
        f"alone for {FORCED} forced renewals (the same CA and the same 2 cores: the hosts "
        "share the work, they do not multiply it).",
        *[f"- {c}" for c in checks],
    ]
    return "\n".join(lines) + "\n"


def verdict(seconds: float, target: float) -> str:
    return "met" if seconds <= target else "MISSED"


def write(text: str) -> None:
    """Replace this section of docs/benchmarks.md (or add it), keeping the rest."""
    path = ROOT / "docs" / "benchmarks.md"
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    if HEADING in current:
        start = current.index(HEADING)
        end = current.find("\n## ", start + len(HEADING))
        current = current[:start] + (current[end + 1 :] if end != -1 else "")
    path.write_text(current.rstrip("\n") + "\n\n" + text)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="certcli-bench-hosts-"))
    lab = Lab.create(work / "lab", pebble_env={"PEBBLE_WFE_NONCEREJECT": "0"})
    db = Postgres.create(work / "postgres")
    lab.start()
    db.start()
    load_start = os.getloadavg()[0]
    try:
        bench = Hosts(work, lab, db)
        idle = bench.idle()
        forced, checks = bench.forced()
    finally:
        db.remove()
        lab.stop()
    load = (load_start, os.getloadavg()[0])
    text = section(idle, forced, checks, bench.idle_orders, load)
    write(text)
    print(text)
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
