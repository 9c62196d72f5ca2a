"""A hostile local user (and a hostile CA or webhook server) against the security rules of
docs/security.md, where the pieces that enforce them meet: the webroot as given, the store
being made, certbot's account, state.json, the environment and messages of hooks and
notifications, what a CA's words may do to a terminal."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w

from certcli.challenges import Challenge
from certcli.challenges.http01 import WebrootSolver
from tests.conftest import Certcli, OtherUser, has_account, lineage_names, ok, snapshot
from tests.lab import Lab
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration


@pytest.fixture
def precious(shared_dir: Path) -> Path:
    """A directory of root's, 0700: where a planted link would lead certcli."""
    directory = shared_dir / "root-only"
    directory.mkdir(mode=0o700)
    (directory / "sub").mkdir(mode=0o700)
    return directory


@pytest.mark.parametrize("given", ["site", "site/sub"])
def test_a_webroot_reached_through_a_link_another_user_planted_is_not_written(
    acme: Certcli, other_user: OtherUser, other_owned: Path, precious: Path, given: str
) -> None:
    """The webroot named on the command line, or a directory above it, is a link the other
    user planted: certcli creates nothing where it leads."""
    other_user.sh(f"ln -s {precious} {other_owned}/site")
    before = snapshot(precious)
    run = acme("issue", "linked.certcli.test", "--webroot", other_owned / given, "--agree-tos")
    assert run.code == 1, run.stderr
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"certcli: error: cannot write the challenge file in {other_owned / given}"
            f"/.well-known/acme-challenge: {other_owned}/site is a symbolic link owned by another "
            f"user (uid {other_user.uid}); certcli does not follow it"
        )
    ), run.stderr
    assert snapshot(precious) == before


def test_a_link_of_the_site_user_s_own_to_its_own_directory_is_followed(
    other_user: OtherUser, other_owned: Path
) -> None:
    """A deploy tool's `current -> releases/2`, all the site user's: root writes nothing
    there that the user could not, so the link is followed as before."""
    other_user.sh(f"cd {other_owned} && mkdir -p releases/2 && ln -s releases/2 current")
    solver = WebrootSolver(other_owned / "current")
    challenge = Challenge("x.example.com", "http-01", "tok", "tok.thumb", "tok.thumb")
    solver.present([challenge])
    token = other_owned / "releases" / "2" / ".well-known" / "acme-challenge" / "tok"
    assert token.read_text() == "tok.thumb"
    solver.cleanup([challenge])
    assert not token.exists()


def test_no_secret_from_the_environment_reaches_a_hook(
    acme: Certcli, lab: Lab, tmp_path: Path
) -> None:
    """Every setting that is a secret (config.SECRET_KEYS), given in the environment, is kept
    from the deploy hook and the notify command, as certcli's other secrets are."""
    seen = tmp_path / "env"
    secrets = {
        "CERTCLI_NOTIFY_WEBHOOK": "http://127.0.0.1:9/hook/T0KEN-webhook",
        "CERTCLI_DNS_RFC2136_TSIG_SECRET": "c2VjcmV0LXRzaWc=",
    }
    env = {**secrets, "CERTCLI_HOOKS_DEPLOY": f"env >> {seen}"}
    ok(acme("issue", "env.certcli.test", "--webroot", lab.webroot, "--agree-tos", env=env))
    (acme.config_dir / "config.toml").write_text(
        f"[notify]\ncommand = 'env >> {seen}'\non_success = true\n"
    )
    ok(acme("renew", "--force", env=env))
    text = seen.read_text()
    assert "CERTCLI_NAME=env.certcli.test" in text  # the hook ran
    assert "CERTCLI_EVENT=renewed" in text  # the notify command ran
    for name, value in secrets.items():
        assert name not in text and value not in text


