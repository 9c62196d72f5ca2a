from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
import requests
from acme import messages

from certcli import engine
from certcli.errors import AcmeError, RateLimitedError, UnauthorizedError, ValidationFailedError
from tests.lab.localca import LocalCA


def _response(headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.headers.update(headers)
    return response


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert engine._retry_after(_response({"Retry-After": "7"})) == 7
    when = datetime.now(UTC) + timedelta(seconds=100)
    got = engine._retry_after(_response({"Retry-After": format_datetime(when, usegmt=True)}))
    assert got is not None and 95 < got <= 100
    assert engine._retry_after(_response({"Retry-After": "soon"})) is None
    assert engine._retry_after(_response({})) is None
    assert engine._retry_after(None) is None
    assert engine._retry_after(_response({"Retry-After": "-3"})) == 0


def test_problems_are_classified() -> None:
    limited = engine._classify_problem(
        messages.Error.with_code("rateLimited", detail="too many"), _response({"Retry-After": "60"})
    )
    assert isinstance(limited, RateLimitedError) and limited.retry_after == 60
    assert limited.exit_code == 12
    default_wait = engine._classify_problem(messages.Error.with_code("rateLimited"), None)
    assert isinstance(default_wait, RateLimitedError) and default_wait.retry_after == 3600
    assert isinstance(
        engine._classify_problem(messages.Error.with_code("unauthorized", detail="no"), None),
        UnauthorizedError,
    )
    assert isinstance(
        engine._classify_problem(messages.Error.with_code("dns", detail="NXDOMAIN"), None),
        ValidationFailedError,
    )
    other = engine._classify_problem(messages.Error.with_code("badCSR", detail="bad"), None)
    assert type(other) is AcmeError and "badCSR" in other.message


def test_unknown_account_detection() -> None:
    assert engine._is_unknown_account(messages.Error.with_code("accountDoesNotExist"))
    assert engine._is_unknown_account(
        messages.Error.with_code("unauthorized", detail="Account not found")
    )
    assert not engine._is_unknown_account(
        messages.Error.with_code("unauthorized", detail="not allowed for this identifier")
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (
            "HTTPSConnectionPool(host='127.0.0.1', port=9): Max retries exceeded (Caused by "
            "NewConnectionError('<x>: Failed to establish a new connection: [Errno 111] "
            "Connection refused'))",
            "Connection refused",
        ),
        (
            "Max retries exceeded (Caused by SSLError(SSLCertVerificationError(1, "
            "'[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: unable to get local "
            "issuer certificate (_ssl.c:1006)')))",
            "unable to get local issuer certificate",
        ),
        ("Read timed out. (read timeout=30)", "timed out"),
        ("something else", "ConnectionError"),
    ],
)
def test_network_reasons_are_short(text: str, reason: str) -> None:
    assert engine._reason(requests.exceptions.ConnectionError(text)) == reason


def test_preferred_chain_by_root_cn_else_the_default() -> None:
    first, second = LocalCA("first", intermediates=1), LocalCA("second", intermediates=1)
    chains = [
        (issued.fullchain_pem + ca.root.pem).decode()
        for ca in (first, second)
        for issued in [ca.issue(["x.example.com"])]
    ]
    assert engine._choose_chain(chains, "second root") == chains[1]
    assert engine._choose_chain(chains, "SECOND ROOT") == chains[1]
    assert engine._choose_chain(chains, "nobody") == chains[0]
    assert engine._choose_chain(chains, None) == chains[0]


def test_split_chain() -> None:
    issued = LocalCA(intermediates=2).issue(["x.example.com"])
    split = engine._split_chain(issued.fullchain_pem.decode())
    assert split.cert_pem == issued.cert_pem
    assert split.chain_pem == issued.chain_pem
    assert split.cert_pem + split.chain_pem == issued.fullchain_pem


def test_new_orders_carry_the_profile_and_replaces() -> None:
    """What Pebble 2.4 cannot show: the newOrder body certcli sends."""
    import json as jsonlib
    from unittest import mock

    sent = []
    client = mock.Mock()
    client.directory = {"newOrder": "https://ca/new-order"}

    def post(url: str, message: object) -> object:
        sent.append((url, jsonlib.loads(message.json_dumps())))  # type: ignore[attr-defined]
        response = mock.Mock()
        response.json.return_value = {"status": "pending", "authorizations": [], "finalize": "f"}
        response.headers = {"Location": "https://ca/order/1"}
        return response

    client._post.side_effect = post
    order = engine.Ca._new_order(
        client, ["x.example.com", "192.0.2.1"], b"csr", "shortlived", "aYhb.AIdl"
    )
    assert order.uri == "https://ca/order/1"
    assert sent == [
        (
            "https://ca/new-order",
            {
                "identifiers": [
                    {"type": "dns", "value": "x.example.com"},
                    {"type": "ip", "value": "192.0.2.1"},
                ],
                "profile": "shortlived",
                "replaces": "aYhb.AIdl",
            },
        )
    ]


def test_an_order_the_ca_refuses_for_its_replaces_is_placed_once_more_without() -> None:
    from unittest import mock

    ca = engine.Ca.__new__(engine.Ca)  # only the order step, without a CA behind it
    ca.settings = engine.CaSettings("https://ca/dir")
    calls = []

    def new_order(client, identifiers, csr_pem, profile, replaces):
        calls.append(replaces)
        if replaces:
            raise messages.Error.with_code("malformed", detail="unknown certificate ID")
        raise RuntimeError("stop here: the retry happened")

    ca._new_order = new_order  # type: ignore[method-assign]
    ca._client = mock.Mock()  # type: ignore[method-assign]
    with pytest.raises(RuntimeError, match="the retry happened"):
        ca._obtain(["x.example.com"], b"csr", mock.Mock(), lambda _p: None, None, None, "id.1")
    assert calls == ["id.1", None]
