"""Settings checked by type and range (naming the key and where it came from), names that
are validated as whole strings, and secrets kept out of every message."""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path

import pytest

from tests.conftest import (
    Certcli,
    Run,
    lineage_names,
    lineage_settings,
    ok,
    on_pg,
    snapshot,
    store_contents,
    write_settings,
)
from tests.lab import Lab
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration


def _everything(certcli: Certcli) -> tuple[dict, dict]:
    """The config dir's files and the store's contents (the same thing on the file store)."""
    return snapshot(certcli.config_dir), store_contents(certcli)


TOKEN = "T0KEN-b2a9c1f7e5d3"


def _config(certcli: Certcli, text: str) -> Path:
    certcli.config_dir.mkdir(parents=True, exist_ok=True)
    path = certcli.config_dir / "config.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def _one_error_line(run: Run) -> str:
    """The run's stderr, once it is known to be one error line (no traceback)."""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("certcli: error: "), run.stderr
    return lines[0]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends


# -- secrets never in output ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("webhook", "shown"),
    [
        ("http://127.0.0.1:{port}/services/" + TOKEN, "http://127.0.0.1:{port}/…"),
        ("http://127.0.0.1:{port}/hook?token=" + TOKEN, "http://127.0.0.1:{port}/…"),
        ("hooks.example.com/" + TOKEN, "(a URL that is not valid)"),  # quoted by urllib
    ],
)
def test_a_failing_webhook_shows_its_host_never_its_token(
    acme: Certcli, lab: Lab, webhook: str, shown: str
) -> None:
    port = _closed_port()
    _config(acme, f"[notify]\nwebhook = '{webhook.format(port=port)}'\non_success = true\n")
    ok(acme("issue", "hook.certcli.test", "--webroot", lab.webroot, "--agree-tos"))
    run = acme("renew", "--force", "-v")
    assert run.code == 1
    assert f"the notify webhook {shown.format(port=port)} failed" in run.stderr
    assert TOKEN not in run.stderr + run.stdout
    run = acme("renew", "--force", "--json")
    assert run.code == 1
    (problem,) = run.json()["problems"]
    assert shown.format(port=port) in problem
    assert TOKEN not in run.stdout + run.stderr


@pytest.mark.parametrize("key", ["dns.rfc2136.tsig_secret", "notify.webhook"])
def test_config_set_of_a_secret_reads_it_from_stdin_and_never_echoes_it(
    certcli: Certcli, key: str
) -> None:
    secret = "c2VjcmV0LXRzaWcta2V5LQ==" if "tsig" in key else f"https://h.example/{TOKEN}"
    run = ok(certcli("config", "set", key, input=secret + "\nsecond line\n"))
    assert secret not in run.stdout + run.stderr
    config = tomllib.loads((certcli.config_dir / "config.toml").read_text())
    section, _, name = key.rpartition(".")
    node = config
    for part in section.split("."):
        node = node[part]
    assert node[name] == secret  # the first line, as text
    assert (certcli.config_dir / "config.toml").stat().st_mode & 0o777 == 0o600

    run = ok(certcli("config", "set", key, "--json", input=secret + "\n"))
    assert run.json() == {"key": key, "value": None, "secret": True}
    assert secret not in run.stdout + run.stderr
    # on the command line it still works, with a warning that others can see it there
    run = ok(certcli("config", "set", key, secret))
    assert "other users can read the command line" in run.stderr
    assert secret not in run.stderr
    # `config get` of a secret is an explicit request: it prints it
    assert ok(certcli("config", "get", key)).stdout.strip() == secret


def test_config_set_without_a_value_or_stdin_is_refused(certcli: Certcli) -> None:
    run = certcli("config", "set", "dns.rfc2136.tsig_secret", input="")
    assert run.code == 2
    assert "no value for dns.rfc2136.tsig_secret" in _one_error_line(run)
    assert not (certcli.config_dir / "config.toml").exists()


def test_a_non_secret_value_may_come_from_stdin_too(certcli: Certcli) -> None:
    ok(certcli("config", "set", "renewal.jitter", input="120\n"))
    assert ok(certcli("config", "get", "renewal.jitter")).stdout.strip() == "120"


# -- every validation matches the whole string ---------------------------------------------

CONTROL = ["\n", "\r", "\t", " ", "\x0b", "\x7f"]


