"""`make bench`: certcli measured side by side with certbot and lego against the lab.

Every tool runs against the same lab (Pebble with PEBBLE_VA_NOSLEEP=1, BIND, the webroot
server), the tools alternating run by run so that machine drift hits all alike. Each row is
the median of RUNS runs (min and max shown) with the peak memory (max RSS) of the process.
It writes docs/benchmarks.md and docs/benchmarks-renew.png. No test asserts a time.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab import ACME_KEY_NAME, DELEGATION_ZONE, TSIG_ALGORITHM, Lab

ROOT = Path(__file__).resolve().parents[2]
# certcli as pip installs it (compiled bytecode, no editable-install finder), like certbot.
CERTCLI = ROOT / ".bench" / "certcli" / "bin" / "certcli"
CERTBOT = ROOT / ".bench" / "certbot" / "bin" / "certbot"
LEGO = shutil.which("lego") or "/usr/bin/lego"
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
BATCH = int(os.environ.get("BENCH_BATCH", "50"))
# lego waits this long between identifiers of one order (RFC2136_SEQUENCE_INTERVAL, 60 s by
# default); the bench gives it 1 s, in its favour.
LEGO_SEQUENCE_INTERVAL = os.environ.get("BENCH_LEGO_SEQUENCE_INTERVAL", "1")
SIZES = (10, 100, 1000)
# The scale section (`python -m tests.bench scale`, or BENCH_ONLY=scale make bench): fewer
# runs, as each row reads a store of SCALE_LINEAGES lineages or issues SCALE_BATCH certificates.
SCALE_RUNS = int(os.environ.get("BENCH_SCALE_RUNS", "3"))
SCALE_LINEAGES = int(os.environ.get("BENCH_SCALE_LINEAGES", "100000"))
SCALE_BATCH = int(os.environ.get("BENCH_SCALE_BATCH", "1000"))
SCALE_HEADING = "## Scale"


@dataclass
class Sample:
    wall: float
    rss_kb: int
    ok: bool = True
    stderr: str = ""
    cpu: float = 0.0  # user + system seconds (the scale rows show it: a busy machine's wall)


@dataclass
class Row:
    label: str
    samples: list[Sample] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def max_rss(self) -> int:
        return max(s.rss_kb for s in self.samples)

    def cells(self) -> str:
        walls = [s.wall for s in self.samples]
        rss = self.max_rss / 1024
        return f"{self.median:.3f} | {min(walls):.3f} | {max(walls):.3f} | {rss:.0f}"


def run(argv: list[str], env: dict[str, str], cwd: Path, *, check: bool = True) -> Sample:
    """Run a command to its end; its wall time and its peak memory (from wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0 and check:
        raise SystemExit(f"bench: {' '.join(map(str, argv[:3]))} failed:\n{err[-800:]}")
    cpu = usage.ru_utime + usage.ru_stime
    return Sample(wall, usage.ru_maxrss, status == 0, err, cpu)


def run_all(commands: list[tuple[list[str], dict[str, str]]], cwd: Path) -> Sample:
    """Run commands one after the other (a shell loop): the total time, the largest RSS."""
    samples = [run(argv, env, cwd) for argv, env in commands]
    return Sample(sum(s.wall for s in samples), max(s.rss_kb for s in samples))


class Bench:
    def __init__(self, work: Path, lab: Lab) -> None:
        self.work, self.lab = work, lab
        self.base = {k: v for k, v in os.environ.items() if not k.startswith("CERTCLI_")}
        self.counter = 0

    def name(self, tool: str) -> str:
        self.counter += 1
        return f"{tool}{self.counter}.certcli.test"

    # -- how each tool issues one HTTP-01 certificate --------------------------------------

    def certcli(self, domain: str) -> tuple[list[str], dict[str, str]]:
        env = {**self.base, **self.lab.env(), "CERTCLI_CONFIG_DIR": str(self.work / "certcli")}
        argv = [str(CERTCLI), "issue", domain, "--webroot", str(self.lab.webroot), "--agree-tos"]
        return [*argv, "-q"], env

    def certbot(self, domain: str) -> tuple[list[str], dict[str, str]]:
        d = self.work / "certbot"
        env = {**self.base, "REQUESTS_CA_BUNDLE": str(self.lab.ca_bundle)}
        argv = [str(CERTBOT), "certonly", "--non-interactive", "--agree-tos"]
        argv += ["-m", "bench@certcli.test", "--server", self.lab.directory_url]
        argv += [
            "--config-dir",
            str(d),
            "--work-dir",
            str(d / "work"),
            "--logs-dir",
            str(d / "logs"),
        ]
        argv += ["--webroot", "-w", str(self.lab.webroot), "-d", domain]
        return argv, env

    def lego(self, domain: str) -> tuple[list[str], dict[str, str]]:
        env = {**self.base, "LEGO_CA_CERTIFICATES": str(self.lab.ca_bundle)}
        argv = [LEGO, "--server", self.lab.directory_url, "--email", "bench@certcli.test"]
        argv += ["--accept-tos", "--http", "--http.webroot", str(self.lab.webroot)]
        argv += ["--domains", domain, "--path", str(self.work / "lego"), "run"]
        return argv, env

    def issuance(self) -> dict[str, Row]:
        tools: dict[str, Callable[[str], tuple[list[str], dict[str, str]]]] = {
            "certcli": self.certcli,
            "certbot": self.certbot,
            "lego": self.lego,
        }
        rows = {tool: Row(f"single HTTP-01 issuance: {tool}") for tool in tools}
        for tool, make in tools.items():  # a first issuance creates each tool's account
            argv, env = make(self.name(tool))
            run(argv, env, self.work)
        for _ in range(RUNS):
            for tool, make in tools.items():
                argv, env = make(self.name(tool))
                before = len(self.lab.acme_requests())
                rows[tool].samples.append(run(argv, env, self.work))
                rows[tool].requests.append(len(self.lab.acme_requests()) - before)
        return rows

    def request_sequence(self, tool: str) -> list[str]:
        make = {"certcli": self.certcli, "certbot": self.certbot, "lego": self.lego}[tool]
        argv, env = make(self.name(tool))
        before = len(self.lab.acme_requests())
        run(argv, env, self.work)
        return self.lab.acme_requests()[before:]

    # -- one apex + wildcard certificate by DNS-01 through CNAME delegation ---------------

    def dns01(self) -> tuple[dict[str, Row], str]:
        """certcli and lego, each writing TXT values at the delegation target by RFC 2136;
        certbot tried once, to show what it does."""
        target = f"bench.{DELEGATION_ZONE}"
        ours = self.work / "certcli-dns"
        shutil.copytree(self.work / "certcli" / "accounts", ours / "accounts")
        (ours / "config.toml").write_text(self.lab.dns_config(target))
        (ours / "config.toml").chmod(0o600)
        env_ours = {**self.base, **self.lab.env(), "CERTCLI_CONFIG_DIR": str(ours)}
        env_lego = {
            **self.base,
            "LEGO_CA_CERTIFICATES": str(self.lab.ca_bundle),
            "RFC2136_NAMESERVER": self.lab.dns_server,
            "RFC2136_TSIG_KEY": ACME_KEY_NAME,
            "RFC2136_TSIG_SECRET": self.lab.acme_tsig_secret,
            "RFC2136_TSIG_ALGORITHM": f"{TSIG_ALGORITHM}.",
            "RFC2136_SEQUENCE_INTERVAL": LEGO_SEQUENCE_INTERVAL,
        }

        def certcli(domain: str) -> tuple[list[str], dict[str, str]]:
            return [str(CERTCLI), "issue", domain, "--wildcard", "--agree-tos", "-q"], env_ours

        def lego(domain: str) -> tuple[list[str], dict[str, str]]:
            argv = [LEGO, "--server", self.lab.directory_url, "--email", "bench@certcli.test"]
            argv += ["--accept-tos", "--dns", "rfc2136", "--dns.resolvers", self.lab.dns_server]
            # Its check at every authoritative server would look their names up through the
            # system's resolver, off this machine: it asks the lab's BIND alone instead.
            argv += ["--dns.disable-cp"]
            argv += ["--domains", domain, "--domains", f"*.{domain}"]
            return [*argv, "--path", str(self.work / "lego"), "run"], env_lego

        tools = {"certcli": certcli, "lego": lego}
        rows = {tool: Row(f"apex + wildcard DNS-01 by delegation: {tool}") for tool in tools}
        for _ in range(RUNS):
            for tool, make in tools.items():
                domain = self.name(f"dns-{tool}")
                self.lab.delegate(domain, target)
                argv, env = make(domain)
                rows[tool].samples.append(run(argv, env, self.work))
        return rows, self.certbot_dns01(target)

    def certbot_dns01(self, target: str) -> str:
        """certbot-dns-rfc2136 updates the SAN's own zone, not the CNAME's target."""
        domain = self.name("dns-certbot")
        self.lab.delegate(domain, target)
        credentials = self.work / "rfc2136.ini"
        host, port = self.lab.dns_server.rsplit(":", 1)
        credentials.write_text(
            f"dns_rfc2136_server = {host}\ndns_rfc2136_port = {port}\n"
            f"dns_rfc2136_name = {ACME_KEY_NAME}\n"
            f"dns_rfc2136_secret = {self.lab.acme_tsig_secret}\n"
            f"dns_rfc2136_algorithm = {TSIG_ALGORITHM.upper()}\n"
        )
        credentials.chmod(0o600)
        argv, env = self.certbot(domain)
        argv = [*argv[: argv.index("--webroot")], "--dns-rfc2136"]
        argv += ["--dns-rfc2136-credentials", str(credentials)]
        argv += ["--dns-rfc2136-propagation-seconds", "1", "-d", domain, "-d", f"*.{domain}"]
        sample = run(argv, env, self.work, check=False)
        if sample.ok:
            return f"certbot issued it in {sample.wall:.3f} s"
        why = next(
            (
                line.strip()
                for line in sample.stderr.splitlines()
                if "REFUSED" in line or "rror" in line
            ),
            sample.stderr.strip().splitlines()[-1] if sample.stderr.strip() else "no output",
        )
        return f"certbot cannot: it failed ({why})"

    # -- 50 certificates ---------------------------------------------------------------------

    def batch(self) -> dict[str, Row]:
        """BATCH single-name certificates: `certcli issue --each` against a loop per peer."""
        rows = {
            tool: Row(f"{BATCH} certificates: {label}")
            for tool, label in (
                ("certcli", "certcli issue --each"),
                ("certbot", "certbot loop"),
                ("lego", "lego loop"),
            )
        }
        for _ in range(RUNS):
            domains = [self.name("batch") for _ in range(BATCH)]
            argv, env = self.certcli(domains[0])
            argv = [*argv[:2], *domains, "--each", *argv[3:]]
            rows["certcli"].samples.append(run(argv, env, self.work))
            for tool, make in (("certbot", self.certbot), ("lego", self.lego)):
                domains = [self.name("batch") for _ in range(BATCH)]
                rows[tool].samples.append(run_all([make(d) for d in domains], self.work))
        return rows

    # -- renew with nothing due, over N lineages -------------------------------------------

    def clone_certcli(self, n: int) -> Path:
        """N lineages cloned from one real lineage (a Pebble certificate), renamed."""
        source = self.work / "certcli" / "certs"
        origin = next(p for p in source.iterdir() if p.name.startswith("certcli"))
        root = self.work / f"certcli-{n}"
        shutil.copytree(self.work / "certcli" / "accounts", root / "accounts")
        for i in range(n):
            name = f"clone{i}.certcli.test"
            shutil.copytree(origin, root / "certs" / name, symlinks=True)
            toml = root / "certs" / name / "lineage.toml"  # a new name, the same domains
            toml.write_text(toml.read_text().replace(f'name = "{origin.name}"', f'name = "{name}"'))
        return root

    def clone_certbot(self, n: int) -> Path:
        """N certbot lineages cloned from one real one: archive/, live/ links, renewal conf."""
        src = self.work / "certbot"
        origin = next(p.stem for p in (src / "renewal").iterdir())
        root = self.work / f"certbot-{n}"
        shutil.copytree(src / "accounts", root / "accounts")
        for sub in ("archive", "live", "renewal"):
            (root / sub).mkdir(parents=True)
        conf = (src / "renewal" / f"{origin}.conf").read_text().replace(str(src), str(root))
        for i in range(n):
            name = f"clone{i}.certcli.test"
            shutil.copytree(src / "archive" / origin, root / "archive" / name)
            (root / "live" / name).mkdir()
            for link in (src / "live" / origin).iterdir():
                if link.is_symlink():
                    target = os.readlink(link).replace(origin, name)
                    os.symlink(target, root / "live" / name / link.name)
            (root / "renewal" / f"{name}.conf").write_text(conf.replace(origin, name))
        return root

    def renew(self) -> dict[tuple[str, int], Row]:
        rows: dict[tuple[str, int], Row] = {}
        for n in SIZES:
            ours, theirs = self.clone_certcli(n), self.clone_certbot(n)
            env_ours = {**self.base, **self.lab.env(), "CERTCLI_CONFIG_DIR": str(ours)}
            env_theirs = {**self.base, "REQUESTS_CA_BUNDLE": str(self.lab.ca_bundle)}
            certbot = [str(CERTBOT), "renew", "--no-random-sleep-on-renew"]
            certbot += ["--config-dir", str(theirs), "--work-dir", str(theirs / "work")]
            certbot += ["--logs-dir", str(theirs / "logs")]
            label = f"renew, nothing due, {n} lineages"
            row_cold = rows[("certcli-cold", n)] = Row(f"{label}: certcli, without its index")
            row_ours = rows[("certcli", n)] = Row(f"{label}: certcli")
            row_theirs = rows[("certbot", n)] = Row(f"{label}: certbot")
            for _ in range(RUNS):
                # A run that finds no renew-index.json reads every lineage and writes it (as
                # the first run after an upgrade, or after lineages are copied in); the runs
                # of cron after it read the index.
                (ours / "renew-index.json").unlink(missing_ok=True)
                for row in (row_cold, row_ours):
                    before = len(self.lab.acme_requests())
                    row.samples.append(run([str(CERTCLI), "renew"], env_ours, self.work))
                    row.requests.append(len(self.lab.acme_requests()) - before)
                row_theirs.samples.append(run(certbot, env_theirs, self.work))
        return rows

    def startup(self) -> list[Row]:
        ours = self.work / "certcli-1000"
        env = {**self.base, "CERTCLI_CONFIG_DIR": str(ours)}
        commands = {
            "certcli --version": [str(CERTCLI), "--version"],
            "certcli status (1,000 lineages)": [str(CERTCLI), "status"],
            "certbot --version": [str(CERTBOT), "--version"],
            "lego --version": [LEGO, "--version"],
        }
        rows = [Row(label) for label in commands]
        for _ in range(RUNS):
            for row, argv in zip(rows, commands.values(), strict=True):
                row.samples.append(run(argv, env, self.work))
        return rows


# -- scale: the file store with SCALE_LINEAGES lineages, SCALE_BATCH certificates at once ----


def clone_lineages(origin: Path, root: Path, n: int) -> None:
    """N lineages under root/certs made from one real lineage, fast enough for 100,000:
    the version's files hard-linked (the same bytes, as cloned ones would be), lineage.toml
    written with the new name, state.json copied (each lineage's own inode), links remade."""
    files, dirs, links = [], [], []
    for path in sorted(origin.rglob("*")):
        rel = path.relative_to(origin)
        if path.is_symlink():
            links.append((rel, os.readlink(path)))
        elif path.is_dir():
            dirs.append(rel)
        elif rel.parts[-1] not in ("lineage.toml", "state.json"):
            files.append(rel)
    toml = (origin / "lineage.toml").read_text()
    state = (origin / "state.json").read_bytes() if (origin / "state.json").exists() else None
    certs = root / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    source = origin
    for i in range(n):
        name = f"clone{i}.certcli.test"
        lineage = certs / name
        lineage.mkdir(mode=0o700)
        for rel in dirs:
            (lineage / rel).mkdir(mode=0o700)
        for rel in files:  # a file system caps an inode's links (ext4: 65,000)
            if i % 10_000 == 0:
                shutil.copy2(origin / rel, lineage / rel)
            else:
                os.link(source / rel, lineage / rel)
        if i % 10_000 == 0:
            source = lineage
        for rel, target in links:
            os.symlink(target, lineage / rel)
        text = toml.replace(f'name = "{origin.name}"', f'name = "{name}"')
        fd = os.open(lineage / "lineage.toml", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(text)
        if state is not None:
            fd = os.open(lineage / "state.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(state)


class Scale:
    """The rows of the scale section; they need only certcli and the lab's Pebble."""

    def __init__(self, bench: Bench) -> None:
        self.bench, self.work, self.lab = bench, bench.work, bench.lab

    def store(self) -> Path:
        """A store of SCALE_LINEAGES lineages cloned from one real issued lineage."""
        source = self.work / "certcli"
        if not (source / "certs").is_dir():  # one issuance: the account and the origin
            argv, env = self.bench.certcli(self.bench.name("certcli"))
            run(argv, env, self.work)
        origin = next(p for p in (source / "certs").iterdir() if p.name.startswith("certcli"))
        root = self.work / f"certcli-scale-{SCALE_LINEAGES}"
        if not root.exists():
            shutil.copytree(source / "accounts", root / "accounts")
            start = time.perf_counter()
            clone_lineages(origin, root, SCALE_LINEAGES)
            took = time.perf_counter() - start
            print(f"bench: {SCALE_LINEAGES} lineages cloned in {took:.1f} s", file=sys.stderr)
        return root

    def file_store(self) -> list[Row]:
        root = self.store()
        env = {**self.bench.base, **self.lab.env(), "CERTCLI_CONFIG_DIR": str(root)}
        n = f"{SCALE_LINEAGES:,}"
        renew = Row(f"file store, {n} lineages: renew, nothing due")
        status = Row(f"file store, {n} lineages: status --json")
        # The first run after the lineages appear reads each one and writes the index (the
        # 1,000-lineage rows measure that case); the runs of cron after it are measured.
        first = run([str(CERTCLI), "renew"], env, self.work)
        print(f"bench: the first renew (no index) took {first.wall:.1f} s", file=sys.stderr)
        first = run([str(CERTCLI), "status", "--json"], env, self.work)
        print(f"bench: the first status (no cache) took {first.wall:.1f} s", file=sys.stderr)
        for _ in range(SCALE_RUNS):
            before = len(self.lab.acme_requests())
            renew.samples.append(run([str(CERTCLI), "renew"], env, self.work))
            renew.requests.append(len(self.lab.acme_requests()) - before)
            status.samples.append(run([str(CERTCLI), "status", "--json"], env, self.work))
        return [renew, status]

    def batch(self) -> list[Row]:
        """SCALE_BATCH certificates in one `issue --each`, into a store with the account."""
        row = Row(f"{SCALE_BATCH:,} certificates: certcli issue --each")
        for i in range(SCALE_RUNS):
            root = self.work / f"certcli-batch-{i}"
            shutil.copytree(self.work / "certcli" / "accounts", root / "accounts")
            domains = [self.bench.name("scale") for _ in range(SCALE_BATCH)]
            argv, env = self.bench.certcli(domains[0])
            env = {**env, "CERTCLI_CONFIG_DIR": str(root)}
            argv = [*argv[:2], *domains, "--each", *argv[3:]]
            row.samples.append(run(argv, env, self.work))
            issued = sum(1 for _ in (root / "certs").iterdir())
            if issued != SCALE_BATCH:
                raise SystemExit(f"bench: issue --each stored {issued} of {SCALE_BATCH}")
            shutil.rmtree(root, ignore_errors=True)
        return [row]

    def postgres(self) -> list[Row]:
        """The PostgreSQL store's rows go here (10,000 lineages renew and sync per host; 3
        hosts renew --force of 300 lineages): each a Row, as file_store() makes them. None
        yet."""
        return []

    def rows(self) -> list[Row]:
        return [*self.file_store(), *self.batch(), *self.postgres()]


#: The targets of the scale section: a row's label start, its wall and max RSS limits.
SCALE_TARGETS = (
    ("renew, nothing due", "file store", 1.0, 150),
    ("status --json", "file store", 3.0, 150),
    ("certcli issue --each", "certificates", 60.0, 150),
)


def scale_section(rows: list[Row]) -> list[str]:
    """The Scale section of docs/benchmarks.md: its heading, table and targets."""
    lines = [
        SCALE_HEADING,
        "",
        f"Written by `python -m tests.bench scale` (or `BENCH_ONLY=scale make bench`) on"
        f" {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}."
        f" Each row: the median of {SCALE_RUNS} runs (`BENCH_SCALE_RUNS`). The store's"
        f" {SCALE_LINEAGES:,} lineages are one real lineage issued from the lab's Pebble,"
        " cloned under new names (its version's files hard-linked, its lineage.toml and"
        " state.json its own); `renew` and `status --json` run after one unmeasured run of"
        " each that wrote its cache (the renew index, the status cache: the runs of cron and"
        " of a monitoring check after it are measured), `status --json` writes to"
        " /dev/null. The certificates of the"
        f" batch row are {SCALE_BATCH:,} single-name HTTP-01 orders of one `certcli issue"
        " --each`, against the lab's Pebble, into a store with the account only. Load"
        f" average when written: {os.getloadavg()[0]:.1f} (CPU s: the process's own user +"
        " system time, what a busy machine's wall hides).",
        "",
        "| what | median s | min s | max s | max RSS MiB | median CPU s | ACME requests |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        requests = f"{max(row.requests)}" if row.requests else "-"
        cpu = statistics.median(s.cpu for s in row.samples)
        lines.append(f"| {row.label} | {row.cells()} | {cpu:.3f} | {requests} |")
    lines += ["", "Targets:", ""]
    for ending, kind, seconds, mib in SCALE_TARGETS:
        for row in rows:
            if row.label.endswith(ending) and kind in row.label:
                rss = row.max_rss / 1024
                wall = _verdict(row.median, seconds, at_most=True)
                memory = _verdict(rss, mib, at_most=True)
                lines.append(f"- {row.label}: {row.median:.3f} s, {wall}; {rss:.0f} MiB, {memory}")
    return lines


def merge_section(text: str, section: list[str]) -> str:
    """`text` with its Scale section replaced by `section` (up to the next `## ` heading),
    or, when it has none, with `section` put before "## How to reproduce" (else at the end):
    the rest of the file is kept as it was."""
    lines = text.rstrip("\n").split("\n") if text.strip() else ["# Benchmarks"]
    if SCALE_HEADING in lines:
        start = lines.index(SCALE_HEADING)
        end = next(
            (i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines)
        )
        tail = lines[end:]
        lines = [*lines[:start], *section, *([""] if tail else []), *tail]
    elif "## How to reproduce" in lines:
        at = lines.index("## How to reproduce")
        lines = [*lines[:at], *section, "", *lines[at:]]
    else:
        lines = [*lines, "", *section]
    return "\n".join(lines) + "\n"


def write_scale(rows: list[Row]) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else ""
    path.write_text(merge_section(text, scale_section(rows)))


def main_scale() -> int:
    """Only the scale section: the lab, certcli, and docs/benchmarks.md's Scale section."""
    work = Path(tempfile.mkdtemp(prefix="certcli-bench-scale-"))
    lab = Lab.create(work / "lab", pebble_env={"PEBBLE_WFE_NONCEREJECT": "0"})
    lab.start()
    try:
        rows = Scale(Bench(work, lab)).rows()
    finally:
        lab.stop()
    write_scale(rows)
    print("\n".join(scale_section(rows)))
    shutil.rmtree(work, ignore_errors=True)
    return 0


def plot(rows: dict[tuple[str, int], Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 4))
    for tool, label in (
        ("certcli", "certcli"),
        ("certcli-cold", "certcli, without its index"),
        ("certbot", "certbot"),
    ):
        axes.plot(SIZES, [rows[(tool, n)].median for n in SIZES], marker="o", label=label)
    axes.set_xscale("log")
    axes.set_xlabel("lineages")
    axes.set_ylabel("seconds (median)")
    axes.set_title("renew with nothing due")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def versions() -> str:
    def out(argv: list[str]) -> str:
        proc = subprocess.run(argv, capture_output=True, text=True)
        return (proc.stdout or proc.stderr).strip().splitlines()[0]

    return ", ".join(
        [
            out([str(CERTCLI), "--version"]),
            out([str(CERTBOT), "--version"]),
            out([LEGO, "--version"]),
            "pebble 2.4.0 (Debian)",
        ]
    )


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="certcli-bench-"))
    # No badNonce rejection: certbot retries a rejected nonce only once, and a benchmark
    # measures speed, not that (the test suite measures certcli's retries).
    lab = Lab.create(work / "lab", pebble_env={"PEBBLE_WFE_NONCEREJECT": "0"})
    lab.start()
    try:
        bench = Bench(work, lab)
        results = Results(
            issuance=bench.issuance(),
            sequences={t: bench.request_sequence(t) for t in ("certcli", "certbot", "lego")},
        )
        results.dns01, results.certbot_dns01 = bench.dns01()
        results.renew = bench.renew()
        results.startup = bench.startup()
        results.batch = bench.batch()
        scale = Scale(bench).rows()
    finally:
        lab.stop()
    write_report(results)
    write_scale(scale)
    plot(results.renew, ROOT / "docs" / "benchmarks-renew.png")
    print((ROOT / "docs" / "benchmarks.md").read_text())
    shutil.rmtree(work, ignore_errors=True)
    return 0


@dataclass
class Results:
    issuance: dict[str, Row]
    sequences: dict[str, list[str]]
    dns01: dict[str, Row] = field(default_factory=dict)
    certbot_dns01: str = ""
    renew: dict[tuple[str, int], Row] = field(default_factory=dict)
    startup: list[Row] = field(default_factory=list)
    batch: dict[str, Row] = field(default_factory=dict)


def ratio(a: Row, b: Row) -> tuple[float, str]:
    """a's time over b's, run by run: the median, and it with the range as text."""
    ratios = [x.wall / y.wall for x, y in zip(a.samples, b.samples, strict=True)]
    mid = statistics.median(ratios)
    return mid, f"{mid:.2f}x ({min(ratios):.2f} to {max(ratios):.2f})"


def _verdict(value: float, target: float, *, at_most: bool) -> str:
    met = value <= target if at_most else value >= target
    return f"{'met' if met else 'MISSED'} (target {'≤' if at_most else '≥'} {target:g})"


def write_report(r: Results) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (tests/bench/__main__.py); no test asserts a time.",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} cores, Linux {platform.release()},"
        f" Python {platform.python_version()}",
        f"- Tools: {versions()}",
        "- The lab: Pebble with `PEBBLE_VA_NOSLEEP=1` and `PEBBLE_WFE_NONCEREJECT=0` (certbot"
        " retries a rejected nonce only once), BIND and a static web server, all on loopback;"
        " each tool's account exists already.",
        f"- Each row: the median of {RUNS} runs, the tools alternating run by run; wall seconds,"
        " and the peak memory (max RSS, MiB) of the process (of the largest, for a loop).",
        "- certcli runs as `pip install .` installs it, in `.bench/certcli`; certbot in"
        " `.bench/certbot`; lego from Debian.",
        "",
        "| what | median s | min s | max s | max RSS MiB | ACME requests |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in r.issuance.values():
        lines.append(f"| {row.label} | {row.cells()} | {statistics.median(row.requests):.0f} |")
    for row in r.dns01.values():
        lines.append(f"| {row.label} | {row.cells()} | - |")
    for (tool, _n), row in r.renew.items():
        requests = f"{max(row.requests)}" if tool.startswith("certcli") else "-"
        lines.append(f"| {row.label} | {row.cells()} | {requests} |")
    for row in r.batch.values():
        lines.append(f"| {row.label} | {row.cells()} | - |")
    for row in r.startup:
        lines.append(f"| {row.label} | {row.cells()} | - |")

    iss, renew, batch = r.issuance, r.renew, r.batch
    issue_certbot, issue_certbot_text = ratio(iss["certcli"], iss["certbot"])
    issue_lego, issue_lego_text = ratio(iss["certcli"], iss["lego"])
    dns_lego, dns_lego_text = ratio(r.dns01["certcli"], r.dns01["lego"])
    renew_x, renew_text = ratio(renew[("certbot", 1000)], renew[("certcli", 1000)])
    batch_x, batch_text = ratio(batch["certbot"], batch["certcli"])
    _, batch_lego_text = ratio(batch["lego"], batch["certcli"])
    grow = (renew[("certcli", 1000)].median - renew[("certcli", 10)].median) / 990 * 1000
    startup = {row.label: row for row in r.startup}
    version_ms = startup["certcli --version"].median * 1000
    status_s = startup["certcli status (1,000 lineages)"].median
    requests = statistics.median(iss["certcli"].requests)
    renew_requests = max(max(row.requests) for (t, _), row in renew.items() if t != "certbot")
    _, cold_text = ratio(renew[("certbot", 1000)], renew[("certcli-cold", 1000)])
    memory = [
        ("one issuance", iss["certcli"], iss["certbot"]),
        *((f"renew, {n}", renew[("certcli", n)], renew[("certbot", n)]) for n in SIZES),
        (f"{BATCH} certificates", batch["certcli"], batch["certbot"]),
        ("--version", startup["certcli --version"], startup["certbot --version"]),
    ]
    heavier = [label for label, ours, theirs in memory if ours.max_rss > theirs.max_rss]
    lines += [
        "",
        "## Targets",
        "",
        "Ratios are taken run by run (certcli's run against the peer's run of the same round),"
        " then the median; the range of the runs follows.",
        "",
        f"- single issuance: {issue_certbot_text} certbot's time,"
        f" {_verdict(issue_certbot, 0.2, at_most=True)}; {issue_lego_text} lego's,"
        f" {_verdict(issue_lego, 0.1, at_most=True)}",
        f"- apex + wildcard DNS-01 by delegation: {dns_lego_text} lego's time"
        f" ({'met' if dns_lego < 1 else 'MISSED'}: lead), lego run with"
        f" `RFC2136_SEQUENCE_INTERVAL={LEGO_SEQUENCE_INTERVAL}` instead of its default 60 s;"
        f" {r.certbot_dns01}",
        f"- renew with nothing due at 1,000 lineages: certbot takes {renew_text} certcli's"
        f" time, {_verdict(renew_x, 20, at_most=False)}; certcli grows by {grow:.3f} ms per"
        f" lineage, {_verdict(grow, 0.1, at_most=True)}; requests to the CA: {renew_requests}"
        f" ({'met' if renew_requests == 0 else 'MISSED'}: none). Without its index (the first"
        f" run after lineages appear), certbot takes {cold_text} certcli's time",
        f"- {BATCH} certificates: the certbot loop takes {batch_text} certcli's time,"
        f" {_verdict(batch_x, 10, at_most=False)}; the lego loop {batch_lego_text}",
        f"- `certcli --version` {version_ms:.0f} ms, {_verdict(version_ms, 80, at_most=True)};"
        f" `certcli status` over 1,000 lineages {status_s:.3f} s,"
        f" {_verdict(status_s, 0.3, at_most=True)}",
        f"- ACME requests per single-SAN issuance: {requests:.0f},"
        f" {_verdict(requests, 8, at_most=True)}",
        "- peak memory no higher than certbot's in every row both run: "
        + ("met" if not heavier else f"MISSED in {', '.join(heavier)}")
        + " ("
        + "; ".join(
            f"{label}: {ours.max_rss / 1024:.0f} vs {theirs.max_rss / 1024:.0f} MiB"
            for label, ours, theirs in memory
        )
        + ")",
        "",
        "## ACME requests of one issuance (known account)",
        "",
    ]
    for tool, sequence in r.sequences.items():
        lines.append(f"- {tool} ({len(sequence)}): {', '.join(sequence)}")
    lines += [
        "",
        "![renew with nothing due](benchmarks-renew.png)",
        "",
        "## How to reproduce",
        "",
        "`make bench` (as root on a Debian machine: it installs certcli with `pip install .`"
        " into `.bench/certcli`, certbot and certbot-dns-rfc2136 from PyPI into `.bench/certbot`"
        " and Debian's `lego`). certbot's lineages for the renew rows are one real certbot"
        " lineage (issued from the lab's Pebble) cloned under new names: its archive, its live"
        " links and its renewal configuration with the paths rewritten; certcli's are cloned"
        " the same way. The DNS-01 row delegates `_acme-challenge.<name>` by CNAME to"
        f" `bench.{DELEGATION_ZONE}`, which each tool updates by RFC 2136 with the lab's TSIG"
        " key. `BENCH_RUNS` sets the number of runs, `BENCH_BATCH` the size of the batch.",
    ]
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    only = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("BENCH_ONLY", "")
    if only not in ("", "scale"):
        raise SystemExit(f"bench: no section {only!r} (only: scale)")
    sys.exit(main_scale() if only == "scale" else main())
