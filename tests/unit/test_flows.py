from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from certcli.challenges import Challenge
from certcli.challenges.http01 import WebrootSolver
from certcli.config import LETSENCRYPT, resolve_server
from certcli.errors import CertcliError, NotConfirmedError, StoreError, UsageError
from certcli.flows.issue import _check_existing
from certcli.flows.plan import AcmeOptions, make_plan
from certcli.models import LineageSettings, Mode
from certcli.storage.files import Store


def test_server_shortcuts_and_urls() -> None:
    assert resolve_server("letsencrypt") == LETSENCRYPT
    assert "staging" in resolve_server("LetsEncrypt-Staging")
    assert resolve_server("https://ca.example/dir") == "https://ca.example/dir"
    with pytest.raises(UsageError, match="neither a URL"):
        resolve_server("lets-encrypt")


WEB = AcmeOptions(webroot="/w")


def test_the_eab_hmac_key_is_never_in_a_representation() -> None:
    """Nor in a plan's: a message or a traceback quoting either shows no secret."""
    options = AcmeOptions(webroot="/w", eab_kid="kid-1", eab_hmac_key="c2VjcmV0LWhtYWM")
    plan = make_plan(options, {}, None)
    for shown in (repr(options), repr(plan)):
        assert "c2VjcmV0LWhtYWM" not in shown and "kid-1" in shown


def test_plan_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"server": "https://config/dir", "key_type": "rsa-2048", "acme": {"timeout": 60}}
    lineage = LineageSettings.build(
        "x", ("x.com",), Mode.AUTO, "ec-p384", {"server": "https://lineage/dir"}
    )
    plan = make_plan(WEB, config, None)
    assert (plan.ca.directory_url, plan.key_type, plan.ca.timeout) == (
        "https://config/dir",
        "rsa-2048",
        60,
    )
    plan = make_plan(WEB, config, lineage)
    assert (plan.ca.directory_url, plan.key_type) == ("https://lineage/dir", "ec-p384")
    monkeypatch.setenv("CERTCLI_SERVER", "https://env/dir")
    assert make_plan(WEB, config, lineage).ca.directory_url == "https://env/dir"
    cli = AcmeOptions(server="letsencrypt", key_type="rsa-4096", webroot="/w")
    plan = make_plan(cli, config, lineage)
    assert (plan.ca.directory_url, plan.key_type) == (LETSENCRYPT, "rsa-4096")
    assert make_plan(WEB, {}, None).ca.directory_url == "https://env/dir"
    monkeypatch.setenv("CERTCLI_ACME_TIMEOUT", "soon")
    with pytest.raises(UsageError, match=r"CERTCLI_ACME_TIMEOUT \(environment\) must be"):
        make_plan(WEB, {}, None)


def test_lineage_extra_records_what_renewal_needs() -> None:
    plan = make_plan(
        AcmeOptions(server="https://ca/dir", webroot="/srv/www", ca_bundle="/b.pem"), {}, None
    )
    assert plan.lineage_extra() == {
        "server": "https://ca/dir",
        "challenge": "http-01",
        "webroot": "/srv/www",
        "ca_bundle": "/b.pem",
    }


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store")
    s.ensure()
    s.write_settings(LineageSettings("x", ("x.com", "www.x.com"), Mode.AUTO))
    return s


