from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
from acme import errors as acme_errors
from acme import messages

from certcli import engine
from certcli.engine import chain as chains
from certcli.engine import classify, network
from certcli.engine import order as orders
from certcli.engine.directory import Directory, looks_moved
from certcli.errors import AcmeError, RateLimitedError, UnauthorizedError, ValidationFailedError
from tests.lab.localca import LocalCA


def _response(headers: dict[str, str]) -> requests.Response:
    response = requests.Response()
    response.headers.update(headers)
    return response


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert network.retry_after(_response({"Retry-After": "7"})) == 7
    when = datetime.now(UTC) + timedelta(seconds=100)
    got = network.retry_after(_response({"Retry-After": format_datetime(when, usegmt=True)}))
    assert got is not None and 95 < got <= 100
    assert network.retry_after(_response({"Retry-After": "soon"})) is None
    assert network.retry_after(_response({})) is None
    assert network.retry_after(None) is None
    assert network.retry_after(_response({"Retry-After": "-3"})) == 0


def test_problems_are_classified() -> None:
    limited = classify.classify_problem(
        messages.Error.with_code("rateLimited", detail="too many"), _response({"Retry-After": "60"})
    )
    assert isinstance(limited, RateLimitedError) and limited.retry_after == 60
    assert limited.exit_code == 12
    default_wait = classify.classify_problem(messages.Error.with_code("rateLimited"), None)
    assert isinstance(default_wait, RateLimitedError) and default_wait.retry_after == 3600
    assert isinstance(
        classify.classify_problem(messages.Error.with_code("unauthorized", detail="no"), None),
        UnauthorizedError,
    )
    assert isinstance(
        classify.classify_problem(messages.Error.with_code("dns", detail="NXDOMAIN"), None),
        ValidationFailedError,
    )
    other = classify.classify_problem(messages.Error.with_code("badCSR", detail="bad"), None)
    assert type(other) is AcmeError and "badCSR" in other.message


def test_a_paused_account_names_its_unpause_url() -> None:
    # Let's Encrypt's problem for an account paused after repeated failed validations
    url = (
        "https://portal.letsencrypt.org/sfe/v1/unpause?jwt=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
        ".eyJhcGkiOiJ2MSIsImlkZW50aWZpZXJzIjoicGF1c2VkLmV4YW1wbGUuY29tIn0.c2lnbmF0dXJl"
    )
    problem = messages.Error.from_json(
        {
            "type": "urn:ietf:params:acme:error:rateLimited",
            "detail": "Your account is temporarily prevented from requesting certificates for "
            f"paused.example.com and possibly others. Please visit: {url}",
            "status": 429,
        }
    )
    paused = classify.classify_problem(problem, _response({}))
    assert isinstance(paused, RateLimitedError) and paused.exit_code == 12
    assert paused.hint == f"unpause at {url}"
    assert url not in paused.message and "paused.example.com" in paused.message
    # an ordinary rate limit keeps its waiting hint
    limited = classify.classify_problem(
        messages.Error.with_code("rateLimited", detail="too many new orders recently"), None
    )
    assert limited.hint is not None and "unpause" not in limited.hint
    assert classify.unpause_url("see https://example.com/docs/rate-limits/") is None


