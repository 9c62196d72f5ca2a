"""`make demo`: certcli's main job, shown end to end on a throwaway store.

1. A certificate from an ACME CA: the lab's Pebble, validating over HTTP-01 from a webroot
   that the lab's web server serves; then status and renew.
2. The self-managed path: a CSR, signed by a throwaway local CA standing in for a
   commercial one, then upload, status and download.

Each step runs the real `certcli`.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.lab import Lab
from tests.lab.localca import LocalCA

CERTCLI = Path(sys.executable).with_name("certcli")


def step(*args: str, cwd: Path, env: dict[str, str]) -> None:
    print(f"\n$ certcli {shlex.join(args)}", flush=True)
    proc = subprocess.run([str(CERTCLI), *args], cwd=cwd, env=env)
    if proc.returncode != 0:
        raise SystemExit(f"demo: certcli {args[0]} exited {proc.returncode}")


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="certcli-demo-"))
    env = {**os.environ, "CERTCLI_CONFIG_DIR": str(work / "store")}
    print(f"Demo store: {work / 'store'} (CERTCLI_CONFIG_DIR)")

    lab = Lab.create(work / "lab")
    lab.start()
    try:
        print(f"\n== 1. From an ACME CA: the lab's Pebble at {lab.directory_url}")
        acme_env = {**env, **lab.env()}
        site = ["shop.certcli.test", "www.shop.certcli.test"]
        step(
            "issue",
            *site,
            "--webroot",
            str(lab.webroot),
            "--agree-tos",
            "--email",
            "ops@certcli.test",
            cwd=work,
            env=acme_env,
        )
        step("status", cwd=work, env=acme_env)
        print("\n(renew with nothing due prints nothing and asks the CA nothing)")
        step("renew", cwd=work, env=acme_env)
        step("renew", "--force", cwd=work, env=acme_env)
    finally:
        lab.stop()

    print("\n== 2. Self-managed: a CSR for a CA outside ACME")
    domains = ["demo.certcli.test", "www.demo.certcli.test"]

    step(
        "csr",
        *domains,
        "--org",
        "certcli demo",
        "--country",
        "DE",
        "--out",
        "demo.csr",
        cwd=work,
        env=env,
    )

    print("\n[a throwaway local CA signs demo.csr, as a commercial CA would]")
    ca = LocalCA("certcli demo CA", intermediates=1)
    issued = ca.sign_csr((work / "demo.csr").read_bytes(), days=90)
    (work / "demo.crt").write_bytes(issued.cert_pem)
    (work / "chain.pem").write_bytes(issued.chain_pem)

    step("upload", domains[0], "--cert", "demo.crt", "--chain", "chain.pem", cwd=work, env=env)
    step("status", cwd=work, env=env)
    step("status", domains[0], cwd=work, env=env)
    step("download", domains[0], "--what", "fullchain", "--out", "fullchain.pem", cwd=work, env=env)
    step(
        "download",
        domains[0],
        "--what",
        "key",
        "--include-key",
        "--out",
        "privkey.pem",
        cwd=work,
        env=env,
    )
    mode = oct((work / "privkey.pem").stat().st_mode & 0o777)
    print(f"\nprivkey.pem was written with mode {mode}; files are in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
