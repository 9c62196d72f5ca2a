"""The test lab: Pebble (ACME CA), BIND (DNS) and a static web server, on loopback only.

Used as session fixtures by tests/conftest.py and by hand through `python -m tests.lab up`
(and `down`), which `make demo` uses. Every port is a free 127.0.0.1 port; every name the
servers look up resolves inside the lab (see ../../docs/testing.md). A second CA,
acme2certifier, starts on top of a Lab: tests/lab/a2c.py.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.lab.localca import LocalCA, key_pem

SITE_ZONE = "certcli.test"
DELEGATION_ZONE = "acme-delegation.test"
ACME_KEY_NAME = "certcli-acme"
ADMIN_KEY_NAME = "lab-admin"
TSIG_ALGORITHM = "hmac-sha256"
INSTALL_HINT = (
    "the test lab needs Debian's pebble and bind9: run `make test` as root (it installs them) "
    "or `sudo apt-get install -y pebble bind9`"
)


class LabError(RuntimeError):
    pass


def find_binary(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
    if not found:
        raise LabError(f"{name} is not installed; {INSTALL_HINT}")
    return found


def port_53_free() -> bool:
    """Whether the lab can answer on 127.0.0.1:53, where real name servers answer (so that
    certcli's propagation check finds the zone's servers through their NS records). BIND
    listens only on addresses of an interface, so another 127.0.0.N would not do."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            tcp.bind(("127.0.0.1", 53))
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", 53))
    except OSError:
        return False
    return True


_HANDED_OUT: set[int] = set()