def _tcp_server(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    """A loopback port whose server calls `handle` with each connection, until closed."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                handle(conn)

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def garbage_server() -> Iterator[int]:
    """A port whose server answers anything with a line that is not HTTP."""

    def answer(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"NOT-HTTP T0KEN\r\n\r\n")

    yield from _tcp_server(answer)


TOKEN = "T0KEN-5e1f"


@pytest.mark.parametrize(
    ("webhook", "shown"),
    [
        ("http://127.0.0.1:{port}/hook/" + TOKEN + " x", "http://127.0.0.1:{port}/…"),
        ("http://127.0.0.1:{port}/hook/" + TOKEN, "http://127.0.0.1:{port}/…"),  # answers junk
        ("file:///etc/" + TOKEN, "(a URL that is not valid)"),
        ("ftp://127.0.0.1:{port}/" + TOKEN, "ftp://127.0.0.1:{port}/…"),
    ],
    ids=["space-in-path", "not-http-answer", "file-url", "ftp-url"],
)
def test_a_webhook_that_cannot_be_sent_is_one_problem_without_its_token(
    acme: Certcli, lab: Lab, garbage_server: int, webhook: str, shown: str
) -> None:
    ok(acme("issue", "junk-hook.certcli.test", "--webroot", lab.webroot, "--agree-tos", "-q"))
    config = acme.config_dir / "config.toml"
    config.write_text(
        f"[notify]\nwebhook = '{webhook.format(port=garbage_server)}'\non_success = true\n"
    )
    config.chmod(0o600)
    for argv in (["renew", "--force", "-v"], ["renew", "--force", "--json"]):
        run = acme(*argv)
        assert run.code == 1, run.stderr  # renewed; the notification failed
        assert TOKEN not in run.stdout + run.stderr and "Traceback" not in run.stderr
    (problem,) = run.json()["problems"]
    assert problem.startswith(f"the notify webhook {shown.format(port=garbage_server)} "), problem


def _certbot_account(root: Path, account: str) -> Path:
    """certbot's account `account` at the fake lineages' server (https://127.0.0.1:9/dir)."""
    import json

    import josepy
    from cryptography.hazmat.primitives.asymmetric import ec

    directory = root / "accounts" / "127.0.0.1:9" / "dir" / account
    directory.mkdir(parents=True)
    jwk = josepy.JWKEC(key=ec.generate_private_key(ec.SECP256R1()))
    (directory / "private_key.json").write_text(json.dumps(jwk.to_json()))
    (directory / "private_key.json").chmod(0o400)
    (directory / "regr.json").write_text(
        json.dumps({"uri": f"https://127.0.0.1:9/acct/{account}", "body": {}})
    )
    (directory / "meta.json").write_text(json.dumps({"creation_dt": "2025-01-01T00:00:00Z"}))
    return directory


@pytest.mark.parametrize("plant", ["key-owned-by-them", "key-writable", "account-dir-theirs"])
def test_a_certbot_account_others_could_change_is_not_imported(
    certcli: Certcli, ca: LocalCA, other_user: OtherUser, tmp_path: Path, plant: str
) -> None:
    """Its key would sign every request certcli sends the CA (whoever planted it could then
    revoke the certificates, deactivate the account): the rule of certcli's own account."""
    from tests.integration.test_import_certbot import fake_lineage

    root = tmp_path / "letsencrypt"
    params = (
        "authenticator = webroot\nwebroot_path = /var/www/html,\naccount = a1b2\n"
        "[[webroot_map]]\nacct.example.com = /var/www/html\n"
    )
    fake_lineage(root, ca, "acct.example.com", ["acct.example.com"], params=params)
    account = _certbot_account(root, "a1b2")
    key = account / "private_key.json"
    if plant == "key-owned-by-them":
        os.chown(key, other_user.uid, other_user.gid)
        bad = f"{key} is owned by uid {other_user.uid} (certcli-other), not by you"
    elif plant == "key-writable":
        key.chmod(0o666)
        bad = f"{key} is writable by other users (mode 0666)"
    else:
        os.chown(account, other_user.uid, other_user.gid)
        bad = f"{account} is owned by uid {other_user.uid} (certcli-other), not by you"
    run = certcli("import", "certbot", root, "--yes")
    assert run.code == 0, run.stderr
    assert f"no account at https://127.0.0.1:9/dir imported ({bad}" in run.stderr, run.stderr
    assert not has_account(certcli)
    assert lineage_names(certcli) == ["acct.example.com"]


def test_a_certbot_account_of_root_s_own_is_imported(
    certcli: Certcli, ca: LocalCA, tmp_path: Path
) -> None:
    from tests.integration.test_import_certbot import fake_lineage

    root = tmp_path / "letsencrypt"
    params = (
        "authenticator = webroot\nwebroot_path = /var/www/html,\naccount = a1b2\n"
        "[[webroot_map]]\nacct.example.com = /var/www/html\n"
    )
    fake_lineage(root, ca, "acct.example.com", ["acct.example.com"], params=params)
    _certbot_account(root, "a1b2")
    ok(certcli("import", "certbot", root, "--yes"))
    assert has_account(certcli)


@pytest.mark.parametrize(
    ("text", "section", "kind"),
    [
        (f"notify = 'https://hooks.example.com/{TOKEN}'\n", "notify", "text"),
        (f"[dns]\nrfc2136 = '{TOKEN}'\n", "dns.rfc2136", "text"),
        (f"[dns]\nrfc2136 = ['{TOKEN}']\n", "dns.rfc2136", "a list"),
    ],
)
def test_a_section_given_as_a_value_is_refused_without_showing_it(
    certcli: Certcli, text: str, section: str, kind: str
) -> None:
    """`notify = URL` for `[notify] webhook = URL`: the value is likely a secret."""
    certcli.config_dir.mkdir()
    config = certcli.config_dir / "config.toml"
    config.write_text(text)
    config.chmod(0o600)
    run = certcli("renew", "-v")
    assert run.code == 5, run.stderr
    assert (
        run.stderr.strip()
        .splitlines()[-1]
        .startswith(
            f"certcli: error: {section} in {config} must be a table ([{section}]), not {kind}; "
        )
    ), run.stderr
    assert TOKEN not in run.stdout + run.stderr


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A port, and what each connection to it sent (answered with nothing)."""
    seen: list[bytes] = []
    for port in _tcp_server(lambda conn: seen.append(conn.recv(65536))):
        yield port, seen


@pytest.mark.file_store  # the mode of the store's own file
@pytest.mark.parametrize("mode", [0o666, 0o664])
def test_a_state_json_others_may_write_is_not_acted_on(
    acme: Certcli, lab: Lab, listener: tuple[int, list[bytes]], mode: int
) -> None:
    """state.json says which URL `renew` asks for the renewal window (ARI), which certificate
    an order replaces, and when to retry: whoever may write it could have certcli fetch any
    URL. Such a lineage is Damaged, with the fix; the others are renewed."""
    import json

    port, seen = listener
    ok(acme("issue", "state.certcli.test", "--webroot", lab.webroot, "--agree-tos", "-q"))
    ok(acme("issue", "fine.certcli.test", "--webroot", lab.webroot, "-q"))
    path = acme.config_dir / "certs" / "state.certcli.test" / "state.json"
    state = json.loads(path.read_text())
    state["ari"] = {"url": f"http://127.0.0.1:{port}/planted", "next_check": "2000-01-01T00:00Z"}
    path.write_text(json.dumps(state))
    path.chmod(mode)
    line = f"{path} is writable by other users (mode 0{mode:o}); chmod go-w {path}"
    run = acme("renew")
    assert run.code == 1, run.stderr
    assert line in run.stderr and "fine.certcli.test" not in run.stderr
    assert seen == []  # nothing fetched
    run = ok(acme("status", "state.certcli.test"))
    assert "Status:  Damaged" in run.stdout and line in run.stdout
    path.chmod(0o644)
    run = acme("renew")
    assert seen and b"GET /planted" in seen[0]  # the owner's own file is read again


@pytest.mark.parametrize("argv", [["status"], ["csr", "x.example.com"], ["renew"]])
def test_an_empty_config_dir_is_never_the_current_directory(
    certcli: Certcli, tmp_path: Path, argv: list[str]
) -> None:
    """`--config-dir "$UNSET"`: the store would be (and config.toml read from) wherever the
    command runs."""
    work = tmp_path / "work"
    work.mkdir()
    certcli.cwd = work
    run = certcli("--config-dir", "", *argv)
    assert run.code == 2
    assert run.stderr == (
        "certcli: error: --config-dir is empty; give the store's directory, or leave it out\n"
    )
    assert os.listdir(work) == []


def test_a_url_in_a_failing_command_is_shown_by_its_host_only(acme: Certcli, lab: Lab) -> None:
    """`[notify] command = "curl -d @- https://hooks.example.com/TOKEN"` is the other common
    way to a webhook: its URL, in the command or in what it printed, is cut as a webhook's."""
    ok(acme("issue", "cmd-hook.certcli.test", "--webroot", lab.webroot, "--agree-tos", "-q"))
    url = f"http://127.0.0.1:9/services/{TOKEN}?key={TOKEN}"
    command = f"""sh -c 'echo "cannot post to $0" >&2; exit 7' '{url}'"""
    config = acme.config_dir / "config.toml"
    config.write_text(tomli_w.dumps({"notify": {"command": command, "on_success": True}}))
    config.chmod(0o600)
    hook = f"""sh -c 'echo "no reload via $0" >&2; exit 3' '{url}'"""
    run = acme("renew", "--force", "--json", env={"CERTCLI_HOOKS_DEPLOY": hook})
    assert run.code == 1, run.stderr
    assert TOKEN not in run.stdout + run.stderr
    problems = run.json()["problems"]
    assert any(
        "the notify command `sh -c 'echo \"cannot post to $0\" >&2; exit 7' "
        "'http://127.0.0.1:9/…'` failed (exit 7): cannot post to http://127.0.0.1:9/…" in p
        for p in problems
    ), problems
    assert any("no reload via http://127.0.0.1:9/…" in p for p in problems), problems


EVIL = "no\x1b[2J\x1b]0;owned\x07\r\ncertcli: note: all is fine\u2028x"


@pytest.fixture
def shouting_ca(certcli: Certcli, lab: Lab, monkeypatch: pytest.MonkeyPatch) -> Iterator[Certcli]:
    """The lab's CA behind a proxy that refuses every order with a problem document whose
    detail holds terminal escapes and line breaks."""
    from tests.lab.ari import AriShim

    shim = AriShim(lab, proxy=True)
    handler = shim.server.RequestHandlerClass

    def do_post(self: Any) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path != "/order-plz":
            self._forward("POST", body)
            return
        problem = {
            "type": "urn:ietf:params:acme:error:rejectedIdentifier",
            "detail": EVIL,
            "status": 400,
        }
        self._json(problem, status=400, content="application/problem+json")

    monkeypatch.setattr(handler, "do_POST", do_post)
    certcli.point_at(lab)
    certcli.env["CERTCLI_SERVER"] = shim.directory_url
    yield certcli
    shim.close()


def test_what_the_ca_says_cannot_write_to_the_terminal(shouting_ca: Certcli) -> None:
    """A CA's words are shown, but never as escapes the terminal obeys or as extra lines."""
    run = shouting_ca("issue", "shout.certcli.test", "--webroot", ".", "--agree-tos", "-q")
    assert run.code != 0
    lines = run.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("certcli: error: "), run.stderr
    assert not any(c in run.stderr for c in "\x1b\x07\r\u2028"), run.stderr
    assert "no\\x1b[2J" in lines[0], lines[0]  # shown, escaped
    run = shouting_ca("status", "shout.certcli.test")
    assert "no\\x1b[2J" in run.stdout  # the error, escaped
    for argv in (["status", "shout.certcli.test"], ["renew", "shout.certcli.test", "--force"]):
        run = shouting_ca(*argv)
        assert not any(c in run.stdout + run.stderr for c in "\x1b\x07\r\u2028"), run
        assert not any(line.startswith("certcli: note") for line in run.stdout.splitlines())
