"""certbot's renewal configuration: the parser and the mapping onto certcli's settings."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certcli.certbot_conf import map_key_type, map_renewal
from certcli.certbot_files import jwk_private_key
from certcli.config import LETSENCRYPT
from certcli.configobj import ConfError, parse_configobj
from certcli.errors import InvalidInputError
from certcli.importer import plan_import
from certcli.storage.files import Store
from certcli.x509 import same_public_key

# As certbot 5.8 writes it for `certonly --webroot -w /var/www/html -d a.example -d
# www.a.example --pre-hook ... --deploy-hook ...`.
WEBROOT_CONF = """\
version = 5.8.0
archive_dir = /etc/letsencrypt/archive/a.example
cert = /etc/letsencrypt/live/a.example/cert.pem
privkey = /etc/letsencrypt/live/a.example/privkey.pem
chain = /etc/letsencrypt/live/a.example/chain.pem
fullchain = /etc/letsencrypt/live/a.example/fullchain.pem

# Options used in the renewal process
[renewalparams]
account = 6841ba4a99fb9fe331308f74553099dd
pre_hook = systemctl stop haproxy
post_hook = 'echo "a, b"'
server = https://acme-staging-v02.api.letsencrypt.org/directory
authenticator = webroot
webroot_path = /var/www/html,
key_type = ecdsa
renew_hook = systemctl reload nginx
[[webroot_map]]
www.a.example = /var/www/html
a.example = /var/www/html/
"""

DOMAINS = ("a.example", "www.a.example")


def _map(text: str, **kwargs: object) -> object:
    options = {"live_key_type": "ec-p256", **kwargs}
    return map_renewal("a.example", DOMAINS, parse_configobj(text, "a.conf"), **options)  # type: ignore[arg-type]


# -- the parser ---------------------------------------------------------------------------


def test_parses_what_certbot_writes() -> None:
    conf = parse_configobj(WEBROOT_CONF, "a.conf")
    assert conf["cert"] == "/etc/letsencrypt/live/a.example/cert.pem"
    params = conf["renewalparams"]
    assert params["webroot_path"] == ["/var/www/html"]  # a trailing comma makes a list
    assert params["post_hook"] == 'echo "a, b"'  # quoted: the comma is not a separator
    assert params["pre_hook"] == "systemctl stop haproxy"
    assert params["webroot_map"] == {
        "www.a.example": "/var/www/html",
        "a.example": "/var/www/html/",
    }


def test_parses_lists_quotes_comments_and_triple_quotes() -> None:
    conf = parse_configobj(
        "\ufeff"
        "empty =\n"
        "none = ,\n"
        "two = a, 'b, c'  # a comment\n"
        "three = x, y, z,\n"
        "hash = 'a # b'\n"
        "plain = value # comment\n"
        "'quoted key' = 1\n"
        'multi = """first\n'
        "second\n"
        'third"""\n'
        "[s]\n"
        "[[t]]\n"
        "k = v\n"
        "[u]\n"
        "k = w\n",
        "x.conf",
    )
    assert conf["empty"] == ""
    assert conf["none"] == []
    assert conf["two"] == ["a", "b, c"]
    assert conf["three"] == ["x", "y", "z"]
    assert conf["hash"] == "a # b"
    assert conf["plain"] == "value"
    assert conf["quoted key"] == "1"
    assert conf["multi"] == "first\nsecond\nthird"
    assert conf["s"] == {"t": {"k": "v"}}
    assert conf["u"] == {"k": "w"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("cert = /x\nthis line has no equals sign\n", "line 2: expected `key = value`"),
        ("a = 'never closed\n", "line 1: the value of 'a': the quote ' is never closed"),
        ('a = """never closed\nstill open\n', "line 1: the value of 'a' opens"),
        ("[[webroot_map]]\na = b\n", "line 1: section 'webroot_map' is nested 2 deep"),
        ("[renewalparams\n", "line 1: not a section header"),
        ("[s]\n[s]\n", "line 2: 's' appears twice"),
        ("a = 1\na = 2\n", "line 2: 'a' appears twice"),
        ("a = 'x' y\n", "unexpected"),
        ("= value\n", "expected `key = value`"),
    ],
)
def test_broken_confs_name_the_line(text: str, words: str) -> None:
    with pytest.raises(ConfError) as caught:
        parse_configobj(text, "/etc/letsencrypt/renewal/x.conf")
    assert caught.value.message.startswith("/etc/letsencrypt/renewal/x.conf line")
    assert words in caught.value.message
    assert caught.value.exit_code == 4


# -- the mapping --------------------------------------------------------------------------


