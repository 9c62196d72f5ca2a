"""`certcli import certbot` through the real executable: on certbot-like directories made
here (bad input, confirmation, repeated runs), and on a directory made by the real certbot
(installed from the package index once, into .bench/certbot like `make bench` does) against
the lab's Pebble, whose lineages certcli then renews."""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from tests.conftest import (
    Certcli,
    Run,
    lineage_names,
    lineage_settings,
    live_dir,
    live_version,
    ok,
    on_pg,
    snapshot,
    store_contents,
    version_numbers,
)
from tests.jsonschemas import problems
from tests.lab import ADMIN_KEY_NAME, DELEGATION_ZONE, SITE_ZONE, Lab
from tests.lab.localca import Issued, LocalCA

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CERTBOT_VENV = ROOT / ".bench" / "certbot"  # shared with `make bench`
CERTBOT_PACKAGES = ("certbot", "certbot-dns-rfc2136")  # the same as `make bench-tools`


def _errors(run: Run) -> list[str]:
    assert "Traceback" not in run.stderr
    return [line for line in run.stderr.splitlines() if line.startswith("certcli: error: ")]


def _fingerprint(pem: bytes) -> str:
    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()


def _public(key_pem: bytes) -> bytes:
    key = serialization.load_pem_private_key(key_pem, None)
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# -- certbot-like directories, written here -----------------------------------------------


def _live_meta(certcli: Certcli, name: str) -> dict:
    """The current version's metadata: its meta.json, or its row in the PostgreSQL store."""
    if not on_pg(certcli):
        return json.loads((live_dir(certcli, name) / "meta.json").read_text())
    import psycopg

    url, password = certcli.env["CERTCLI_STORE_URL"], certcli.env.get("PGPASSWORD")
    with psycopg.connect(url, password=password, autocommit=True) as connection:
        row = connection.execute(
            "SELECT v.meta FROM certcli.versions v JOIN certcli.lineages l "
            "ON v.name = l.name AND v.version = l.live_version WHERE l.name = %s",
            (name,),
        ).fetchone()
    assert row is not None, f"{name} has no current version"
    return dict(row[0])


def fake_lineage(
    root: Path,
    ca: LocalCA,
    name: str,
    domains: list[str],
    *,
    params: str | None = None,
    versions: int = 2,
) -> Issued:
    """archive/NAME/{cert,chain,fullchain,privkey}N.pem, live/NAME/*.pem as certbot's
    relative symlinks to the last version, and renewal/NAME.conf."""
    archive, live = root / "archive" / name, root / "live" / name
    archive.mkdir(parents=True)
    live.mkdir(parents=True)
    (root / "renewal").mkdir(exist_ok=True)
    for n in range(1, versions + 1):
        issued = ca.issue(domains)
        for kind, data in (
            ("cert", issued.cert_pem),
            ("chain", issued.chain_pem),
            ("fullchain", issued.fullchain_pem),
            ("privkey", issued.key_pem),
        ):
            (archive / f"{kind}{n}.pem").write_bytes(data)
    (archive / f"privkey{versions}.pem").chmod(0o600)
    for kind in ("cert", "chain", "fullchain", "privkey"):
        os.symlink(f"../../archive/{name}/{kind}{versions}.pem", live / f"{kind}.pem")
    if params is None:
        params = (
            "authenticator = webroot\nwebroot_path = /var/www/html,\nkey_type = ecdsa\n"
            "[[webroot_map]]\n" + "".join(f"{d} = /var/www/html\n" for d in domains)
        )
    conf = f"version = 5.8.0\narchive_dir = {archive}\n"
    conf += "".join(f"{k} = {live / k}.pem\n" for k in ("cert", "privkey", "chain", "fullchain"))
    conf += "[renewalparams]\nserver = https://127.0.0.1:9/dir\n" + params
    (root / "renewal" / f"{name}.conf").write_text(conf)
    return issued


@pytest.fixture
def letsencrypt(tmp_path: Path, ca: LocalCA) -> Path:
    root = tmp_path / "letsencrypt"
    fake_lineage(root, ca, "a.example.com", ["a.example.com", "www.a.example.com"])
    fake_lineage(root, ca, "b.example.com", ["b.example.com"], versions=1)
    return root


