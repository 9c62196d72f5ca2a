"""acme2certifier, a second real ACME CA for the lab, on top of a started Lab's BIND and web
server (see ../../docs/testing.md).

It runs from a virtualenv of its own (`.lab/a2c`, made by `make lab-a2c`) so that its pins
never meet certcli's, through tests/lab/a2c_server.py. Its OpenSSL CA handler signs with an
issuing CA made here; dns-persist-01 is on, with `a2c.test` as its issuer domain name.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.lab import Lab, LabError, _alive, free_port
from tests.lab.localca import LocalCA, key_pem

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".lab" / "a2c"
SERVER = Path(__file__).with_name("a2c_server.py")
ISSUER_DOMAIN = "a2c.test"
INSTALL_HINT = (
    "acme2certifier is not installed for the test lab: run `make lab-a2c` (or `make test`), "
    "which makes its virtualenv in .lab/a2c"
)
# werkzeug's access log: 127.0.0.1 - - [02/Dec/2026 06:00:00] "POST /acme/newaccount HTTP/1.1" 201 -
_REQUEST = re.compile(r'\] "([A-Z]+) (\S+) HTTP/[0-9.]+" \d{3} ')


def python() -> Path:
    """The a2c virtualenv's interpreter, or a LabError that says how to install it."""
    interpreter = Path(os.environ.get("CERTCLI_LAB_A2C_VENV", VENV)) / "bin" / "python"
    if not interpreter.exists():
        raise LabError(INSTALL_HINT)
    probe = subprocess.run(
        [str(interpreter), "-c", "import acme2certifier, werkzeug"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        raise LabError(f"{INSTALL_HINT} ({probe.stderr.strip().splitlines()[-1:]})")
    return interpreter


@dataclass
class A2C:
    """One acme2certifier server using `lab`'s BIND (DNS) and web server (HTTP-01)."""

    lab: Lab
    directory: Path
    port: int
    validity_days: int = 30
    pid: int | None = None

    @classmethod
    def create(cls, lab: Lab, *, validity_days: int = 30) -> A2C:
        directory = lab.directory / "acme2certifier"  # not .lab/a2c, the virtualenv
        for sub in ("tls", "ca", "certs"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        return cls(lab, directory, free_port(), validity_days)

    # -- what tests use -----------------------------------------------------------------

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.port}/directory"

    @property
    def ca_bundle(self) -> Path:
        """Trust for a2c's HTTPS listener and Pebble's together (the lab's at a2c's start),
        so that one REQUESTS_CA_BUNDLE serves a client of both CAs."""
        return self.directory / "tls" / "ca-bundle.pem"

    @property
    def issuing_ca(self) -> Path:
        """The CA certificate that signs what a2c issues (PEM)."""
        return self.directory / "ca" / "issuing.pem"

    @property
    def log(self) -> Path:
        return self.lab.log("a2c")

    def acme_requests(self) -> list[str]:
        """Every request a2c has served so far, as 'METHOD /path'."""
        if not self.log.exists():
            return []
        text = self.log.read_text(errors="replace")
        return [f"{m[1]} {m[2]}" for m in _REQUEST.finditer(text)]

    def env(self) -> dict[str, str]:
        """Environment for a certcli run against a2c."""
        return {"REQUESTS_CA_BUNDLE": str(self.ca_bundle), "CERTCLI_SERVER": self.directory_url}

    def directory_object(self) -> dict:
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(self.directory_url, timeout=5, context=context) as answer:
            return json.load(answer)

    # -- persistence for `python -m tests.lab up --a2c` ----------------------------------

    def save(self) -> None:
        data = {"port": self.port, "validity_days": self.validity_days, "pid": self.pid}
        (self.directory / "a2c.json").write_text(json.dumps(data))

    @classmethod
    def load(cls, lab: Lab) -> A2C | None:
        """The a2c that `up --a2c` started on this lab, if any."""
        path = lab.directory / "acme2certifier" / "a2c.json"
        if not path.exists():
            return None
        return cls(lab, path.parent, **json.loads(path.read_text()))

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        interpreter = python()
        # a new issuing CA each start, so no accounts or orders from an earlier one either
        (self.directory / "acme_srv.db").unlink(missing_ok=True)
        self._make_certificates()
        argv = [str(interpreter), str(SERVER), "--dir", str(self.directory)]
        argv += ["--port", str(self.port), "--dns-port", str(self.lab.dns_port)]
        argv += ["--http-port", str(self.lab.http_port)]
        argv += ["--validity-days", str(self.validity_days)]
        log = self.log.open("ab")
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # a2c reads the environment (ACME_SRV_*): give it only what it needs
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"},
            start_new_session=True,
            cwd=self.directory,
        )
        log.close()
        self.pid = proc.pid
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)  # its own group: start_new_session
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _alive(self.pid):
            time.sleep(0.05)
        if _alive(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
        self.pid = None
        (self.directory / "a2c.json").unlink(missing_ok=True)

    def _make_certificates(self) -> None:
        tls, ca_dir = self.directory / "tls", self.directory / "ca"
        listener_ca = LocalCA("certcli lab a2c TLS", intermediates=0)
        listener = listener_ca.issue(["127.0.0.1", "localhost"], days=365)
        (tls / "listener.pem").write_bytes(listener.cert_pem)
        (tls / "listener.key").write_bytes(key_pem(listener.key))  # type: ignore[arg-type]
        self.ca_bundle.write_bytes(listener_ca.root.pem + self.lab.ca_bundle.read_bytes())
        issuing = LocalCA("certcli lab a2c issuing", intermediates=0).root
        (ca_dir / "issuing.pem").write_bytes(issuing.pem)
        (ca_dir / "issuing.key").write_bytes(key_pem(issuing.key))

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline and self.pid is not None and _alive(self.pid):
            try:
                self.directory_object()
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(0.1)
        tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        raise LabError(f"acme2certifier did not come up ({last}); its log ends:\n{tail}")