def test_webroot_lineage_maps_whole() -> None:
    s = _map(WEBROOT_CONF)
    assert (s.challenge, s.webroot, s.key_type) == ("http-01", "/var/www/html", "ec-p256")
    assert s.server == "https://acme-staging-v02.api.letsencrypt.org/directory"
    assert s.deploy_hook == "systemctl reload nginx"  # certbot stores --deploy-hook as renew_hook
    assert s.account == "6841ba4a99fb9fe331308f74553099dd"
    assert dict(s.global_settings) == {
        "the pre hook": {"hooks.pre": "systemctl stop haproxy"},
        "the post hook": {"hooks.post": 'echo "a, b"'},
    }
    assert s.warnings == ()
    assert s.lineage_extra() == {
        "server": "https://acme-staging-v02.api.letsencrypt.org/directory",
        "challenge": "http-01",
        "webroot": "/var/www/html",
        "hooks": {"deploy": "systemctl reload nginx"},
    }


def test_webroot_without_map_and_default_server() -> None:
    s = _map("[renewalparams]\nauthenticator = webroot\nwebroot_path = /srv/www,\n")
    assert (s.challenge, s.webroot, s.server) == ("http-01", "/srv/www", LETSENCRYPT)


def test_two_webroots_cannot_be_one_lineage() -> None:
    s = _map(
        "[renewalparams]\nauthenticator = webroot\nwebroot_path = /a, /b\n"
        "[[webroot_map]]\na.example = /a\nwww.a.example = /b\n"
    )
    assert s.challenge is None and s.webroot is None
    (warning,) = s.warnings
    assert "2 webroots (/a, /b)" in warning
    assert "certcli config set webroot DIR" in warning
    assert "certcli issue a.example www.a.example --name a.example --webroot DIR" in warning


def test_webroot_map_of_names_no_longer_in_the_certificate() -> None:
    s = _map("[renewalparams]\nauthenticator = webroot\n[[webroot_map]]\nold.example = /w\n")
    assert s.webroot == "/w"


@pytest.mark.parametrize(
    ("authenticator", "words"),
    [
        ("standalone", "its own web server on port 80"),
        ("nginx", "through nginx"),
        ("apache", "through Apache"),
        ("manual", "needs a person"),
        ("dns-cloudflare", "cannot run certbot's authenticator (dns-cloudflare)"),
    ],
)
def test_authenticators_certcli_cannot_run_warn_what_to_set(authenticator: str, words: str) -> None:
    s = _map(f"[renewalparams]\nauthenticator = {authenticator}\nkey_type = ecdsa\n")
    assert s.challenge is None and s.authenticator == authenticator
    (warning,) = s.warnings
    assert words in warning
    assert "certcli config set webroot DIR" in warning


def test_manual_with_hooks_says_they_differ() -> None:
    s = _map(
        "[renewalparams]\nauthenticator = manual\nkey_type = ecdsa\n"
        "manual_auth_hook = /usr/local/bin/auth.sh\n"
    )
    assert "/usr/local/bin/auth.sh" in s.warnings[0] and "CERTBOT_*" in s.warnings[0]


def test_installer_without_deploy_hook_suggests_one() -> None:
    s = _map("[renewalparams]\nauthenticator = nginx\ninstaller = nginx\nkey_type = ecdsa\n")
    assert any("hooks.deploy 'systemctl reload nginx'" in w for w in s.warnings)


RFC2136 = "[renewalparams]\nauthenticator = dns-rfc2136\ndns_rfc2136_credentials = /r.ini\n"
CREDENTIALS = {
    "dns_rfc2136_server": "192.0.2.1",
    "dns_rfc2136_port": "5353",
    "dns_rfc2136_name": "certbot-key.",
    "dns_rfc2136_secret": "c2VjcmV0",
    "dns_rfc2136_algorithm": "HMAC-SHA512",
}


def test_rfc2136_credentials_become_certcli_dns_settings() -> None:
    s = _map(RFC2136 + "key_type = ecdsa\n", credentials=CREDENTIALS)
    assert s.challenge == "dns-01"
    assert dict(s.global_settings) == {
        "the rfc2136 key of /r.ini": {
            "dns.rfc2136.server": "192.0.2.1:5353",
            "dns.rfc2136.tsig_name": "certbot-key.",
            "dns.rfc2136.tsig_secret": "c2VjcmV0",
            "dns.rfc2136.tsig_algorithm": "hmac-sha512",
        }
    }
    (warning,) = s.warnings  # certbot wrote TXT records in place; certcli delegates
    assert "certcli config set dns.target NAME" in warning
    assert "c2VjcmV0" not in warning


def test_rfc2136_with_a_target_configured_and_ipv6() -> None:
    credentials = {**CREDENTIALS, "dns_rfc2136_server": "2001:db8::1"}
    del credentials["dns_rfc2136_port"]
    s = _map(RFC2136, credentials=credentials, dns_target="t.acme.example")
    assert dict(s.global_settings)["the rfc2136 key of /r.ini"]["dns.rfc2136.server"] == (
        "[2001:db8::1]:53"
    )
    assert "delegation to t.acme.example" in s.warnings[0]