def test_dry_run_shows_everything_and_writes_nothing(certcli: Certcli, letsencrypt: Path) -> None:
    before = snapshot(letsencrypt)
    run = ok(certcli("import", "certbot", letsencrypt, "--dry-run"))
    assert "Would import a.example.com: a.example.com, www.a.example.com" in run.stdout
    assert "webroot /var/www/html" in run.stdout
    assert "Would import b.example.com" in run.stdout
    assert "no account at https://127.0.0.1:9/dir imported" in run.stderr  # none in this dir
    report = ok(certcli("import", "certbot", letsencrypt, "--dry-run", "--json")).json()
    assert problems("import certbot", report) == []
    assert report["dry_run"] is True
    assert [(r["name"], r["action"]) for r in report["lineages"]] == [
        ("a.example.com", "import"),
        ("b.example.com", "import"),
    ]
    assert not certcli.config_dir.exists()
    assert snapshot(letsencrypt) == before


def test_import_asks_and_without_a_terminal_needs_yes(certcli: Certcli, letsencrypt: Path) -> None:
    run = certcli("import", "certbot", letsencrypt)
    assert run.code == 7
    assert _errors(run) == [
        "certcli: error: importing 2 certificates from "
        f"{letsencrypt} needs confirmation; add --yes (or --dry-run to see what would be imported)"
    ]
    assert not (certcli.config_dir / "certs").exists()


def test_import_adopts_the_live_version_and_a_second_run_skips(
    certcli: Certcli, letsencrypt: Path
) -> None:
    before = snapshot(letsencrypt)
    run = ok(certcli("import", "certbot", letsencrypt, "--yes"))
    assert "Imported a.example.com: a.example.com, www.a.example.com" in run.stdout
    for name in ("a.example.com", "b.example.com"):
        ours = live_dir(certcli, name)
        theirs = letsencrypt / "live" / name
        assert version_numbers(certcli, name) == [1]  # only certbot's live version
        assert live_version(certcli, name) == 1
        assert (ours / "cert.pem").read_bytes() == (theirs / "cert.pem").read_bytes()
        assert (ours / "chain.pem").read_bytes() == (theirs / "chain.pem").read_bytes()
        assert _public((ours / "privkey.pem").read_bytes()) == _public(
            (theirs / "privkey.pem").read_bytes()
        )
        assert (ours / "privkey.pem").stat().st_mode & 0o777 == 0o600
    lineage = lineage_settings(certcli, "a.example.com") or ""
    assert 'challenge = "http-01"' in lineage and 'webroot = "/var/www/html"' in lineage
    assert 'server = "https://127.0.0.1:9/dir"' in lineage and 'mode = "auto"' in lineage
    meta = _live_meta(certcli, "a.example.com")
    assert meta["source"] == "certbot"
    assert meta["imported_from"] == str(letsencrypt / "renewal" / "a.example.com.conf")
    assert snapshot(letsencrypt) == before

    store = store_contents(certcli)
    again = ok(certcli("import", "certbot", letsencrypt, "--yes"))
    assert "Skipped a.example.com: certcli already has a certificate named" in again.stdout
    assert store_contents(certcli) == store
    assert snapshot(letsencrypt) == before


def test_a_certificate_already_in_the_store_under_another_name_is_skipped(
    certcli: Certcli, letsencrypt: Path
) -> None:
    live = letsencrypt / "live" / "b.example.com"
    ok(certcli("upload", "mine", "--cert", live / "fullchain.pem", "--key", live / "privkey.pem"))
    report = ok(certcli("import", "certbot", letsencrypt, "--yes", "--json")).json()
    assert problems("import certbot", report) == []
    skipped = next(r for r in report["lineages"] if r["name"] == "b.example.com")
    assert skipped["action"] == "skipped"
    assert skipped["reason"] == "its certificate is in certcli's store already, as 'mine' version 1"


def test_name_selects_lineages(certcli: Certcli, letsencrypt: Path) -> None:
    report = ok(
        certcli("import", "certbot", letsencrypt, "--name", "b.example.com", "--yes", "--json")
    ).json()
    assert [(r["name"], r["action"]) for r in report["lineages"]] == [("b.example.com", "imported")]
    assert ok(certcli("status", "--json")).json()["lineages"][0]["name"] == "b.example.com"