def test_existing_lineage_rules(store: Store) -> None:
    config = store.read_settings("x")
    _check_existing(store, config, ["x.com"], force_renewal=False, expand=False)  # never issued
    store.add_version(
        "x", dict.fromkeys(("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"), b""), {}
    )
    with pytest.raises(UsageError, match="already exists for these domains"):
        _check_existing(store, config, ["www.x.com", "x.com"], force_renewal=False, expand=False)
    _check_existing(store, config, ["www.x.com", "x.com"], force_renewal=True, expand=False)
    with pytest.raises(UsageError, match=r"already exists for x\.com") as caught:
        _check_existing(
            store, config, ["x.com", "www.x.com", "a.x.com"], force_renewal=False, expand=False
        )
    assert caught.value.hint is not None and "--expand" in caught.value.hint
    _check_existing(
        store, config, ["x.com", "www.x.com", "a.x.com"], force_renewal=False, expand=True
    )
    with pytest.raises(UsageError, match="already exists"):  # expanding never drops a domain
        _check_existing(store, config, ["x.com", "a.x.com"], force_renewal=False, expand=True)
    custom = LineageSettings("x", config.domains, Mode.CUSTOM)
    domains = list(config.domains)
    with pytest.raises(UsageError, match="uploaded certificate") as caught:
        _check_existing(store, custom, domains, force_renewal=False, expand=False)
    assert caught.value.hint is not None and "--force-renewal" in caught.value.hint


def test_an_uploaded_lineage_or_a_waiting_csr_becomes_acme_only_when_confirmed(
    store: Store,
) -> None:
    custom = LineageSettings("x", ("x.com", "www.x.com"), Mode.CUSTOM)
    domains = list(custom.domains)
    asked: list[str] = []

    def answer(yes: bool) -> Callable[[str], bool]:
        return lambda question: asked.append(question) is None and yes

    store.write_pending("x", b"key", b"csr", {})  # a CSR waits: issuing asks, too
    with pytest.raises(NotConfirmedError, match="has a CSR waiting"):
        _check_existing(store, custom, domains, force_renewal=False, expand=False)
    with pytest.raises(NotConfirmedError) as caught:
        _check_existing(
            store, custom, domains, force_renewal=False, expand=False, confirm=answer(False)
        )
    assert caught.value.hint == "confirm at a terminal, or add --yes"
    _check_existing(store, custom, domains, force_renewal=False, expand=False, confirm=answer(True))
    assert (
        asked
        == ["'x' has a CSR waiting. Switch it to ACME, so that certcli issues and renews it?"] * 2
    )
    store.add_version(
        "x", dict.fromkeys(("cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"), b""), {}
    )
    with pytest.raises(NotConfirmedError, match="holds an uploaded certificate"):
        _check_existing(store, custom, domains, force_renewal=True, expand=False)
    _check_existing(store, custom, domains, force_renewal=True, expand=False, confirm=answer(True))
    assert asked[-1].startswith("'x' holds an uploaded certificate. Switch it to ACME")
    with pytest.raises(UsageError, match="already exists"):  # confirmed, the rules still hold
        _check_existing(
            store, custom, ["y.com"], force_renewal=True, expand=False, confirm=answer(True)
        )


def test_webroot_solver_writes_readable_tokens_and_removes_them(tmp_path: Path) -> None:
    solver = WebrootSolver(tmp_path)
    challenges = [Challenge("x.com", "http-01", "tok-1_A", "tok-1_A.thumb", "tok-1_A.thumb")]
    solver.present(challenges)
    token = tmp_path / ".well-known" / "acme-challenge" / "tok-1_A"
    assert token.read_text() == "tok-1_A.thumb"
    assert stat.S_IMODE(os.stat(token).st_mode) == 0o644
    solver.cleanup(challenges)
    assert not token.exists()
    solver.cleanup(challenges)  # twice is harmless


def test_webroot_solver_refuses_a_token_that_is_a_path(tmp_path: Path) -> None:
    solver = WebrootSolver(tmp_path)
    with pytest.raises(CertcliError, match="malformed token"):
        solver.present([Challenge("x.com", "http-01", "../../etc/passwd", "v", "v")])
    assert not (tmp_path / "etc").exists()


def test_webroot_solver_never_writes_through_a_link_at_the_token(tmp_path: Path) -> None:
    directory = tmp_path / "site" / ".well-known" / "acme-challenge"
    directory.mkdir(parents=True)
    solver = WebrootSolver(tmp_path / "site")
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (directory / "tok").symlink_to(victim)
    solver.present([Challenge("x.com", "http-01", "tok", "tok.thumb", "tok.thumb")])
    assert victim.read_text() == "precious"  # the link was replaced, never written through
    assert not (directory / "tok").is_symlink()
    assert (directory / "tok").read_text() == "tok.thumb"