@pytest.fixture
def uploaded(certcli: Certcli, ca: LocalCA, tmp_path: Path) -> Certcli:
    issued = ca.issue(["site.example.com"])
    (tmp_path / "site.pem").write_bytes(issued.fullchain_pem)
    (tmp_path / "site.key").write_bytes(issued.key_pem)
    ok(certcli("upload", "site", "--cert", "site.pem", "--key", "site.key"))
    return certcli


@pytest.mark.parametrize("char", CONTROL)
def test_names_with_a_control_character_are_refused_and_nothing_changes(
    uploaded: Certcli, lab: Lab, char: str
) -> None:
    before = _everything(uploaded)
    cases = [
        (["issue", "x.example.com", "--webroot", lab.webroot, "--name", f"x{char}"], "name"),
        (["issue", f"x.example.com{char}", "--webroot", lab.webroot], "domain"),
        (["csr", f"evil{char}.example.com"], "domain"),
        (["csr", "ok.example.com", "--name", f"ok{char}"], "name"),
        (["san", "add", "site", f"x{char}.site.example.com"], "domain"),
        (["san", "add", "site", f"www.site.example.com{char}"], "domain"),
        (["download", f"site{char}", "--out", "-"], "name"),
        (["config", "set", f"renewal.jitter{char}", "1"], "setting"),
    ]
    for argv, what in cases:
        run = uploaded(*argv)
        assert run.code == 2, (argv, run.stderr)
        line = _one_error_line(run)
        assert {"name": "invalid certificate name", "domain": "invalid domain name"}.get(
            what, "invalid setting name"
        ) in line
        assert repr(char)[1:-1] in line  # the name is shown with the character visible
    assert _everything(uploaded) == before


@pytest.mark.parametrize("char", ["\n", "\r", "\t", "\x00"])
def test_an_uploaded_certificate_whose_name_holds_a_control_character_is_refused(
    uploaded: Certcli, ca: LocalCA, tmp_path: Path, char: str
) -> None:
    issued = ca.issue([f"evil{char}.site.example.com", "site.example.com"])
    (tmp_path / "evil.pem").write_bytes(issued.fullchain_pem)
    (tmp_path / "evil.key").write_bytes(issued.key_pem)
    before = _everything(uploaded)
    for name in ("site", "fresh"):
        run = uploaded("upload", name, "--cert", "evil.pem", "--key", "evil.key", "--yes")
        assert run.code == 4, run.stderr
        line = _one_error_line(run)
        assert "which is not a valid domain" in line and repr(char)[1:-1] in line
    assert _everything(uploaded) == before


# -- no internal error from a bad value ----------------------------------------------------

ENV_CASES = [
    # (variable, value, command, what the message says)
    ("CERTCLI_RENEWAL_PARALLEL", "inf", "renew", "a whole number of at least 1"),
    ("CERTCLI_RENEWAL_PARALLEL", "nan", "renew", "a whole number of at least 1"),
    ("CERTCLI_RENEWAL_PARALLEL", "0", "renew", "a whole number of at least 1"),
    ("CERTCLI_RENEWAL_PARALLEL", "1.5", "renew", "a whole number of at least 1"),
    ("CERTCLI_RENEWAL_JITTER", "-1", "renew", "a number of seconds, 0 or more"),
    ("CERTCLI_RENEWAL_JITTER", "inf", "renew", "a number of seconds, 0 or more"),
    ("CERTCLI_ACME_TIMEOUT", "0", "issue", "a number of seconds above 0"),
    ("CERTCLI_ACME_TIMEOUT", "-1", "issue", "a number of seconds above 0"),
    ("CERTCLI_ACME_NETWORK_TIMEOUT", "soon", "issue", "a number of seconds above 0"),
    ("CERTCLI_ACME_NETWORK_TIMEOUT", "nan", "issue", "a number of seconds above 0"),
    ("CERTCLI_SERVER", "https://[::1", "issue", "a CA's directory URL"),
    ("CERTCLI_SERVER", "https://ca.example:99999/dir", "issue", "a CA's directory URL"),
    ("CERTCLI_EMAIL", "not an email", "issue", "invalid email address"),
    ("CERTCLI_STORE_ENCRYPT_KEYS", "maybe", "issue", "true or false"),
]


