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

from tests.lab import Lab

ROOT = Path(__file__).resolve().parents[2]
CERTCLI = Path(sys.executable).with_name("certcli")
CERTBOT = ROOT / ".bench" / "certbot" / "bin" / "certbot"
LEGO = shutil.which("lego") or "/usr/bin/lego"
RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SIZES = (10, 100, 1000)


@dataclass
class Sample:
    wall: float
    rss_kb: int


@dataclass
class Row:
    label: str
    samples: list[Sample] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    def cells(self) -> str:
        walls = [s.wall for s in self.samples]
        rss = max(s.rss_kb for s in self.samples) / 1024
        return f"{self.median:.3f} | {min(walls):.3f} | {max(walls):.3f} | {rss:.0f}"


def run(argv: list[str], env: dict[str, str], cwd: Path) -> Sample:
    """Run a command to its end; its wall time and its peak memory (from wait4)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        err = proc.stderr.read().decode(errors="replace")[-800:] if proc.stderr else ""
        raise SystemExit(f"bench: {' '.join(map(str, argv[:3]))} failed:\n{err}")
    return Sample(wall, usage.ru_maxrss)


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
            row_ours = rows[("certcli", n)] = Row(f"renew, nothing due, {n} lineages: certcli")
            row_theirs = rows[("certbot", n)] = Row(f"renew, nothing due, {n} lineages: certbot")
            for _ in range(RUNS):
                before = len(self.lab.acme_requests())
                row_ours.samples.append(run([str(CERTCLI), "renew"], env_ours, self.work))
                row_ours.requests.append(len(self.lab.acme_requests()) - before)
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


def plot(rows: dict[tuple[str, int], Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(6, 4))
    for tool in ("certcli", "certbot"):
        axes.plot(SIZES, [rows[(tool, n)].median for n in SIZES], marker="o", label=tool)
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
        issuance = bench.issuance()
        sequences = {tool: bench.request_sequence(tool) for tool in ("certcli", "certbot", "lego")}
        renew = bench.renew()
        startup = bench.startup()
    finally:
        lab.stop()
    write_report(issuance, sequences, renew, startup)
    plot(renew, ROOT / "docs" / "benchmarks-renew.png")
    print((ROOT / "docs" / "benchmarks.md").read_text())
    shutil.rmtree(work, ignore_errors=True)
    return 0


def write_report(
    issuance: dict[str, Row],
    sequences: dict[str, list[str]],
    renew: dict[tuple[str, int], Row],
    startup: list[Row],
) -> None:
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
        " and the peak memory (max RSS, MiB) of the process.",
        "",
        "| what | median s | min s | max s | max RSS MiB | ACME requests |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in issuance.values():
        lines.append(f"| {row.label} | {row.cells()} | {statistics.median(row.requests):.0f} |")
    for (tool, _n), row in renew.items():
        requests = f"{max(row.requests)}" if tool == "certcli" else "-"
        lines.append(f"| {row.label} | {row.cells()} | {requests} |")
    for row in startup:
        lines.append(f"| {row.label} | {row.cells()} | - |")
    ours, certbot, lego = (issuance[t].median for t in ("certcli", "certbot", "lego"))
    grow = (renew[("certcli", 1000)].median - renew[("certcli", 10)].median) / 990 * 1000
    lines += [
        "",
        "## Ratios",
        "",
        f"- single issuance: {ours / certbot:.2f}x certbot's time (target ≤ 0.2),"
        f" {ours / lego:.2f}x lego's (target ≤ 0.1)",
        f"- renew with nothing due at 1,000 lineages: certbot takes"
        f" {renew[('certbot', 1000)].median / renew[('certcli', 1000)].median:.1f}x certcli's"
        f" time (target ≥ 20); certcli grows by {grow:.3f} ms per lineage (target < 0.1)",
        "",
        "## ACME requests of one issuance (known account)",
        "",
    ]
    for tool, sequence in sequences.items():
        lines.append(f"- {tool} ({len(sequence)}): {', '.join(sequence)}")
    lines += [
        "",
        "![renew with nothing due](benchmarks-renew.png)",
        "",
        "## How to reproduce",
        "",
        "`make bench` (as root on a Debian machine: it installs certbot and"
        " certbot-dns-rfc2136 from PyPI into `.bench/certbot` and Debian's `lego`). certbot's"
        " lineages for the renew rows are one real certbot lineage (issued from the lab's Pebble)"
        " cloned under new names: its archive, its live links and its renewal configuration"
        " with the paths rewritten; certcli's are cloned the same way. `BENCH_RUNS` sets the"
        " number of runs.",
        "",
        "Not measured yet: the apex + wildcard DNS-01 row and the 50-certificate row.",
    ]
    (ROOT / "docs" / "benchmarks.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
