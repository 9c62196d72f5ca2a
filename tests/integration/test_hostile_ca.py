"""A CA (or a proxy before it) that returns what was not ordered, or refuses `replaces`:
through the proxy shim of tests/lab/ari.py in front of the lab's Pebble."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.conftest import (
    Certcli,
    lineage_state,
    live_dir,
    live_version,
    ok,
    snapshot,
    version_numbers,
)
from tests.lab import Lab
from tests.lab.ari import AriShim
from tests.lab.localca import LocalCA

pytestmark = pytest.mark.integration


@pytest.fixture
def shim(lab: Lab) -> Iterator[AriShim]:
    server = AriShim(lab, proxy=True)
    yield server
    server.close()


@pytest.fixture
def hostile(certcli: Certcli, lab: Lab, shim: AriShim) -> Certcli:
    certcli.point_at(lab)
    certcli.env["CERTCLI_SERVER"] = shim.directory_url
    return certcli


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _issued(data: bytes) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(data)


def _other_key(data: bytes) -> bytes:
    """A certificate for the same names from another CA, for a key certcli never made."""
    leaf = _issued(data)[0]
    ca = LocalCA("hostile")
    names = [
        n.value for n in leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ]
    fake = ca.issue([str(n) for n in names])
    return fake.fullchain_pem


def _other_names(data: bytes) -> bytes:
    """Our key, but a name that was never ordered."""
    leaf = _issued(data)[0]
    ca = LocalCA("hostile")
    return ca.issue(["evil.certcli.test"], public_key=leaf.public_key()).fullchain_pem


def _expired(data: bytes) -> bytes:
    """Our key and names, but expired yesterday."""
    leaf = _issued(data)[0]
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ca = LocalCA("hostile")
    start = datetime.now(UTC) - timedelta(days=10)
    issued = ca.issue(
        [str(n.value) for n in names], public_key=leaf.public_key(), not_before=start, days=9
    )
    return issued.fullchain_pem


def _broken_chain(data: bytes) -> bytes:
    """Pebble's own leaf, followed by an intermediate that did not sign it."""
    leaf = _issued(data)[0]
    return _pem(leaf) + b"".join(_pem(c) for c in LocalCA("hostile").chain)


def _state(certcli: Certcli, name: str) -> dict:
    return lineage_state(certcli, name)


def _live(certcli: Certcli, name: str) -> dict:
    """The live version, the versions and the files served (the state aside: it records)."""
    return {
        "live": live_version(certcli, name),
        "versions": version_numbers(certcli, name),
        "files": snapshot(live_dir(certcli, name)),
    }


@pytest.mark.parametrize(
    ("rewrite", "words"),
    [
        (_other_key, "it is for another key than the one certcli sent"),
        (_other_names, "not ordered: evil.certcli.test"),
        (_expired, "it is not valid now"),
        (_broken_chain, "its chain does not belong to the certificate"),
    ],
    ids=["other-key", "other-names", "expired", "broken-chain"],
)
def test_a_certificate_that_was_not_ordered_never_goes_live(
    hostile: Certcli,
    lab: Lab,
    shim: AriShim,
    rewrite: Callable[[bytes], bytes],
    words: str,
) -> None:
    name = "hostile.certcli.test"
    ok(hostile("issue", name, "--webroot", lab.webroot, "--agree-tos"))
    before = _live(hostile, name)
    assert before["live"] == 1 and before["files"]

    shim.rewrite_certificate = rewrite
    run = hostile("renew", name, "--force")
    assert run.code == 1, run.stderr
    assert "the CA returned a certificate certcli will not install" in run.stderr
    assert words in run.stderr
    assert _live(hostile, name) == before  # live unchanged, no version added
    state = _state(hostile, name)
    assert state["phase"] == "Failed" and state["last_error_kind"] == "bad_certificate"
    assert words in state["last_error"] and state["next_attempt"]  # backed off
    (row,) = ok(hostile("status", "--json")).json()["lineages"]
    assert row["status"] == "failed" and row["error_kind"] == "bad_certificate"

    # The same for a first issuance, through `issue`: its own exit code, nothing live.
    run = hostile("issue", "first.certcli.test", "--webroot", lab.webroot)
    assert run.code == 15, run.stderr
    (error,) = [line for line in run.stderr.splitlines() if line.startswith("certcli: error:")]
    assert words in error and "nothing was installed" in error
    assert live_version(hostile, "first.certcli.test") is None
    assert version_numbers(hostile, "first.certcli.test") == []
    assert not live_dir(hostile, "first.certcli.test").exists()
    assert _state(hostile, "first.certcli.test")["last_error_kind"] == "bad_certificate"

    shim.rewrite_certificate = None  # an honest answer: the renewal goes through
    ok(hostile("renew", name, "--force"))
    assert _live(hostile, name)["live"] == 2


def test_already_replaced_is_ordered_again_without_replaces(
    hostile: Certcli, lab: Lab, shim: AriShim
) -> None:
    name = "replaced.certcli.test"
    ok(hostile("issue", name, "--webroot", lab.webroot, "--agree-tos"))
    cert_id = _state(hostile, name)["ari"]["id"]
    shim.already_replaced = True
    run = ok(hostile("renew", name, "--force", "--json"))
    (result,) = run.json()["results"]
    assert result["action"] == "renewed" and result["version"] == 2
    replaced = [o for o in shim.new_orders if o.get("replaces")]
    assert [o["replaces"] for o in replaced] == [cert_id]  # asked once with it, refused
    assert "replaces" not in shim.new_orders[-1]  # then once without
    state = _state(hostile, name)
    assert state["phase"] == "Completed" and "last_error" not in state