@pytest.mark.parametrize(("variable", "value", "command", "words"), ENV_CASES)
def test_a_bad_value_in_the_environment_is_exit_2_naming_it(
    acme: Certcli, lab: Lab, variable: str, value: str, command: str, words: str
) -> None:
    argv = ["issue", "env.certcli.test", "--webroot", lab.webroot, "--agree-tos"]
    run = acme(*(argv if command == "issue" else ["renew"]), env={variable: value})
    assert run.code == 2, run.stderr
    line = _one_error_line(run)
    assert f"{variable} (environment)" in line and words in line
    assert lineage_names(acme) == []


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["renew", "--parallel", "0"], "--parallel must be a whole number of at least 1, not 0"),
        (["renew", "--parallel", "-1"], "--parallel must be a whole number of at least 1"),
        (["issue", "a.certcli.test", "b.certcli.test", "--each", "--parallel", "0"], "--parallel"),
        (["issue", "s.certcli.test", "--server", "https://[::1"], "--server must be"),
        (["issue", "s.certcli.test", "--server", "https://:443/dir"], "--server must be"),
        (["issue", "s.certcli.test", "--email", "not an email"], "--email holds an invalid"),
        (["issue", "s.certcli.test", "--email", "a@b@certcli.test"], "exactly one @"),
        (["issue", "s.certcli.test", "--email", "@certcli.test"], "exactly one @"),
        (["issue", "s.certcli.test", "--email", "me@localhost"], "not a valid domain"),
        (["issue", "s.certcli.test", "--email", "me@-x.certcli.test"], "not a valid domain"),
        (["issue", "s.certcli.test", "--email", "me @certcli.test"], "a space"),
        (["account", "update", "--email", "not an email"], "invalid email address"),
        (["config", "set", "email", "not an email"], "invalid email address"),
        (["config", "set", "renewal.parallel", "inf"], "renewal.parallel must be"),
        (["config", "set", "acme.timeout", "0"], "acme.timeout must be a number of seconds"),
        (["config", "set", "hooks", "3"], "hooks is a section"),
        (["config", "set", "notify.on_success", "maybe"], "notify.on_success must be true"),
        (["config", "set", "key_type", "rsa-1024"], "key_type must be one of: ec-p256"),
        (["config", "set", "challenge", "tls-alpn-01"], "challenge must be one of: http-01"),
        (["config", "set", "dns.provider", "route53"], "dns.provider must be one of: rfc2136"),
        (["config", "set", "profile", " "], "profile must be a name"),
        (["issue", "s.certcli.test", "--profile", "a\tb"], "--profile must be a name"),
    ],
)
def test_a_bad_value_on_the_command_line_is_exit_2_naming_it(
    acme: Certcli, lab: Lab, argv: list[str], words: str
) -> None:
    if argv[0] == "issue":
        argv += ["--webroot", str(lab.webroot), "--agree-tos"]
    run = acme(*argv)
    assert run.code == 2, run.stderr
    assert words in _one_error_line(run)
    assert snapshot(acme.config_dir) == {} and lineage_names(acme) == []


CONFIG_CASES = [
    # (config.toml, the key the message names)
    ('hooks = "x"', "hooks"),
    ("notify = 3", "notify"),
    ("dns = 1", "dns"),
    ('renewal = "x"', "renewal"),
    ("acme = []", "acme"),
    ("store = true", "store"),
    ('[dns]\nrfc2136 = "x"', "dns.rfc2136"),
    ("[dns]\nhook = 1", "dns.hook"),
    ("[acme]\ntimeout = 0", "acme.timeout"),
    ("[acme]\ntimeout = -1", "acme.timeout"),
    ('[acme]\nnetwork_timeout = "soon"', "acme.network_timeout"),
    ("[renewal]\nparallel = inf", "renewal.parallel"),
    ("[renewal]\nparallel = 0", "renewal.parallel"),
    ("[renewal]\nparallel = 2.5", "renewal.parallel"),
    ("[renewal]\njitter = -5", "renewal.jitter"),
    ("[hooks]\ntimeout = true", "hooks.timeout"),
    ("[hooks]\ndeploy = 3", "hooks.deploy"),
    ('[notify]\non_success = "maybe"', "notify.on_success"),
    ("[notify]\nwebhook = 1", "notify.webhook"),
    ("[dns]\nresolvers = 5", "dns.resolvers"),
    ("[dns]\npropagation_timeout = 0", "dns.propagation_timeout"),
    ("[dns.hook]\ntimeout = -1", "dns.hook.timeout"),
    ("[dns.rfc2136]\ntsig_secret = 5", "dns.rfc2136.tsig_secret"),
    ('[store]\nencrypt_keys = "maybe"', "store.encrypt_keys"),
    ('email = "not an email"', "email"),
    ("server = 5", "server"),
    ('server = "https://[::1"', "server"),
    ('key_type = "rsa-1024"', "key_type"),
    ('challenge = "tls-alpn-01"', "challenge"),
    ('[dns]\nprovider = "route53"', "dns.provider"),
]