def test_each_bad_lineage_fails_alone_with_one_line(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    root = tmp_path / "letsencrypt"
    fake_lineage(root, ca, "good.example.com", ["good.example.com"])
    fake_lineage(root, ca, "broken.example.com", ["broken.example.com"])
    conf = root / "renewal" / "broken.example.com.conf"
    conf.write_text(conf.read_text() + "this is not configobj\n")
    bad_line = len(conf.read_text().splitlines())
    fake_lineage(root, ca, "nokey.example.com", ["nokey.example.com"])
    (root / "archive" / "nokey.example.com" / "privkey2.pem").unlink()
    fake_lineage(root, ca, "mismatch.example.com", ["mismatch.example.com"])
    other = ca.issue(["other.example.com"]).key_pem
    (root / "archive" / "mismatch.example.com" / "privkey2.pem").write_bytes(other)
    fake_lineage(root, ca, "unreadable.example.com", ["unreadable.example.com"])
    (root / "archive" / "unreadable.example.com" / "cert2.pem").write_text("garbage\n")
    before = snapshot(root)

    run = certcli("import", "certbot", root, "--yes")
    assert run.code == 1
    errors = _errors(run)
    assert len(errors) == 4, run.stderr
    assert f"broken.example.com: {conf} line {bad_line}: expected `key = value`" in errors[0]
    assert "mismatch.example.com: the key" in errors[1] and "does not match" in errors[1]
    assert "nokey.example.com: private key file" in errors[2] and "does not exist" in errors[2]
    assert "unreadable.example.com:" in errors[3] and "not a PEM certificate" in errors[3]
    assert "Imported good.example.com" in run.stdout
    assert ok(certcli("status", "--json")).json()["lineages"][0]["name"] == "good.example.com"
    assert lineage_names(certcli) == ["good.example.com"]
    assert snapshot(root) == before


@pytest.mark.parametrize(
    ("layout", "args", "code", "words"),
    [
        ("none", [], 3, "is not a directory"),
        ("empty", [], 3, "has no renewal/ directory: it is not certbot's config directory"),
        ("one", ["--name", "nope"], 3, "certbot has no lineage 'nope'"),
        ("one", ["--name", "../x"], 3, "certbot has no lineage '../x'"),
    ],
)
def test_a_bad_directory_is_one_line_and_changes_nothing(
    certcli: Certcli,
    ca: LocalCA,
    tmp_path: Path,
    layout: str,
    args: list[str],
    code: int,
    words: str,
) -> None:
    root = tmp_path / "letsencrypt"
    if layout != "none":
        root.mkdir()
    if layout == "one":
        fake_lineage(root, ca, "one.example.com", ["one.example.com"])
    run = certcli("import", "certbot", root, *args, "--yes")
    assert run.code == code
    (line,) = run.stderr.strip().splitlines()
    assert line.startswith("certcli: error: ") and words in line
    assert not (certcli.config_dir / "certs").exists()


def test_an_empty_renewal_directory_has_nothing_to_import(certcli: Certcli, tmp_path: Path) -> None:
    (tmp_path / "letsencrypt" / "renewal").mkdir(parents=True)
    run = ok(certcli("import", "certbot", tmp_path / "letsencrypt"))
    assert "nothing to import" in run.stderr


# -- the real certbot, against the lab ----------------------------------------------------


@pytest.fixture(scope="session")
def certbot() -> Path:
    """certbot from the package index, in .bench/certbot (made once, reused after)."""
    python, executable = CERTBOT_VENV / "bin" / "python", CERTBOT_VENV / "bin" / "certbot"
    probe = [str(python), "-c", "import certbot, certbot_dns_rfc2136"]

    def ready() -> bool:
        return executable.exists() and subprocess.run(probe, capture_output=True).returncode == 0

    CERTBOT_VENV.parent.mkdir(exist_ok=True)
    with open(CERTBOT_VENV.parent / "certbot.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be installing it
        if not ready():
            packages = " ".join(CERTBOT_PACKAGES)
            for what, step in (
                ("python -m venv", [sys.executable, "-m", "venv", str(CERTBOT_VENV)]),
                (
                    f"pip install {packages}",
                    [str(CERTBOT_VENV / "bin" / "pip"), "install", "--quiet", *CERTBOT_PACKAGES],
                ),
            ):
                proc = subprocess.run(step, capture_output=True, text=True, timeout=900)
                if proc.returncode != 0:
                    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                    pytest.fail(
                        f"cannot install {packages} into {CERTBOT_VENV}: `{what}` exited "
                        f"{proc.returncode}: {' / '.join(tail)}; these tests need pip to reach "
                        "its package index",
                        pytrace=False,
                    )
            if not ready():
                pytest.fail(f"{executable} does not work after installing it", pytrace=False)
    return executable


class RealCertbot:
    """A certbot config directory made by the real certbot against the lab."""

    def __init__(self, executable: Path, lab: Lab, work: Path) -> None:
        self.executable, self.lab, self.work = executable, lab, work
        self.dir = work / "letsencrypt"
        self.hooks = work / "hooks.log"
        self.web = f"w{secrets.token_hex(3)}.{SITE_ZONE}"
        self.dns = f"d{secrets.token_hex(3)}.{SITE_ZONE}"

    def run(self, *args: str | Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CERTCLI_")}
        env["REQUESTS_CA_BUNDLE"] = str(self.lab.ca_bundle)
        argv = [str(self.executable), "certonly", "--non-interactive", "--agree-tos"]
        argv += ["-m", "import@certcli.test", "--no-eff-email", "--server", self.lab.directory_url]
        argv += ["--config-dir", str(self.dir), "--work-dir", str(self.work / "work")]
        argv += ["--logs-dir", str(self.work / "logs"), *map(str, args)]
        # The lab's Pebble rejects 5% of nonces and certbot retries a rejected one only once:
        # a run that still meets one is run again (certbot then goes on where it stopped).
        for _ in range(4):
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
            if proc.returncode == 0 or "anti-replay nonce" not in proc.stderr:
                break
        assert proc.returncode == 0, proc.stderr[-2000:]

    def make(self) -> RealCertbot:
        """A webroot lineage (two names, P-384, hooks) and a dns-rfc2136 one (RSA-3072)."""
        log = self.hooks
        self.run(
            "--webroot",
            "-w",
            self.lab.webroot,
            "-d",
            self.web,
            "-d",
            f"www.{self.web}",
            "--key-type",
            "ecdsa",
            "--elliptic-curve",
            "secp384r1",
            "--pre-hook",
            f"echo pre >> {log}",
            "--deploy-hook",
            f'echo "deploy $RENEWED_DOMAINS" >> {log}',
        )
        credentials = self.work / "rfc2136.ini"
        credentials.write_text(
            f"dns_rfc2136_server = 127.0.0.1\ndns_rfc2136_port = {self.lab.dns_port}\n"
            f"dns_rfc2136_name = {ADMIN_KEY_NAME}\n"
            f"dns_rfc2136_secret = {self.lab.admin_tsig_secret}\n"
            "dns_rfc2136_algorithm = HMAC-SHA256\n"
        )
        credentials.chmod(0o600)
        self.run(
            "--authenticator",
            "dns-rfc2136",
            "--dns-rfc2136-credentials",
            credentials,
            "--dns-rfc2136-propagation-seconds",
            "0",
            "-d",
            self.dns,
            "--key-type",
            "rsa",
            "--rsa-key-size",
            "3072",
        )
        self.hooks.unlink()  # certbot ran them itself; what follows is certcli's doing
        return self

    def copy(self, to: Path) -> Path:
        """The directory elsewhere, its confs' absolute paths rewritten (as after a move)."""
        shutil.copytree(self.dir, to, symlinks=True)
        for conf in (to / "renewal").iterdir():
            conf.write_text(conf.read_text().replace(str(self.dir), str(to)))
        return to


@pytest.fixture(scope="module")
def real(certbot: Path, lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> RealCertbot:
    return RealCertbot(certbot, lab, tmp_path_factory.mktemp("certbot")).make()


@pytest.fixture
def renewing(certcli: Certcli, lab: Lab) -> Iterator[Certcli]:
    """certcli trusting the lab's TLS, with no server of its own: renewals must go where
    the imported lineage says."""
    certcli.env["REQUESTS_CA_BUNDLE"] = str(lab.ca_bundle)
    certcli.env["CERTCLI_ACME_TIMEOUT"] = "30"
    yield certcli


def _accounts_created(lab: Lab) -> int:
    return sum(1 for r in lab.acme_requests() if r == "POST /sign-me-up")


@pytest.mark.timeout(900)  # the first use installs certbot
def test_a_real_certbot_directory_is_adopted_and_renewed(
    real: RealCertbot, renewing: Certcli, lab: Lab
) -> None:
    before = snapshot(real.dir)
    report = ok(renewing("import", "certbot", real.dir, "--yes", "--json")).json()
    assert problems("import certbot", report) == []
    assert {r["name"]: r["action"] for r in report["lineages"]} == {
        real.web: "imported",
        real.dns: "imported",
    }
    (account,) = report["accounts"]
    regr = next((real.dir / "accounts").rglob("regr.json"))
    assert account == {
        "server": lab.directory_url,
        "action": "imported",
        "uri": json.loads(regr.read_text())["uri"],
        "reason": None,
    }
    config = renewing.config_dir / "config.toml"
    assert config.stat().st_mode & 0o777 == 0o600
    assert f'pre = "echo pre >> {real.hooks}"' in config.read_text()
    assert lab.admin_tsig_secret in config.read_text()
    assert lab.admin_tsig_secret not in json.dumps(report)

    status = {e["name"]: e for e in ok(renewing("status", "--json")).json()["lineages"]}
    for name, key_type in ((real.web, "ec-p384"), (real.dns, "rsa-3072")):
        ours = live_dir(renewing, name)
        theirs = real.dir / "live" / name
        cert = (theirs / "cert.pem").read_bytes()
        assert _fingerprint((ours / "cert.pem").read_bytes()) == _fingerprint(cert)
        assert status[name]["fingerprint_sha256"].replace(":", "").lower() == _fingerprint(cert)
        assert status[name]["mode"] == "auto" and status[name]["status"] == "active"
        assert status[name]["key_type"] == key_type
        assert _public((ours / "privkey.pem").read_bytes()) == _public(
            (theirs / "privkey.pem").read_bytes()
        )
        assert (ours / "privkey.pem").stat().st_mode & 0o777 == 0o600
    assert sorted(status[real.web]["domains"]) == [real.web, f"www.{real.web}"]

    # Renewed through Pebble from the imported webroot, with certbot's account and hooks.
    accounts = _accounts_created(lab)
    ok(renewing("renew", real.web, "--force"))
    assert live_version(renewing, real.web) == 2
    renewed = x509.load_pem_x509_certificate(
        (live_dir(renewing, real.web) / "cert.pem").read_bytes()
    )
    assert renewed.public_key().curve.name == "secp384r1"  # type: ignore[union-attr]
    pre, deploy = real.hooks.read_text().splitlines()
    assert pre == "pre"
    assert sorted(deploy.split()) == sorted(["deploy", real.web, f"www.{real.web}"])

    # And the rfc2136 key, once certcli's delegation target is set and delegated.
    target = f"i-{secrets.token_hex(4)}.{DELEGATION_ZONE}"
    lab.delegate(real.dns, target)
    for key, value in (
        ("dns.target", target),
        ("dns.resolvers", f'["{lab.dns_server}"]'),
        ("dns.authoritative", f'["{lab.dns_server}"]'),
        ("dns.propagation_timeout", "20"),
    ):
        ok(renewing("config", "set", key, value))
    ok(renewing("renew", real.dns, "--force"))
    assert live_version(renewing, real.dns) == 2
    assert _accounts_created(lab) == accounts
    assert snapshot(real.dir) == before


def test_a_lineage_certcli_cannot_renew_as_certbot_did_says_what_to_set(
    real: RealCertbot, renewing: Certcli, lab: Lab, tmp_path: Path
) -> None:
    """certbot's standalone server (hand-edited into a copy of the real directory)."""
    root = real.copy(tmp_path / "moved")
    conf = root / "renewal" / f"{real.web}.conf"
    kept = [
        line
        for line in conf.read_text().splitlines()
        if not line.startswith(("webroot_path", "[[webroot_map]]", real.web, f"www.{real.web}"))
    ]
    conf.write_text(
        "\n".join(kept).replace("authenticator = webroot", "authenticator = standalone")
    )
    before = snapshot(root)

    run = ok(renewing("import", "certbot", root, "--name", real.web, "--yes"))
    assert "no challenge certcli can answer (certbot used standalone)" in run.stdout
    (warning,) = [w for w in run.stderr.splitlines() if "standalone" in w]
    assert "its own web server on port 80" in warning
    assert "`certcli config set webroot DIR`" in warning
    assert f"--name {real.web} --webroot DIR --force-renewal" in warning
    assert snapshot(root) == before

    failed = renewing("renew", real.web, "--force")
    assert failed.code == 1 and "no way to answer the CA's challenge" in failed.stderr
    ok(renewing("config", "set", "webroot", str(lab.webroot)))
    ok(renewing("renew", real.web, "--force"))
    assert live_version(renewing, real.web) == 2


def test_a_certificate_whose_name_holds_a_control_character_is_not_imported(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    root = tmp_path / "letsencrypt"
    fake_lineage(root, ca, "good.example.com", ["good.example.com"])
    params = "authenticator = webroot\nwebroot_path = /var/www/html,\nkey_type = ecdsa\n"
    fake_lineage(root, ca, "evil.example.com", ["evil\n.example.com"], params=params)
    run = certcli("import", "certbot", root, "--yes")
    assert run.code == 1
    (error,) = _errors(run)
    assert "evil.example.com:" in error and "'evil\\n.example.com'" in error
    assert "which is not a valid domain" in error
    assert lineage_names(certcli) == ["good.example.com"]