def test_webroot_must_be_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist") as missing:
        WebrootSolver(tmp_path / "missing")
    assert f"mkdir -p {tmp_path / 'missing'}" in (missing.value.hint or "")
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="not a directory"):
        WebrootSolver(tmp_path / "file")


def test_a_plan_needs_a_way_to_answer() -> None:
    with pytest.raises(UsageError, match="no way to answer"):
        make_plan(AcmeOptions(), {}, None)


def test_dns_plan_settings_and_the_default_target(tmp_path: Path) -> None:
    config = {
        "dns": {
            "zone": "acme.example.net.",
            "resolvers": ["127.0.0.1:8053", "192.0.2.1"],
            "rfc2136": {"server": "127.0.0.1:8053", "tsig_name": "k", "tsig_secret": "c2VjcmV0"},
        }
    }
    plan = make_plan(AcmeOptions(challenge="dns-01"), config, None, Store(tmp_path))
    assert plan.challenge_settings is not None
    assert plan.challenge_settings.resolvers == [("127.0.0.1", 8053), ("192.0.2.1", 53)]
    assert plan.challenge_settings.target.endswith(".acme.example.net")
    assert plan.challenge_settings.target.startswith("certcli-")
    again = make_plan(AcmeOptions(challenge="dns-01"), config, None, Store(tmp_path))
    assert (
        again.challenge_settings is not None
        and again.challenge_settings.target == plan.challenge_settings.target
    )  # one per installation
    assert plan.lineage_extra()["dns"] == {"target": plan.challenge_settings.target}
    config["dns"]["target"] = "Fixed.Example.NET."
    fixed = make_plan(AcmeOptions(challenge="dns-01"), config, None, Store(tmp_path))
    assert (
        fixed.challenge_settings is not None
        and fixed.challenge_settings.target == "fixed.example.net"
    )
    with pytest.raises(UsageError, match="delegation target"):
        make_plan(AcmeOptions(challenge="dns-01"), {}, None, Store(tmp_path))


def test_webroot_tokens_are_readable_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        solver = WebrootSolver(tmp_path)
        solver.present([Challenge("x.com", "http-01", "tok", "tok.t", "tok.t")])
    finally:
        os.umask(old)
    directory = tmp_path / ".well-known" / "acme-challenge"
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(directory / "tok").st_mode) == 0o644


def test_a_dry_run_at_lets_encrypt_rehearses_at_its_staging_ca(tmp_path: Path) -> None:
    from certcli.config import LETSENCRYPT_STAGING
    from certcli.flows.plan import rehearsal
    from certcli.models import Account

    store = Store(tmp_path / "config")
    production = make_plan(WEB, {}, None)
    assert production.ca.directory_url == LETSENCRYPT
    staged = rehearsal(store, production)
    assert staged.ca.directory_url == LETSENCRYPT_STAGING and not staged.ca.agree_tos
    assert staged.webroot == production.webroot  # only the CA changes
    # an account at production means its terms (which staging shares) were accepted
    store.write_account(Account(LETSENCRYPT, "https://acct/1", (), None, "2026-01-01Z", b"k"))
    assert rehearsal(store, production).ca.agree_tos
    other = make_plan(AcmeOptions(webroot="/w", server="https://ca.test/dir"), {}, None)
    assert rehearsal(store, other) is other  # any other CA: the dry run goes where renewals go