@pytest.mark.parametrize(("text", "key"), CONFIG_CASES)
def test_a_bad_value_in_config_toml_is_exit_5_naming_the_key_and_the_file(
    acme: Certcli, lab: Lab, text: str, key: str
) -> None:
    path = _config(acme, text + "\n")
    for argv in (
        ["renew"],
        ["issue", "cfg.certcli.test", "--webroot", str(lab.webroot), "--agree-tos"],
    ):
        run = acme(*argv)
        assert run.code == 5, run.stderr
        line = _one_error_line(run)
        assert f": {key} in {path} " in line and f"fix it in {path}" in line
    assert lineage_names(acme) == []


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ("name = 5", "name"),
        ('domains = "x.certcli.test"', "domains"),
        ("domains = [5]", "domains"),
        ('domains = ["lt.certcli.test\\n"]', "domains"),
        ('domains = ["lt.certcli.test", "a\\tb.certcli.test"]', "domains"),
        ('mode = "weird"', "mode"),
        ("key_type = 3", "key_type"),
        ('hooks = "x"', "hooks"),
        ("webroot = 5", "webroot"),
        ('server = "nowhere"', "server"),
    ],
)
def test_a_bad_value_in_lineage_toml_is_exit_5_naming_the_key_and_the_file(
    acme: Certcli, lab: Lab, changes: str, key: str
) -> None:
    ok(acme("issue", "lt.certcli.test", "--webroot", lab.webroot, "--agree-tos"))
    text = lineage_settings(acme, "lt.certcli.test") or ""
    kept = {k: v for k, v in tomllib.loads(text).items() if k != key}
    import tomli_w

    write_settings(acme, "lt.certcli.test", tomli_w.dumps(kept) + "\n" + changes + "\n")
    run = acme("revoke", "lt.certcli.test")
    assert run.code == 5, run.stderr
    line = _one_error_line(run)
    if on_pg(acme):  # the settings are a row of the database
        assert f"{key} in the settings of 'lt.certcli.test' in postgresql://" in line, line
    else:
        path = acme.config_dir / "certs" / "lt.certcli.test" / "lineage.toml"
        assert f"{key} in {path} " in line and f"fix it in {path}" in line


def test_a_timeout_of_half_a_second_is_kept_as_such(acme: Certcli, lab: Lab) -> None:
    # int(0.5) was 0: no timeout at all for requests, which refuses it
    run = acme(
        "issue",
        "half.certcli.test",
        "--webroot",
        lab.webroot,
        "--agree-tos",
        env={"CERTCLI_ACME_NETWORK_TIMEOUT": "0.5"},
    )
    ok(run)


# -- the contact address -------------------------------------------------------------------


def test_an_email_other_than_the_accounts_contact_is_warned_about(acme: Certcli, lab: Lab) -> None:
    def issue(name: str, *args: str) -> Run:
        return acme("issue", name, "--webroot", lab.webroot, "--agree-tos", *args)

    run = ok(issue("c1.certcli.test", "--email", "first@certcli.test"))
    assert "warning" not in run.stderr
    run = ok(issue("c2.certcli.test", "--email", "first@certcli.test"))
    assert "warning" not in run.stderr
    run = ok(issue("c3.certcli.test", "--email", "second@certcli.test"))
    assert "--email second@certcli.test is not the contact of your account" in run.stderr
    assert "mailto:first@certcli.test" in run.stderr
    assert "`certcli account update --email second@certcli.test`" in run.stderr
    assert ok(acme("account", "show", "--json")).json()["contact"] == ["mailto:first@certcli.test"]
    # the fix the warning names works, and then the warning is gone
    ok(acme("account", "update", "--email", "second@certcli.test"))
    assert "warning" not in ok(issue("c4.certcli.test", "--email", "second@certcli.test")).stderr