def test_unknown_account_detection() -> None:
    assert classify.is_unknown_account(messages.Error.with_code("accountDoesNotExist"))
    assert classify.is_unknown_account(
        messages.Error.with_code("unauthorized", detail="Account not found")
    )
    assert not classify.is_unknown_account(
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
    assert classify.reason(requests.exceptions.ConnectionError(text)) == reason


def test_preferred_chain_by_root_cn_else_the_default() -> None:
    first, second = LocalCA("first", intermediates=1), LocalCA("second", intermediates=1)
    texts = [
        (issued.fullchain_pem + ca.root.pem).decode()
        for ca in (first, second)
        for issued in [ca.issue(["x.example.com"])]
    ]
    assert chains.choose_chain(texts, "second root") == texts[1]
    assert chains.choose_chain(texts, "SECOND ROOT") == texts[1]
    assert chains.choose_chain(texts, "nobody") == texts[0]
    assert chains.choose_chain(texts, None) == texts[0]


def test_split_chain() -> None:
    issued = LocalCA(intermediates=2).issue(["x.example.com"])
    split = chains.split_chain(issued.fullchain_pem.decode())
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
    order = orders.new_order(
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


def test_an_order_the_ca_refuses_for_its_replaces_is_placed_once_more_without(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from unittest import mock

    calls = []

    def new_order(client, identifiers, csr_pem, profile, replaces):
        calls.append(replaces)
        if replaces:
            raise messages.Error.with_code("malformed", detail="unknown certificate ID")
        raise RuntimeError("stop here: the retry happened")

    monkeypatch.setattr(orders, "new_order", new_order)
    with pytest.raises(RuntimeError, match="the retry happened"):
        orders.place_order(mock.Mock(), ["x.example.com"], b"csr", None, "id.1")
    assert calls == ["id.1", None]


def _connected(ca: engine.Ca, account: object = None) -> engine.Ca:
    """`ca` as connected, without a CA behind it."""
    ca._connected, ca._account = True, account  # type: ignore[assignment]
    return ca


def test_an_account_change_starts_from_the_account_as_stored(tmp_path: Path) -> None:
    """Another certcli changed the contact after this one read the account: a rollover
    keeps that contact, and a change of an account deactivated meanwhile is refused."""
    from dataclasses import replace
    from unittest import mock

    from cryptography.hazmat.primitives.asymmetric import ec

    from certcli import x509 as x
    from certcli.errors import NotFoundError
    from certcli.models import Account
    from certcli.storage.files import Store

    store = Store(tmp_path / "config")
    store.ensure()
    url = "https://ca.test/dir"
    key = x.private_key_pem(ec.generate_private_key(ec.SECP256R1()))
    old = Account(url, "https://ca.test/acct/1", ("mailto:old@x.test",), None, "2026-01-01Z", key)
    store.write_account(old)
    ca = _connected(engine.Ca(store, engine.CaSettings(url), lambda _u: False), old)
    ca._directory.current = {"keyChange": "https://ca.test/key-change"}  # type: ignore[assignment]
    ca._client = mock.Mock()  # type: ignore[method-assign]  # the requests go to a mock

    store.write_account(replace(old, contact=("mailto:new@x.test",)))  # meanwhile
    ca.rollover()
    stored = store.read_account(url)
    assert stored is not None and stored.contact == ("mailto:new@x.test",)
    assert stored.key_pem != key

    store.retire_account(stored)  # deactivated meanwhile
    with pytest.raises(NotFoundError, match="any more"):
        ca.update_contact("late@x.test")


def test_the_constructor_asks_no_ca_and_the_first_use_connects_once(tmp_path: Path) -> None:
    import threading
    from unittest import mock

    from certcli.storage.files import Store

    ca = engine.Ca(Store(tmp_path / "config"), engine.CaSettings("https://ca.test/dir"), bool)
    calls = []

    def load(use_kept: bool) -> None:
        calls.append(use_kept)
        ca._directory.use(DIRECTORY)

    ca._directory.load = load  # type: ignore[method-assign]
    with mock.patch.object(engine.accounts, "register", return_value="acct") as register:
        threads = [threading.Thread(target=lambda: ca.profiles) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert calls == [False] and register.call_count == 1 and ca.account == "acct"


def _kept(tmp_path: Path, data: dict) -> Directory:
    from certcli.storage.files import Store

    directory = Directory(Store(tmp_path / "config"), engine.CaSettings("https://ca.test/dir"))
    directory.use(data)
    directory.kept = True
    return directory


DIRECTORY = {"newNonce": "https://ca.test/nonce", "newOrder": "https://ca.test/order"}


def test_a_kept_directory_counts_as_stale_only_when_a_resource_moved(tmp_path: Path) -> None:
    from unittest import mock

    # a CA that adds a random key to each answer has not moved anything
    directory = _kept(tmp_path, DIRECTORY)
    used = directory.current
    directory.fetch = mock.Mock(return_value={**DIRECTORY, "x7Qp": "https://ca.test/news"})  # type: ignore[method-assign]
    assert not directory.refresh(used)
    assert not directory.refresh(used)  # a second thread on the same copy: no new fetch
    assert directory.fetch.call_count == 1

    directory = _kept(tmp_path, DIRECTORY)
    used = directory.current
    moved = {**DIRECTORY, "newOrder": "https://ca.test/v2/order"}
    directory.fetch = mock.Mock(return_value=moved)  # type: ignore[method-assign]
    assert directory.refresh(used) and directory.refresh(used)  # both threads retry
    assert directory.fetch.call_count == 1
    assert directory.current["newOrder"].endswith("/v2/order")


def test_only_what_a_moved_resource_causes_looks_moved() -> None:
    from unittest import mock

    for status, moved in ((404, True), (405, True), (429, False), (400, False), (403, False)):
        response = mock.Mock(status_code=status)
        error = messages.Error.with_code("rateLimited" if status == 429 else "malformed")
        assert looks_moved(error, response) is moved, status
    assert looks_moved(requests.exceptions.ConnectionError("refused"), None)


def _http(
    status: int, body: bytes = b"", headers: dict[str, str] | None = None
) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update(headers or {})
    response.reason = {409: "Conflict", 503: "Service Unavailable"}.get(status, "")
    return response


def test_a_409_with_a_problem_document_is_the_problem_and_one_with_location_an_account() -> None:
    problem = b'{"type": "urn:ietf:params:acme:error:alreadyReplaced", "detail": "replaced"}'
    with pytest.raises(messages.Error) as raised:
        network.Network._check_response(_http(409, problem, {"Content-Type": "x"}))
    assert classify.code(raised.value) == "alreadyReplaced"  # acme does not list this code
    with pytest.raises(acme_errors.ConflictError) as conflict:
        network.Network._check_response(_http(409, problem, {"Location": "https://ca/acct/1"}))
    assert conflict.value.location == "https://ca/acct/1"
    with pytest.raises(acme_errors.ConflictError):
        network.Network._check_response(_http(409, b"not json"))


def _authz(name: str) -> messages.AuthorizationResource:
    identifier = messages.Identifier(typ=messages.IDENTIFIER_FQDN, value=name)
    return messages.AuthorizationResource(
        body=messages.Authorization(identifier=identifier), uri="u"
    )


@pytest.mark.parametrize(
    ("exc", "kind", "words"),
    [
        (messages.Error.with_code("badCSR", detail="short key"), "ca_error", "short key"),
        (
            acme_errors.IssuanceError(messages.Error.with_code("rateLimited", detail="slow down")),
            "rate_limited",
            "slow down",
        ),
        (
            acme_errors.ValidationError([_authz("v.example.com")]),
            "validation_failed",
            "v.example.com",
        ),
        (acme_errors.TimeoutError(), "timeout", "did not finish in time"),
        (acme_errors.PollError(set(), {}), "timeout", "in time"),
        (acme_errors.ConflictError("https://ca/x"), "ca_error", "HTTP 409"),
        (
            acme_errors.BadNonce("n", ValueError("x")),
            "ca_unreachable",
            "anti-replay nonce",
        ),
        (
            acme_errors.MissingNonce(_http(200)),
            "ca_unreachable",
            "anti-replay nonce",
        ),
        (
            acme_errors.ARIError("no", datetime.now()),
            "ca_unreachable",
            "renewal information",
        ),
        (
            acme_errors.WildcardUnsupportedError(),
            "ca_error",
            "does not issue wildcard",
        ),
        (acme_errors.UnexpectedUpdate("u"), "ca_error", "another resource"),
        (acme_errors.DependencyError("old"), "ca_error", "dependency"),
        (
            acme_errors.ClientError(_http(503, b"<html>")),
            "ca_unreachable",
            "HTTP 503 Service Unavailable",
        ),
        (
            acme_errors.ClientError((_http(429), ValueError())),
            "rate_limited",
            "HTTP 429",
        ),
        (
            acme_errors.ClientError(_http(403, b"no")),
            "unauthorized",
            "HTTP 403",
        ),
        (acme_errors.ClientError(_http(404)), "ca_error", "HTTP 404"),
        # What truly was not understood, and only that, says so.
        (
            acme_errors.ClientError('"up" Link header missing'),
            "ca_error",
            "not understood",
        ),
        (ValueError("Expecting value"), "ca_error", "not understood"),
        (
            acme_errors.SchemaValidationError("bad"),
            "ca_error",
            "not understood",
        ),
    ],
)
def test_every_acme_exception_is_classified(exc: Exception, kind: str, words: str) -> None:
    error = classify.classify_acme(exc, "ca.example", None)
    assert isinstance(error, AcmeError)
    assert error.kind == kind
    assert words in error.message
    if words != "not understood":
        assert "not understood" not in error.message


def test_what_the_ca_returns_is_checked_before_it_goes_live() -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from certcli import x509 as x
    from certcli.errors import BadCertificateError

    ca = LocalCA()
    key = ec.generate_private_key(ec.SECP256R1())
    names = ["a.example.com", "*.example.com", "192.0.2.1"]
    csr = x.make_csr(key, names)
    now = datetime.now(UTC)

    def check(issued: object, chain: bytes | None = None) -> None:
        got = engine.IssuedChain(issued.cert_pem, issued.chain_pem if chain is None else chain)  # type: ignore[attr-defined]
        engine.verify_issued(got, names, csr, now)

    check(ca.issue(list(reversed(names)), public_key=key.public_key()))  # any order
    check(ca.issue(names, public_key=key.public_key()), chain=b"")  # no chain: nothing to link
    cases = [
        (ca.issue(names), None, "another key"),
        (ca.issue(names[:2], public_key=key.public_key()), None, "missing: 192.0.2.1"),
        (ca.issue([*names, "b.example.com"], public_key=key.public_key()), None, "b.example.com"),
        (
            ca.issue(
                names, public_key=key.public_key(), not_before=now - timedelta(days=3), days=1
            ),
            None,
            "not valid now",
        ),
        (
            ca.issue(names, public_key=key.public_key(), not_before=now + timedelta(hours=1)),
            None,
            "not valid now",
        ),
        (ca.issue(names, public_key=key.public_key()), LocalCA("other").issuer.pem, "its chain"),
    ]
    for issued, chain, words in cases:
        with pytest.raises(BadCertificateError, match=words) as raised:
            check(issued, chain)
        assert raised.value.kind == "bad_certificate" and raised.value.exit_code == 15
    # a CA clock a little ahead of ours is no attack
    check(ca.issue(names, public_key=key.public_key(), not_before=now + timedelta(minutes=2)))


def test_each_request_and_response_is_logged_without_its_body(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """What `-v` shows: method, URL, status, Retry-After; no JWS, no nonce."""
    import logging
    from unittest import mock

    from cryptography.hazmat.primitives.asymmetric import ec

    from certcli import x509 as x
    from certcli.engine.account import signed_network

    key_pem = x.private_key_pem(ec.generate_private_key(ec.SECP256R1()))
    net = signed_network(engine.CaSettings("https://ca.test/dir"), key_pem)
    answers = [
        _http(200, b"", {"Replay-Nonce": "bm9uY2Ux"}),
        _http(201, b"{}", {"Replay-Nonce": "bm9uY2Uy", "Retry-After": "3"}),
    ]
    net.session = mock.Mock(request=mock.Mock(side_effect=answers))
    with caplog.at_level(logging.DEBUG, logger="certcli.acme"):
        name = messages.Identifier(typ=messages.IDENTIFIER_FQDN, value="x.test")
        order = messages.NewOrder(identifiers=(name,))
        net.post("https://ca.test/new-order", order, new_nonce_url="https://ca.test/nonce")
    lines = [r.getMessage() for r in caplog.records if r.name == "certcli.acme"]
    assert lines == [
        "HEAD https://ca.test/nonce",
        "HEAD https://ca.test/nonce -> 200",
        "POST https://ca.test/new-order",
        "POST https://ca.test/new-order -> 201 (Retry-After: 3)",
    ]
    sent = net.session.request.call_args.kwargs["data"]
    assert '"protected"' in sent  # the signed request was sent, and is in no log line
    assert not [line for line in lines if "protected" in line or "bm9uY2U" in line]


def test_the_environment_is_read_once_per_origin_with_the_same_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.test:3128")
    monkeypatch.setenv("NO_PROXY", "direct.test")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/bundle.pem")
    ours, theirs = network.EnvOnceSession(), requests.Session()
    for url in ("https://ca.test/dir", "https://direct.test/dir", "https://ca.test:8443/x"):
        for verify in (True, None, False, "/other.pem"):
            expected = theirs.merge_environment_settings(url, {}, None, verify, None)
            assert ours.merge_environment_settings(url, {}, None, verify, None) == expected
    direct = ours.merge_environment_settings("https://direct.test/d", {}, None, True, None)
    assert "https" not in direct["proxies"] and direct["verify"] == "/etc/bundle.pem"
    got = ours.merge_environment_settings("https://ca.test/new-order", {}, None, True, None)
    got["proxies"].clear()  # a copy each time: a caller's change is not kept
    again = ours.merge_environment_settings("https://ca.test/order", {}, None, True, None)
    assert again["proxies"]["https"] == "http://proxy.test:3128"


def test_a_network_keeps_acmes_adapters_on_the_env_once_session() -> None:
    net = network.open_network(engine.CaSettings("https://ca.test/dir"))
    assert isinstance(net.session, network.EnvOnceSession)
    assert net.session.get_adapter("https://ca.test/") is net.session.get_adapter("http://x/")