def test_issue_each_dry_run_at_lets_encrypt_never_asks_production(tmp_path: Path) -> None:
    from certcli.config import LETSENCRYPT_STAGING
    from certcli.flows.issue import issue_each

    asked: list[str] = []

    class Stop(CertcliError):
        pass

    class Session:
        interactive = False
        pause = print  # as the real one: every method's solver is given it

        def get(self, settings: object) -> None:
            asked.append(settings.directory_url)  # type: ignore[attr-defined]
            raise Stop("enough")

    store = Store(tmp_path / "config")
    options = AcmeOptions(webroot=str(tmp_path))
    with pytest.raises(Stop):
        issue_each(
            store, Session(), [["x.com"]], options, {}, lambda *_: None, parallel=1, dry_run=True
        )  # type: ignore[arg-type]
    assert asked == [LETSENCRYPT_STAGING]


def test_webroot_solver_never_chmods_through_a_link_swapped_in_after_mkdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # whoever owns the webroot replaces the directory certcli has just made with a link to
    # a file of root's, between the mkdir and the chmod
    victim = tmp_path / "shadow"
    victim.write_text("root:secret\n")
    victim.chmod(0o600)
    real_mkdir = os.mkdir

    def mkdir_then_swap(path: object, mode: int = 0o777, *, dir_fd: int | None = None) -> None:
        real_mkdir(path, mode, dir_fd=dir_fd)  # type: ignore[arg-type]
        if str(path).endswith("acme-challenge"):
            os.rmdir(path, dir_fd=dir_fd)  # type: ignore[arg-type]
            os.symlink(victim, path, dir_fd=dir_fd)  # type: ignore[arg-type]

    (tmp_path / "site").mkdir()
    monkeypatch.setattr(os, "mkdir", mkdir_then_swap)
    solver = WebrootSolver(tmp_path / "site")
    with pytest.raises(CertcliError, match="cannot write the challenge file"):
        solver.present([Challenge("x.com", "http-01", "tok", "tok.t", "tok.t")])
    assert stat.S_IMODE(victim.stat().st_mode) == 0o600
    assert victim.read_text() == "root:secret\n"


def test_names_the_challenge_cannot_validate_are_refused() -> None:
    from certcli.challenges import check_identifiers as check_challenge

    check_challenge(["x.com", "*.x.com"], "dns-01")
    check_challenge(["x.com", "192.0.2.1", "2001:db8::1"], "http-01")
    with pytest.raises(UsageError, match=r"\*\.x\.com needs DNS-01") as wildcard:
        check_challenge(["x.com", "*.x.com"], "http-01")
    assert "--dns or --wildcard" in (wildcard.value.hint or "")
    with pytest.raises(UsageError, match="2001:db8::1 is an IP address") as address:
        check_challenge(["x.com", "2001:db8::1"], "dns-01", "x.com")
    assert "'x.com' answers DNS-01" in address.value.message
    assert "--webroot" in (address.value.hint or "")
    lineage = LineageSettings("x", ("x.com", "*.x.com"), Mode.AUTO, "ec-p256")
    with pytest.raises(UsageError, match="needs DNS-01"):
        make_plan(WEB, {}, lineage)  # a renewal of a lineage edited into an impossible one


@pytest.mark.parametrize(
    ("options", "words"),
    [
        (AcmeOptions(webroot="/w", key_type="rsa-1024"), "--key-type must be one of: ec-p256"),
        (AcmeOptions(webroot="/w", preferred_chain=""), "--preferred-chain must be a name"),
        (AcmeOptions(webroot="/w", profile="a\nb"), "--profile must be a name as the CA gives it"),
    ],
)
def test_settings_that_cannot_work_are_refused_by_the_plan(
    options: AcmeOptions, words: str
) -> None:
    with pytest.raises(UsageError) as raised:
        make_plan(options, {}, None)
    assert words in raised.value.message
    lineage = LineageSettings("x", ("x.com",), Mode.AUTO, "rsa-512", webroot="/w")
    with pytest.raises(StoreError, match=r"^key_type must be one of: .*, not 'rsa-512'"):
        make_plan(AcmeOptions(), {}, lineage)  # from lineage.toml as well