def worker_index() -> int:
    """This process's pytest-xdist worker number (gw1: 1); 0 for gw0 or a run alone."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return int(worker) if worker.isdigit() else 0


def free_port() -> int:
    """A port free on 127.0.0.1 for both TCP and UDP (DNS needs both), and never one this
    process gave before: a port is only picked here, its server binds it later. Below the
    kernel's ephemeral ports, each pytest-xdist worker in a range of its own, so that two
    workers starting their labs at once never pick the same one."""
    low = 20000 + worker_index() % 6 * 2000
    for _ in range(200):
        port = secrets.choice(range(low, low + 2000))
        if port in _HANDED_OUT:
            continue
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                tcp.bind(("127.0.0.1", port))
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                    udp.bind(("127.0.0.1", port))
        except OSError:
            continue
        _HANDED_OUT.add(port)
        return port
    raise LabError(f"no free port on 127.0.0.1 from {low} to {low + 1999}")


@dataclass
class Lab:
    directory: Path
    dns_port: int
    on_port_53: bool
    acme_port: int
    management_port: int
    http_port: int
    tls_port: int
    acme_tsig_secret: str
    admin_tsig_secret: str
    certificate_validity: int
    stats_port: int = 0  # BIND's statistics channel (for dns_updates)
    pebble_env: dict[str, str] = field(default_factory=dict)
    eab_keys: dict[str, str] = field(default_factory=dict)  # kid -> base64url HMAC key
    pids: dict[str, int] = field(default_factory=dict)

    # -- what tests and the demo use ----------------------------------------------------

    @property
    def directory_url(self) -> str:
        return f"https://127.0.0.1:{self.acme_port}/dir"

    @property
    def ca_bundle(self) -> Path:
        """Trust for Pebble's HTTPS listener (not for the certificates it issues)."""
        return self.directory / "tls" / "ca.pem"

    @property
    def webroot(self) -> Path:
        return self.directory / "webroot"

    @property
    def dns_server(self) -> str:
        return f"127.0.0.1:{self.dns_port}"

    def log(self, service: str) -> Path:
        return self.directory / "logs" / f"{service}.log"

    def issuing_root(self, index: int = 0) -> bytes:
        """Pebble's issuing root (index 1: the alternate one), regenerated at each start."""
        return self._get(f"https://127.0.0.1:{self.management_port}/roots/{index}")

    def acme_requests(self) -> list[str]:
        """Every ACME request Pebble has logged so far, as 'METHOD /path'."""
        lines = self.log("pebble").read_text(errors="replace").splitlines()
        # "Pebble 2026/11/23 12:00:00 POST /order-plz -> calling handler()"
        return [
            " ".join(line.split(" -> ")[0].split()[-2:])
            for line in lines
            if line.endswith("-> calling handler()")
        ]

    def orders_created(self) -> int:
        """The orders Pebble has created (a POST it refused with badNonce, which certcli
        sends again, creates none)."""
        return self.log("pebble").read_text(errors="replace").count("Added order ")

    def tsig_keyring(self, admin: bool = False) -> dict:
        import dns.tsigkeyring

        name = ADMIN_KEY_NAME if admin else ACME_KEY_NAME
        secret = self.admin_tsig_secret if admin else self.acme_tsig_secret
        return dns.tsigkeyring.from_text({name: (TSIG_ALGORITHM, secret)})

    def forget_authorizations(self, store: Path) -> int:
        """Deactivate every valid authorization of the store's account at Pebble; return how
        many. Even with PEBBLE_AUTHZREUSE=0 Pebble reuses a valid one for about one order in
        a hundred, and a test that breaks validation after a success must see it fail."""
        import josepy as jose
        from acme import client, messages
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        found = 0
        for account_json in store.glob("accounts/*/*/account.json"):
            data = json.loads(account_json.read_text())
            if data.get("directory") != self.directory_url:
                continue
            key = load_pem_private_key((account_json.parent / "key.pem").read_bytes(), None)
            net = client.ClientNetwork(
                jose.JWKEC(key=key), alg=jose.ES256, verify_ssl=str(self.ca_bundle)
            )
            net.account = messages.RegistrationResource(
                uri=data["uri"], body=messages.Registration()
            )
            directory = messages.Directory.from_json(net.get(self.directory_url).json())
            found += _deactivate_valid(client.ClientV2(directory, net), data["uri"])
        return found

    def env(self) -> dict[str, str]:
        """Environment for a certcli run against the lab: its CA, and its BIND for every
        lookup (the CAA check before each order included), so none leaves the machine."""
        return {
            "REQUESTS_CA_BUNDLE": str(self.ca_bundle),
            "CERTCLI_SERVER": self.directory_url,
            "CERTCLI_DNS_RESOLVERS": self.dns_server,
        }

    def dns_config(self, target: str, *, secret: str | None = None) -> str:
        """config.toml text that delegates to `target` and updates it by RFC 2136."""
        return (
            "[dns]\n"
            'provider = "rfc2136"\n'
            f'target = "{target}"\n'
            f'resolvers = ["{self.dns_server}"]\n'
            "propagation_timeout = 20\n"
            # without port 53 the zone's NS cannot be asked: name the servers instead
            + ("" if self.on_port_53 else f'authoritative = ["{self.dns_server}"]\n')
            + "[dns.rfc2136]\n"
            f'server = "{self.dns_server}"\n'
            f'tsig_name = "{ACME_KEY_NAME}"\n'
            f'tsig_secret = "{secret or self.acme_tsig_secret}"\n'
            f'tsig_algorithm = "{TSIG_ALGORITHM}"\n'
        )

    # -- changing the lab's zones, as a user changes their DNS --------------------------

    def update(self, zone: str, *changes: tuple[str, str, str, list[str]]) -> None:
        """Apply (action, name, type, values) changes with the admin key; action is
        "replace" or "delete"; names are absolute without the trailing dot."""
        import dns.name
        import dns.query
        import dns.rcode
        import dns.update

        update = dns.update.UpdateMessage(zone, keyring=self.tsig_keyring(admin=True))
        for action, name, rtype, values in changes:
            owner = dns.name.from_text(name)
            if action == "replace":
                update.delete(owner, rtype)
                for value in values:
                    update.add(owner, 60, rtype, value)
            else:
                update.delete(owner, rtype)
        response = dns.query.tcp(update, "127.0.0.1", port=self.dns_port, timeout=5)
        if response.rcode() != dns.rcode.NOERROR:
            raise LabError(f"update of {zone} failed: {dns.rcode.to_text(response.rcode())}")

    def delegate(self, domain: str, target: str) -> None:
        """`_acme-challenge.<domain> CNAME <target>` in the site zone, and an A record for
        <domain> itself (it becomes an empty non-terminal that the zone's * no longer covers)."""
        base = domain.removeprefix("*.")
        self.update(
            SITE_ZONE,
            ("replace", f"_acme-challenge.{base}", "CNAME", [f"{target}."]),
            ("replace", base, "A", ["127.0.0.1"]),
        )

    def txt(self, name: str) -> list[str]:
        """The TXT values at `name`, asked of the lab's BIND."""
        import dns.message
        import dns.query
        import dns.rdatatype

        query = dns.message.make_query(name, "TXT")
        response = dns.query.udp(query, "127.0.0.1", port=self.dns_port, timeout=2)
        return sorted(
            b"".join(r.strings).decode()
            for rrset in response.answer
            if rrset.rdtype == dns.rdatatype.TXT
            for r in rrset
        )

    def dns_updates(self) -> int:
        """How many DNS UPDATE messages BIND has received since it started, accepted or not
        (its statistics channel's count of incoming UPDATE opcodes): a test takes it before
        and after a run to assert how many DNS writes the run made."""
        url = f"http://127.0.0.1:{self.stats_port}/json/v1/server"
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(json.load(response).get("opcodes", {}).get("UPDATE", 0))

    # -- persistence for `python -m tests.lab` ------------------------------------------

    def save(self) -> None:
        data = asdict(self)
        data["directory"] = str(self.directory)
        (self.directory / "lab.json").write_text(json.dumps(data, indent=2))

    @classmethod
    def load(cls, directory: Path) -> Lab:
        data = json.loads((directory / "lab.json").read_text())
        data["directory"] = Path(data["directory"])
        return cls(**data)

    # -- lifecycle ----------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        certificate_validity: int = 90 * 86400,
        pebble_env: dict[str, str] | None = None,
        eab_keys: dict[str, str] | None = None,
        port_53: bool = True,
    ) -> Lab:
        for sub in ("tls", "logs", "webroot", "bind", "pebble"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        return cls(
            directory=directory,
            dns_port=free_port(),
            on_port_53=port_53 and port_53_free(),
            acme_port=free_port(),
            management_port=free_port(),
            http_port=free_port(),
            tls_port=free_port(),
            acme_tsig_secret=base64.b64encode(secrets.token_bytes(32)).decode(),
            admin_tsig_secret=base64.b64encode(secrets.token_bytes(32)).decode(),
            certificate_validity=certificate_validity,
            stats_port=free_port(),
            pebble_env=pebble_env or {},
            eab_keys=eab_keys or {},
        )

    def start(self) -> None:
        pebble, named = find_binary("pebble"), find_binary("named")
        try:
            self._start_bind(named)
            self._start_http()
            self._start_pebble(pebble)
        except BaseException:
            self.stop()
            raise
        self.save()

    def stop(self, only: str | None = None) -> None:
        """Stop every server, or only one (`pebble`, `named`, `http`)."""
        for service, pid in list(self.pids.items()):
            if only is not None and service != only:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if _alive(pid):
                os.killpg(pid, signal.SIGKILL)
            self.pids.pop(service)

    def _spawn(self, service: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = self.log(service).open("ab")
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # its own group: `down` stops it and its children
            cwd=self.directory,
        )
        log.close()
        self.pids[service] = proc.pid

    def _wait(self, service: str, ready: Callable[[], object], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not _alive(self.pids[service]):
                break
            try:
                ready()
                return
            except Exception as exc:  # not up yet
                last = exc
                time.sleep(0.05)
        tail = self.log(service).read_text(errors="replace")[-2000:]
        raise LabError(f"{service} did not come up ({last}); its log ends:\n{tail}")

    # -- BIND -----------------------------------------------------------------------

    def _start_bind(self, named: str) -> None:
        bind = self.directory / "bind"
        for journal in bind.glob("*.jnl"):
            journal.unlink()
        soa = "@ SOA ns.{z}. hostmaster.{z}. 1 3600 600 86400 60"
        zones = {
            ".": [
                "$TTL 60",
                "@ SOA localhost. hostmaster.localhost. 1 3600 600 86400 60",
                "@ NS localhost.",
                "localhost. A 127.0.0.1",
            ],
            SITE_ZONE: [
                "$TTL 60",
                soa.format(z=SITE_ZONE),
                f"@ NS ns.{SITE_ZONE}.",
                "ns A 127.0.0.1",
                "@ A 127.0.0.1",
                "* A 127.0.0.1",
            ],
            DELEGATION_ZONE: [
                "$TTL 60",
                soa.format(z=DELEGATION_ZONE),
                f"@ NS ns.{DELEGATION_ZONE}.",
                "ns A 127.0.0.1",
            ],
        }
        zone_conf = []
        for zone, lines in zones.items():
            filename = "root.zone" if zone == "." else f"{zone}.zone"
            (bind / filename).write_text("\n".join(lines) + "\n")
            keys = [ADMIN_KEY_NAME] + ([ACME_KEY_NAME] if zone == DELEGATION_ZONE else [])
            allowed = " ".join(f"key {k};" for k in keys)
            update = "" if zone == "." else f"allow-update {{ {allowed} }};"
            zone_conf.append(f'zone "{zone}" {{ type primary; file "{filename}"; {update} }};')
        dead_port = free_port()
        conf = f"""
options {{
    directory "{bind}";
    pid-file none;
    listen-on port {self.dns_port} {{ 127.0.0.1; }};
    {"listen-on port 53 { 127.0.0.1; };" if self.on_port_53 else ""}
    listen-on-v6 {{ none; }};
    query-source address 127.0.0.1;
    recursion yes;
    allow-recursion {{ 127.0.0.0/8; }};
    allow-query {{ 127.0.0.0/8; }};
    forward only;
    forwarders {{ 127.0.0.1 port {dead_port}; }};
    dnssec-validation no;
    notify no;
    empty-zones-enable no;
    session-keyfile "{bind}/session.key";
}};
controls {{ }};
statistics-channels {{ inet 127.0.0.1 port {self.stats_port} allow {{ 127.0.0.1; }}; }};
key "{ACME_KEY_NAME}" {{ algorithm {TSIG_ALGORITHM}; secret "{self.acme_tsig_secret}"; }};
key "{ADMIN_KEY_NAME}" {{ algorithm {TSIG_ALGORITHM}; secret "{self.admin_tsig_secret}"; }};
{chr(10).join(zone_conf)}
"""
        (bind / "named.conf").write_text(conf)
        self._spawn("named", [named, "-g", "-4", "-c", str(bind / "named.conf")])

        def ready() -> None:
            import dns.message
            import dns.query

            query = dns.message.make_query(f"www.{SITE_ZONE}", "A")
            answer = dns.query.udp(query, "127.0.0.1", port=self.dns_port, timeout=0.5)
            if not answer.answer:
                raise LabError("no answer yet")

        self._wait("named", ready)

    # -- the HTTP-01 web server ---------------------------------------------------------

    def _start_http(self) -> None:
        argv = [sys.executable, "-m", "http.server", str(self.http_port)]
        argv += ["--bind", "127.0.0.1", "--directory", str(self.webroot)]
        self._spawn("http", argv)
        self._wait("http", lambda: urllib.request.urlopen(self._http_url("/"), timeout=1).read())

    def _http_url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http_port}{path}"

    # -- Pebble ---------------------------------------------------------------------

    def restart_pebble(self) -> None:
        """Start Pebble again (after `stop("pebble")`): it forgets every account and order,
        and makes a new issuing root, as a CA's staging environment may."""
        self._start_pebble(find_binary("pebble"))

    def _start_pebble(self, pebble: str) -> None:
        tls = self.directory / "tls"
        ca = LocalCA("certcli lab TLS", intermediates=0)
        listener = ca.issue(["127.0.0.1", "localhost"], days=365)
        ca.write_root(tls / "ca.pem")
        (tls / "pebble.pem").write_bytes(listener.cert_pem)
        (tls / "pebble.key").write_bytes(key_pem(listener.key))  # type: ignore[arg-type]
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.acme_port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(tls / "pebble.pem"),
                "privateKey": str(tls / "pebble.key"),
                "httpPort": self.http_port,
                "tlsPort": self.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": bool(self.eab_keys),
                "externalAccountMACKeys": self.eab_keys,
                "certificateValidityPeriod": self.certificate_validity,
            }
        }
        config_path = self.directory / "pebble" / "pebble-config.json"
        config_path.write_text(json.dumps(config, indent=2))
        argv = [pebble, "-config", str(config_path), "-dnsserver", self.dns_server]
        env = {
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_ALTERNATE_ROOTS": "1",
            # every order validates afresh: a test that breaks a webroot sees it fail
            "PEBBLE_AUTHZREUSE": "0",
            **self.pebble_env,
        }
        self._spawn("pebble", argv, env=env)
        self._wait("pebble", lambda: self._get(self.directory_url))

    def _get(self, url: str) -> bytes:
        context = ssl.create_default_context(cafile=str(self.ca_bundle))
        with urllib.request.urlopen(url, timeout=2, context=context) as response:
            return response.read()


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # not our child (the lab was started by another process)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return waited == 0


def _retrying(send: Callable[[], Any]) -> Any:
    """One ACME request, sent again when Pebble rejects a good nonce (as it does at random)."""
    from acme import messages

    for attempt in range(10):
        try:
            return send()
        except messages.Error as error:
            if error.code != "badNonce" or attempt == 9:
                raise
    return None


def _deactivate_valid(acme: Any, account_uri: str) -> int:
    """Deactivate the valid authorizations of every order of an account, page by page."""
    from acme import messages

    found = 0
    page: str | None = _retrying(lambda: acme._post_as_get(account_uri)).json()["orders"]
    while page:
        response = _retrying(lambda url=page: acme._post_as_get(url))
        for order in response.json().get("orders", []):
            urls = _retrying(lambda url=order: acme._post_as_get(url)).json()["authorizations"]
            for url in urls:
                answer = _retrying(lambda url=url: acme._post_as_get(url))
                authz = acme._authzr_from_response(answer, uri=url)
                if authz.body.status == messages.STATUS_VALID:
                    _retrying(lambda authz=authz: acme.deactivate_authorization(authz))
                    found += 1
        page = response.links.get("next", {}).get("url")
    return found