def test_rfc2136_md5_or_missing_credentials_are_not_imported() -> None:
    md5 = {k: v for k, v in CREDENTIALS.items() if k != "dns_rfc2136_algorithm"}
    s = _map(RFC2136, credentials=md5)  # certbot's default algorithm is HMAC-MD5
    assert s.global_settings == () and s.challenge == "dns-01"
    assert "HMAC-MD5" in s.warnings[0]
    s = _map(RFC2136, credentials=None, credentials_problem="file /r.ini does not exist")
    assert s.warnings[0] == "no DNS key imported: file /r.ini does not exist"
    s = _map(RFC2136, credentials={"dns_rfc2136_server": "192.0.2.1"})
    assert "has no dns_rfc2136_name, dns_rfc2136_secret" in s.warnings[0]


@pytest.mark.parametrize(
    ("params", "live", "expected", "warns"),
    [
        ({"key_type": "ecdsa"}, "rsa-2048", "ec-p256", False),
        ({"key_type": "ecdsa", "elliptic_curve": "secp384r1"}, "ec-p384", "ec-p384", False),
        ({"key_type": "ecdsa", "elliptic_curve": "secp521r1"}, "ec-p256", "ec-p384", True),
        ({"key_type": "rsa"}, "ec-p256", "rsa-2048", False),
        ({"key_type": "RSA", "rsa_key_size": "4096"}, "rsa-4096", "rsa-4096", False),
        ({"key_type": "rsa", "rsa_key_size": "8192"}, "rsa-8192", "rsa-4096", True),
        ({"key_type": "rsa", "rsa_key_size": "1024"}, "rsa-1024", "rsa-2048", True),
        ({}, "rsa-3072", "rsa-3072", False),  # an old conf: the live key's type
        ({}, "ed25519", "rsa-2048", True),
        ({"key_type": "dsa"}, "ec-p256", "ec-p256", True),
    ],
)
def test_key_types(params: dict, live: str, expected: str, warns: bool) -> None:
    key_type, warning = map_key_type(params, live)
    assert key_type == expected
    assert bool(warning) is warns


def test_reuse_key_and_profile() -> None:
    s = _map(
        "[renewalparams]\nauthenticator = webroot\nwebroot_path = /w,\nkey_type = ecdsa\n"
        "reuse_key = True\nrequired_profile = shortlived\npreferred_chain = ISRG Root X1\n"
    )
    assert s.profile == "shortlived" and s.preferred_chain == "ISRG Root X1"
    assert s.warnings == ("certbot reused the key at renewal (reuse_key); certcli makes a new one",)


# -- certbot's account key ----------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [rsa.generate_private_key(65537, 2048), ec.generate_private_key(ec.SECP256R1())],
    ids=["rsa", "ec"],
)
def test_account_key_from_jwk(key: object) -> None:
    import josepy as jose

    jwk = (jose.JWKRSA if isinstance(key, rsa.RSAPrivateKey) else jose.JWKEC)(key=key)
    loaded = jwk_private_key(json.loads(jwk.json_dumps()))
    assert same_public_key(loaded.public_key(), key.public_key())  # type: ignore[attr-defined]


def test_unusable_account_key() -> None:
    with pytest.raises(ValueError, match="cannot use"):
        jwk_private_key({"kty": "OKP", "crv": "Ed25519"})


def test_an_unreadable_certbot_directory_is_one_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """certbot makes live/ and archive/ 0700; root reads them anyway, so os.access says no."""
    for sub in ("renewal", "live", "archive"):
        (tmp_path / "le" / sub).mkdir(parents=True)
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: not str(p).endswith("live") and real_access(p, mode)
    )
    with pytest.raises(InvalidInputError, match=r"cannot read .*/le/live: permission denied"):
        plan_import(Store(tmp_path / "store"), {}, tmp_path / "le", [], now=datetime.now(UTC))


def test_an_imported_rsa_account_key_signs_with_rs256() -> None:
    import josepy as jose

    from certcli.engine.account import alg as _alg
    from certcli.engine.account import jwk as _jwk
    from certcli.x509 import private_key_pem

    rsa_jwk = _jwk(private_key_pem(rsa.generate_private_key(65537, 2048)))
    assert isinstance(rsa_jwk, jose.JWKRSA) and _alg(rsa_jwk) is jose.RS256
    assert _alg(_jwk(private_key_pem(ec.generate_private_key(ec.SECP256R1())))) is jose.ES256
    assert _alg(_jwk(private_key_pem(ec.generate_private_key(ec.SECP384R1())))) is jose.ES384


def test_a_broken_credentials_file_is_reported_without_its_lines(tmp_path: Path) -> None:
    """A secret wrapped onto a line of its own breaks the file; the error names the line,
    never its text (it reaches stderr and --json)."""
    from certcli.certbot_files import read_credentials

    secret = "6lVbtu3HGVrM+Z1ncMGPSuIwEQTJf8pY9ewaw2W5Jfw4K/c7JVDg8ISAZo4MezsR"
    ini = tmp_path / "rfc2136.ini"
    ini.write_text(f"dns_rfc2136_name = k\ndns_rfc2136_secret =\n{secret}\n")
    found, problem = read_credentials({"dns_rfc2136_credentials": str(ini)})
    assert found is None and problem is not None
    assert "line 3" in problem and secret[:12] not in problem
