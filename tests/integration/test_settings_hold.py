"""A command that fails leaves the lineage's settings as they were, and what cannot work is
refused before anything is ordered or stored (exit 2, one line with the fix)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import (
    Certcli,
    Run,
    lineage_names,
    lineage_settings,
    live_version,
    ok,
    store_contents,
    write_settings,
)
from tests.integration.test_dns import _name
from tests.lab import Lab

pytestmark = pytest.mark.integration


def _refused(run: Run, *words: str) -> str:
    """Exit 2 with one error line naming `words`; the line."""
    assert run.code == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("certcli: error: "), run.stderr
    for word in words:
        assert word in lines[0]
    return lines[0]


def _issued(acme: Certcli, lab: Lab, name: str, *args: str) -> dict:
    ok(acme("issue", name, "--webroot", lab.webroot, "--agree-tos", *args))
    return store_contents(acme)


def _settings(acme: Certcli, name: str) -> str:
    settings = lineage_settings(acme, name)
    assert settings is not None, f"no lineage {name}"
    return settings


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--key-type", "rsa-1024"), ("--key-type must be one of: ec-p256,", "not 'rsa-1024'")),
        (("--ca-bundle", "/nonexistent/ca.pem"), ("cannot read the CA bundle", "No such file")),
        (("--ca-bundle", "/"), ("the CA bundle / is not a regular file",)),
        (("--preferred-chain", ""), ("--preferred-chain must be a name", "not ''")),
        (("--profile", " "), ("--profile must be a name", "not ' '")),
    ],
    ids=["key-type", "missing-bundle", "bundle-dir", "empty-chain", "blank-profile"],
)
def test_a_bad_option_on_a_reissue_changes_nothing_and_asks_nothing(
    acme: Certcli, lab: Lab, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    name = "hold.certcli.test"
    before = _issued(acme, lab, name)
    requests = len(lab.acme_requests())
    run = acme("issue", name, "--webroot", lab.webroot, "--force-renewal", *args)
    _refused(run, *words)
    assert store_contents(acme) == before  # settings, state, live
    assert len(lab.acme_requests()) == requests  # refused before the CA was asked


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--webroot", "WEBROOT", "--key-type", "rsa-1024"), ("--key-type must be one of",)),
        (("--webroot", "WEBROOT", "--ca-bundle", "/nonexistent"), ("cannot read the CA bundle",)),
        (("--webroot", ""), ("no webroot",)),
        (("--webroot", "WEBROOT", "--profile", ""), ("--profile must be a name",)),
    ],
    ids=["key-type", "ca-bundle", "empty-webroot", "empty-profile"],
)
def test_a_bad_option_on_a_new_lineage_stores_nothing(
    acme: Certcli, lab: Lab, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    argv = [str(lab.webroot) if a == "WEBROOT" else a for a in args]
    requests = len(lab.acme_requests())
    _refused(acme("issue", "kt.certcli.test", *argv, "--agree-tos"), *words)
    assert lineage_names(acme) == []  # nothing for cron to retry
    assert len(lab.acme_requests()) == requests


def test_a_bad_bundle_from_the_environment_is_refused_too(acme: Certcli, lab: Lab) -> None:
    fifo = acme.cwd / "bundle.fifo"
    os.mkfifo(fifo)  # never opened: it would block
    for bundle, words in ((fifo, "is not a regular file"), ("/nonexistent", "No such file")):
        run = acme(
            "issue", "env.certcli.test", "--webroot", lab.webroot, "--agree-tos",
            env={"REQUESTS_CA_BUNDLE": str(bundle)},
        )  # fmt: skip
        _refused(run, f"REQUESTS_CA_BUNDLE={bundle}", words)
    assert lineage_names(acme) == []


def test_a_reissue_that_fails_at_the_ca_keeps_the_settings_that_worked(
    acme: Certcli, lab: Lab, tmp_path: Path
) -> None:
    name = "unserved.certcli.test"
    _issued(acme, lab, name)
    settings, live = _settings(acme, name), live_version(acme, name)
    unserved = tmp_path / "not-served"
    unserved.mkdir()
    lab.forget_authorizations(acme.config_dir)  # Pebble may reuse one now and then
    for extra in (("--force-renewal",), ("--expand", "more.unserved.certcli.test")):
        run = acme("issue", name, *extra[1:], "--webroot", unserved, extra[0])
        assert run.code == 13, run.stderr  # the CA could not validate
        assert _settings(acme, name) == settings  # the old webroot (and domains) stay
        assert live_version(acme, name) == live
    ok(acme("renew", name, "--force"))  # with the settings that work
    assert _settings(acme, name) == settings

    # Settings that work are kept once the CA has issued for them.
    ok(acme("issue", name, "--webroot", lab.webroot, "--force-renewal", "--key-type", "ec-p384"))
    assert 'key_type = "ec-p384"' in _settings(acme, name)


def test_a_new_lineage_whose_order_fails_at_the_ca_is_kept_for_renew(
    acme: Certcli, lab: Lab, tmp_path: Path
) -> None:
    unserved = tmp_path / "not-served"
    unserved.mkdir()
    run = acme("issue", "later.certcli.test", "--webroot", unserved, "--agree-tos")
    assert run.code == 13
    assert f'webroot = "{unserved}"' in _settings(acme, "later.certcli.test")


# -- impossible combinations ----------------------------------------------------------


def test_a_wildcard_over_http01_is_refused_before_any_request(acme: Certcli, lab: Lab) -> None:
    requests = len(lab.acme_requests())
    for argv in (
        ("*.w.certcli.test", "--webroot", lab.webroot),
        ("w.certcli.test", "*.w.certcli.test", "--webroot", lab.webroot),
        ("--each", "a.certcli.test", "*.b.certcli.test", "--webroot", lab.webroot),
    ):
        line = _refused(acme("issue", *argv, "--agree-tos"), "*.", "needs DNS-01")
        assert "use --dns or --wildcard" in line
    assert lineage_names(acme) == []
    assert len(lab.acme_requests()) == requests


def test_an_ip_over_dns01_is_refused_before_any_request(
    dns: Certcli,
    lab: Lab,
) -> None:
    requests = len(lab.acme_requests())
    for argv in (("127.0.0.1", "--dns"), ("ip.certcli.test", "127.0.0.1", "--dns")):
        line = _refused(dns("issue", *argv, "--agree-tos"), "127.0.0.1 is an IP address")
        assert "use --webroot DIR" in line
    assert lineage_names(dns) == []
    assert len(lab.acme_requests()) == requests


def test_san_add_and_expand_refuse_a_name_the_lineage_cannot_validate(
    dns: Certcli,
    lab: Lab,
    target: str,
) -> None:
    http = "h.certcli.test"
    ok(dns("issue", http, "--webroot", lab.webroot, "--agree-tos"))
    viadns = _name()
    lab.delegate(viadns, target)
    ok(dns("issue", viadns, "--dns"))
    before = store_contents(dns)
    requests = len(lab.acme_requests())

    _refused(dns("san", "add", http, f"*.{http}"), f"*.{http} needs DNS-01", repr(http))
    _refused(dns("issue", http, f"*.{http}", "--webroot", lab.webroot, "--expand"), "needs DNS-01")
    _refused(dns("san", "add", viadns, "127.0.0.1"), "IP address", repr(viadns))
    _refused(dns("issue", viadns, "127.0.0.1", "--dns", "--expand"), "IP address")

    assert store_contents(dns) == before
    assert len(lab.acme_requests()) == requests


def test_renew_of_a_lineage_edited_into_an_impossible_one_fails_without_an_order(
    acme: Certcli, lab: Lab
) -> None:
    name = "edited.certcli.test"
    _issued(acme, lab, name)
    edited = _settings(acme, name).replace(f'"{name}",\n]', f'"{name}",\n"*.{name}",\n]')
    write_settings(acme, name, edited)
    assert f"*.{name}" in _settings(acme, name)
    orders = sum(1 for r in lab.acme_requests() if r == "POST /order-plz")
    run = acme("renew", name, "--force")
    assert run.code == 1 and "needs DNS-01" in run.stderr
    assert sum(1 for r in lab.acme_requests() if r == "POST /order-plz") == orders
