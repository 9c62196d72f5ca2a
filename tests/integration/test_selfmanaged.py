"""The self-managed path end to end through the real `certcli` executable:
csr -> a CA outside ACME signs -> upload -> status -> download."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.conftest import (
    Certcli,
    live_dir,
    live_version,
    ok,
    on_pg,
    store_contents,
    store_query,
)
from tests.lab import Lab
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _pending_key(certcli: Certcli, name: str) -> bytes | None:
    """The key waiting for its certificate as the store keeps it (on PostgreSQL, encrypted:
    the same bytes while it is the same key); None when none waits."""
    if on_pg(certcli):
        rows = store_query(
            certcli, "SELECT key_encrypted FROM certcli.pending WHERE name = %s", (name,)
        )
        return bytes(rows[0][0]) if rows else None
    path = certcli.config_dir / "certs" / name / "pending" / "privkey.pem"
    return path.read_bytes() if path.exists() else None


def _version_cert(certcli: Certcli, name: str, version: int) -> bytes:
    """cert.pem of one version, current or archived."""
    if on_pg(certcli):
        (row,) = store_query(
            certcli,
            "SELECT cert FROM certcli.versions WHERE name = %s AND version = %s",
            (name, version),
        )
        return bytes(row[0])
    return (
        certcli.config_dir / "certs" / name / "archive" / f"{version:04d}" / "cert.pem"
    ).read_bytes()


def test_csr_upload_status_download(certcli: Certcli, ca: LocalCA, tmp_path: Path) -> None:
    # csr: the key stays in the store, the CSR verifies and carries both SANs
    run = ok(
        certcli(
            "csr",
            "example.com",
            "www.example.com",
            "--org",
            "Acme",
            "--country",
            "DE",
            "--out",
            "req.csr",
        )
    )
    assert "certcli upload example.com" in run.stderr
    csr = x509.load_pem_x509_csr((tmp_path / "req.csr").read_bytes())
    assert csr.is_signature_valid
    sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["example.com", "www.example.com"]
    assert "O=Acme" in csr.subject.rfc4514_string()
    assert _pending_key(certcli, "example.com") is not None
    if not on_pg(certcli):  # the file store's key file (a PostgreSQL store's is encrypted)
        assert _mode(certcli.config_dir / "certs/example.com/pending/privkey.pem") == 0o600
    live = live_dir(certcli, "example.com")
    assert ok(certcli("status", "--json")).json()["lineages"][0]["status"] == "pending"

    # the CA signs; upload completes the CSR without --key
    issued = ca.sign_csr((tmp_path / "req.csr").read_bytes(), days=90)
    (tmp_path / "cert.pem").write_bytes(issued.cert_pem)
    (tmp_path / "chain.pem").write_bytes(issued.chain_pem)
    run = ok(certcli("upload", "example.com", "--cert", "cert.pem", "--chain", "chain.pem"))
    assert "version 1" in run.stderr
    assert _pending_key(certcli, "example.com") is None
    assert live_version(certcli, "example.com") == 1
    assert _mode(live / "privkey.pem") == 0o600
    assert (live / "fullchain.pem").read_bytes() == issued.cert_pem + issued.chain_pem
    # the same command again (a script that repeats it): nothing to do, exit 0
    run = ok(certcli("upload", "example.com", "--cert", "cert.pem", "--chain", "chain.pem"))
    assert "nothing changed" in run.stderr
    assert live_version(certcli, "example.com") == 1

    # status: JSON with the stable fields; the plain table when not a terminal
    (entry,) = ok(certcli("status", "--json")).json()["lineages"]
    assert entry["status"] == "active"
    assert entry["mode"] == "custom"
    assert entry["domains"] == ["example.com", "www.example.com"]
    assert entry["issuer"] == "certcli test intermediate 2"
    assert entry["days_left"] == 89
    assert (
        entry["fingerprint_sha256"]
        == issued.cert.fingerprint(
            __import__("cryptography.hazmat.primitives.hashes", fromlist=["SHA256"]).SHA256()
        )
        .hex(":")
        .upper()
    )
    assert [(s["name"], s["ssl_status"]) for s in entry["sans"]] == [
        ("example.com", "covered"),
        ("www.example.com", "covered"),
    ]
    assert "privkey" not in str(entry) and "PRIVATE" not in str(entry)
    table = ok(certcli("status")).stdout.splitlines()
    assert table[0].split("\t") == [
        "name",
        "domains",
        "mode",
        "issuer",
        "not_after",
        "days_left",
        "renew_at",
        "status",
    ]
    assert table[1].split("\t")[0::7] == ["example.com", "Active"]
    assert table[1].split("\t")[6] == "-"  # uploaded: never renewed
    assert entry["renew_at"] is None
    detail = ok(certcli("status", "example.com")).stdout
    assert "www.example.com\tCovered" in detail

    # download: each shape, the key only with --include-key and then 0600
    assert (
        ok(certcli("download", "example.com", "--what", "cert")).stdout == issued.cert_pem.decode()
    )
    assert (
        ok(certcli("download", "example.com", "--what", "chain")).stdout
        == issued.chain_pem.decode()
    )
    assert (
        ok(certcli("download", "example.com")).stdout
        == (issued.cert_pem + issued.chain_pem).decode()
    )
    refused = certcli("download", "example.com", "--what", "key", "--out", "k.pem")
    assert refused.code == 2 and "--include-key" in refused.stderr
    assert not (tmp_path / "k.pem").exists()
    ok(certcli("download", "example.com", "--what", "key", "--include-key", "--out", "k.pem"))
    assert _mode(tmp_path / "k.pem") == 0o600
    key_pem = (live / "privkey.pem").read_bytes()
    assert (tmp_path / "k.pem").read_bytes() == key_pem
    ok(certcli("download", "example.com", "--what", "bundle", "--include-key", "--out", "b.pem"))
    assert (tmp_path / "b.pem").read_bytes() == issued.cert_pem + issued.chain_pem + key_pem
    assert _mode(tmp_path / "b.pem") == 0o600
    ok(certcli("download", "example.com", "--what", "cert", "--out", "c.pem"))
    assert _mode(tmp_path / "c.pem") == 0o644

    (tmp_path / "pw").write_text("s3cret\n")
    ok(
        certcli(
            "download",
            "example.com",
            "--what",
            "pkcs12",
            "--include-key",
            "--password-file",
            "pw",
            "--out",
            "x.p12",
        )
    )
    key, cert, extra = pkcs12.load_key_and_certificates(
        (tmp_path / "x.p12").read_bytes(), b"s3cret"
    )
    assert cert == issued.cert and len(extra) == 2 and key is not None
    assert _mode(tmp_path / "x.p12") == 0o600
    run = ok(
        certcli(
            "download",
            "example.com",
            "--what",
            "pkcs12",
            "--include-key",
            "--out",
            "y.p12",
            env={"CERTCLI_PKCS12_PASSWORD": "envpw"},
        )
    )
    assert (
        pkcs12.load_key_and_certificates((tmp_path / "y.p12").read_bytes(), b"envpw")[1]
        == issued.cert
    )
    run = ok(certcli("download", "example.com", "--what", "cert", "--out", "z.pem", "--json"))
    assert run.json() == {"name": "example.com", "what": "cert", "path": "z.pem", "mode": "0644"}


def test_replacing_a_certificate_shows_the_san_diff_and_archives(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    first = ca.issue(["shop.example.com", "www.shop.example.com"])
    (tmp_path / "one.pem").write_bytes(first.fullchain_pem)
    (tmp_path / "one.key").write_bytes(first.key_pem)
    ok(certcli("upload", "shop", "--cert", "one.pem", "--key", "one.key"))

    second = ca.issue(["shop.example.com", "*.shop.example.com"])  # www is covered by the wildcard
    (tmp_path / "two.pem").write_bytes(second.fullchain_pem)
    (tmp_path / "two.key").write_bytes(second.key_pem)
    before = store_contents(certcli)
    run = certcli("upload", "shop", "--cert", "two.pem", "--key", "two.key")
    assert run.code == 7, run.stderr
    assert "+ *.shop.example.com" in run.stderr and "- www.shop.example.com" in run.stderr
    assert "--yes" in run.stderr.splitlines()[-1]
    assert store_contents(certcli) == before

    run = ok(certcli("upload", "shop", "--cert", "two.pem", "--key", "two.key", "--yes", "--json"))
    assert run.json()["added"] == ["*.shop.example.com"]
    assert run.json()["removed"] == ["www.shop.example.com"]
    assert run.json()["version"] == 2
    assert _version_cert(certcli, "shop", 1) == first.cert_pem
    assert (live_dir(certcli, "shop") / "cert.pem").read_bytes() == second.cert_pem

    # the same certificate again: nothing to do; an archived one: refused as a duplicate
    run = ok(certcli("upload", "shop", "--cert", "two.pem", "--key", "two.key"))
    assert "nothing changed" in run.stderr
    before = store_contents(certcli)
    run = certcli("upload", "shop", "--cert", "one.pem", "--key", "one.key", "--yes")
    assert run.code == 4 and "already stored as 'shop' version 1" in run.stderr
    assert store_contents(certcli) == before


def test_a_wildcard_certificate_covers_one_label(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    issued = ca.issue(["*.example.org"])
    (tmp_path / "w.pem").write_bytes(issued.fullchain_pem)
    (tmp_path / "w.key").write_bytes(issued.key_pem)
    ok(certcli("upload", "wild", "--cert", "w.pem", "--key", "w.key"))
    (entry,) = ok(certcli("status", "wild", "--json")).json()["lineages"]
    assert entry["domains"] == ["*.example.org"]
    assert entry["sans"][0]["challenge_name"] == "_acme-challenge.example.org"


def test_fail_on_for_monitoring(certcli: Certcli, ca: LocalCA, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    fresh = ca.issue(["fresh.example.com"], days=90)
    due = ca.issue(["due.example.com"], days=90, not_before=datetime.now(UTC) - timedelta(days=70))
    for name, issued in (("fresh", fresh), ("due", due)):
        (tmp_path / f"{name}.pem").write_bytes(issued.fullchain_pem)
        (tmp_path / f"{name}.key").write_bytes(issued.key_pem)
        ok(certcli("upload", name, "--cert", f"{name}.pem", "--key", f"{name}.key"))
    assert certcli("status", "--fail-on", "expired").code == 0
    run = certcli("status", "--fail-on", "expiring")
    assert run.code == 1
    assert "Expiring" in run.stdout
    assert certcli("status", "fresh", "--fail-on", "any").code == 0
    assert certcli("status", "due", "--fail-on", "any").code == 1
    statuses = {e["name"]: e["status"] for e in ok(certcli("status", "--json")).json()["lineages"]}
    assert statuses == {"due": "expiring", "fresh": "active"}


def test_csr_refuses_to_discard_a_waiting_key(certcli: Certcli, tmp_path: Path) -> None:
    ok(certcli("csr", "a.example.com", "--out", "1.csr"))
    key = _pending_key(certcli, "a.example.com")
    assert key is not None
    run = certcli("csr", "a.example.com", "--out", "2.csr")
    assert run.code == 2 and "--replace" in run.stderr
    assert _pending_key(certcli, "a.example.com") == key
    ok(certcli("csr", "a.example.com", "--replace", "--key-type", "rsa-2048", "--out", "2.csr"))
    assert _pending_key(certcli, "a.example.com") not in (key, None)


def test_upload_of_a_certificate_for_another_csr_is_refused(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    ok(certcli("csr", "b.example.com", "--out", "b.csr"))
    stranger = ca.issue(["b.example.com"])  # right name, but not the waiting key
    (tmp_path / "s.pem").write_bytes(stranger.fullchain_pem)
    before = store_contents(certcli)
    run = certcli("upload", "b.example.com", "--cert", "s.pem")
    assert run.code == 4 and "does not belong to the CSR" in run.stderr
    assert store_contents(certcli) == before


def _server_cert(
    ca: LocalCA,
    name: str,
    key: object,
    *,
    ca_true: bool = False,
    usage: dict[str, bool] | None = None,
    purposes: list | None = None,
) -> bytes:
    """A certificate for `name` signed by the test CA, with the extensions asked for."""
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes

    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.issuer.cert.subject)
        .public_key(key.public_key())  # type: ignore[attr-defined]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), False)
        .add_extension(x509.BasicConstraints(ca=ca_true, path_length=None), True)
    )
    if usage is not None:
        flags = dict.fromkeys(
            (
                "digital_signature",
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "key_cert_sign",
                "crl_sign",
                "encipher_only",
                "decipher_only",
            ),
            False,
        )
        builder = builder.add_extension(x509.KeyUsage(**{**flags, **usage}), True)
    if purposes is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), False)
    cert = builder.sign(ca.issuer.key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM) + b"".join(
        c.public_bytes(serialization.Encoding.PEM) for c in ca.chain
    )


def _key_pem(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


_P256 = ec.generate_private_key(ec.SECP256R1())
_RSA2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)

REFUSED_UPLOADS = [
    ("a CA", _P256, {"ca_true": True}, "it is a CA certificate (basicConstraints CA:TRUE)"),
    (
        "rsa-1024",
        rsa.generate_private_key(public_exponent=65537, key_size=1024),
        {},
        "its RSA key has 1024 bits; TLS clients require at least 2048",
    ),
    (
        "secp256k1",
        ec.generate_private_key(ec.SECP256K1()),
        {},
        "its key is on the curve secp256k1; TLS clients accept P-256, P-384, P-521",
    ),
    (
        "no signing",
        _P256,
        {"usage": {"content_commitment": True}},
        "its keyUsage allows neither digitalSignature nor keyEncipherment",
    ),
    (
        "ec key encipherment",  # keyEncipherment is an RSA key exchange, useless for ECDSA
        _P256,
        {"usage": {"key_encipherment": True}},
        "its keyUsage allows neither digitalSignature nor keyEncipherment",
    ),
    (
        "client only",
        _P256,
        {"purposes": [ExtendedKeyUsageOID.CLIENT_AUTH]},
        "its extendedKeyUsage does not include serverAuth",
    ),
]


@pytest.mark.parametrize(
    ("label", "key", "options", "reason"), REFUSED_UPLOADS, ids=[r[0] for r in REFUSED_UPLOADS]
)
def test_an_upload_that_cannot_serve_tls_is_refused_with_the_reason(
    certcli: Certcli,
    ca: LocalCA,
    tmp_path: Path,
    label: str,
    key: object,
    options: dict,
    reason: str,
) -> None:
    (tmp_path / "c.pem").write_bytes(_server_cert(ca, "tls.example.com", key, **options))
    (tmp_path / "c.key").write_bytes(_key_pem(key))
    before = store_contents(certcli)
    run = certcli("upload", "tls", "--cert", "c.pem", "--key", "c.key", "--yes")
    assert run.code == 4, run.stderr
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith(f"certcli: error: c.pem cannot serve TLS: {reason}; ")
    )
    assert store_contents(certcli) == before


ACCEPTED_UPLOADS = [
    ("p-521", ec.generate_private_key(ec.SECP521R1()), {}),
    (
        "p-384 signing",
        ec.generate_private_key(ec.SECP384R1()),
        {"usage": {"digital_signature": True}},
    ),
    ("rsa key encipherment", _RSA2048, {"usage": {"key_encipherment": True}}),
    ("any purpose", _P256, {"purposes": [ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE]}),
    (
        "server and client",
        _P256,
        {"purposes": [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]},
    ),
]


@pytest.mark.parametrize(
    ("label", "key", "options"), ACCEPTED_UPLOADS, ids=[r[0] for r in ACCEPTED_UPLOADS]
)
def test_an_upload_a_tls_server_accepts_is_installed(
    certcli: Certcli, ca: LocalCA, tmp_path: Path, label: str, key: object, options: dict
) -> None:
    (tmp_path / "c.pem").write_bytes(_server_cert(ca, "ok.example.com", key, **options))
    (tmp_path / "c.key").write_bytes(_key_pem(key))
    run = ok(certcli("upload", "ok", "--cert", "c.pem", "--key", "c.key", "--json"))
    assert run.json()["version"] == 1 and run.json()["warnings"] == []
    assert "warning" not in run.stderr


def test_an_upload_without_intermediates_is_warned_about(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    issued = ca.issue(["bare.example.com"])
    (tmp_path / "leaf.pem").write_bytes(issued.cert_pem)
    (tmp_path / "chain.pem").write_bytes(issued.chain_pem)
    (tmp_path / "leaf.key").write_bytes(issued.key_pem)
    run = ok(certcli("upload", "bare", "--cert", "leaf.pem", "--key", "leaf.key", "--json"))
    (warning,) = run.json()["warnings"]
    assert warning.startswith("leaf.pem holds no intermediate certificates: most TLS clients")
    assert "--chain FILE" in warning
    assert f"certcli: warning: {warning}" in run.stderr.splitlines()
    assert run.json()["version"] == 1  # installed all the same
    plain = certcli("upload", "bare", "--cert", "leaf.pem", "--key", "leaf.key")
    assert plain.code == 0 and f"certcli: warning: {warning}" in plain.stderr.splitlines()

    # with its chain, given either way: no warning
    for args in (["--chain", "chain.pem"], []):
        other = ca.issue([f"c{len(args)}.example.com"])
        (tmp_path / "o.pem").write_bytes(other.cert_pem if args else other.fullchain_pem)
        (tmp_path / "o.key").write_bytes(other.key_pem)
        run = ok(certcli("upload", f"c{len(args)}", "--cert", "o.pem", "--key", "o.key", *args))
        assert "warning" not in run.stderr


def test_a_self_signed_upload_needs_no_chain(certcli: Certcli, tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from cryptography.hazmat.primitives import hashes

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "self.example.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("self.example.com")]), False)
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "s.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "s.key").write_bytes(_key_pem(key))
    run = ok(certcli("upload", "self", "--cert", "s.pem", "--key", "s.key", "--json"))
    assert run.json()["warnings"] == [] and "warning" not in run.stderr


def _upload(certcli: Certcli, ca: LocalCA, tmp_path: Path, name: str, *domains: str) -> None:
    issued = ca.issue(list(domains or [name]))
    (tmp_path / f"{name}.pem").write_bytes(issued.fullchain_pem)
    (tmp_path / f"{name}.key").write_bytes(issued.key_pem)
    ok(certcli("upload", name, "--cert", f"{name}.pem", "--key", f"{name}.key"))


def test_an_uploaded_lineage_is_told_what_renews_it(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    name = "told.example.com"
    _upload(certcli, ca, tmp_path, name)
    upload_hint = f"upload a certificate that covers {name}, www.{name} (`certcli csr {name}`"
    acme_hint = f"switch it to ACME with `certcli issue {name} --force-renewal`"

    run = ok(certcli("san", "add", name, f"www.{name}"))
    assert "certcli renew" not in run.stderr
    assert f"{name}: an uploaded certificate: {upload_hint}" in run.stderr
    assert acme_hint in run.stderr
    change = ok(certcli("san", "add", name, f"api.{name}", "--json")).json()
    assert change["mode"] == "custom" and change["result"] is None

    run = ok(certcli("san", "remove", name, f"api.{name}"))
    assert f"removed api.{name}; the next upload leaves it out" in run.stderr
    assert "next renewal" not in run.stderr and upload_hint in run.stderr

    # www is not covered (a Mismatch): said at every run, cron's included, with the way out
    for args in (["renew", name, "--force"], ["renew", name], ["renew", "--force"], ["renew"]):
        run = ok(certcli(*args))
        assert run.stderr.startswith(
            f"certcli: warning: {name}: uploaded certificate does not cover www.{name}: "
            + upload_hint
        ), args
        assert acme_hint in run.stderr

    ok(certcli("san", "remove", name, f"www.{name}"))
    for args in (["renew", name, "--force"], ["renew", name], ["renew", "--force"]):
        run = ok(certcli(*args))
        assert run.stderr.startswith(
            f"certcli: warning: {name}: uploaded certificate: certcli does not renew it; "
            f"upload a certificate that covers {name} (`certcli csr {name}`"
        ), args
        assert acme_hint in run.stderr
    assert ok(certcli("renew")).stderr == ""  # cron: an upload that is not due says nothing


def test_issue_switches_an_uploaded_lineage_or_a_waiting_csr_to_acme_only_when_confirmed(
    acme: Certcli, lab: Lab, ca: LocalCA, tmp_path: Path
) -> None:
    uploaded, waiting = "sw.certcli.test", "swcsr.certcli.test"
    _upload(acme, ca, tmp_path, uploaded)
    ok(acme("csr", waiting, "--out", "w.csr"))
    issue = ["--webroot", lab.webroot, "--agree-tos"]

    run = acme("issue", uploaded, *issue)
    assert run.code == 2 and "add --force-renewal to switch it to ACME" in run.stderr
    for name, args in ((uploaded, ["--force-renewal"]), (waiting, [])):
        before = store_contents(acme)
        run = acme("issue", name, *issue, *args)  # no terminal, no --yes: refused
        assert run.code == 7, run.stderr
        assert "was not switched to ACME; confirm at a terminal, or add --yes" in run.stderr
        assert store_contents(acme) == before

    ok(acme("issue", uploaded, *issue, "--force-renewal", "--yes"))
    ok(acme("issue", waiting, *issue, "-y"))
    entries = {e["name"]: e for e in ok(acme("status", "--json")).json()["lineages"]}
    for name in (uploaded, waiting):
        assert entries[name]["mode"] == "auto" and "Pebble" in entries[name]["issuer"]
    assert live_version(acme, uploaded) == 2
    # from now on certcli renews it
    (result,) = ok(acme("renew", uploaded, "--force", "--json")).json()["results"]
    assert result["action"] == "renewed" and result["version"] == 3
