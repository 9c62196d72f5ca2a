"""The HTTP side of the conversation with a CA: nonces, badNonce retries, problem documents,
Retry-After, and the log of each request and response (the `certcli.acme` logger)."""

from __future__ import annotations

import contextlib
import email.utils
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import josepy as jose
import requests
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages

from certcli import __version__
from certcli.errors import UsageError

USER_AGENT = f"certcli/{__version__}"
BAD_NONCE_RETRIES = 30  # a CA may reject any nonce (a test CA half of them); one request each

#: The conversation with the CA, shown by `-v`: methods, URLs, statuses; never a body (a
#: JWS carries the account's signature, an EAB its HMAC) nor a nonce.
log = logging.getLogger("certcli.acme")


@dataclass(frozen=True)
class CaSettings:
    """How to reach one CA and who we are there."""

    directory_url: str
    email: str | None = None
    agree_tos: bool = False
    eab_kid: str | None = None
    eab_hmac_key: str | None = field(default=None, repr=False)  # a secret: never shown
    ca_bundle: str | None = None  # else REQUESTS_CA_BUNDLE, else the system's trust
    timeout: float = 300.0  # for one order, from placing it to downloading the certificate
    network_timeout: float = 30.0


class EnvOnceSession(requests.Session):
    """requests reads the environment (the proxies, NO_PROXY, REQUESTS_CA_BUNDLE) anew at
    every request, a good part of a request's CPU; certcli never changes it while it runs,
    so this session reads it once per origin."""

    def __init__(self) -> None:
        super().__init__()
        self._merged: dict[tuple[Any, ...], dict[str, Any]] = {}

    def merge_environment_settings(
        self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any
    ) -> dict[str, Any]:
        if proxies or not isinstance(cert, str | tuple | None):  # only the plain case kept
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        origin = urlsplit(url)
        key = (origin.scheme, origin.netloc, stream, verify, cert)
        merged = self._merged.get(key)
        if merged is None:
            merged = self._merged[key] = super().merge_environment_settings(
                url, proxies, stream, verify, cert
            )
        return {**merged, "proxies": dict(merged["proxies"])}  # a copy: requests may change it


class Network(acme_client.ClientNetwork):
    """acme's ClientNetwork, retrying badNonce more than once (a CA may reject any nonce)
    and keeping the nonce that comes with an error response instead of asking for another."""

    last_response: requests.Response | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        adapters = self.session.adapters
        self.session = EnvOnceSession()
        for prefix, adapter in adapters.items():  # acme's own adapters, kept as mounted
            self.session.mount(prefix, adapter)

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        for attempt in range(BAD_NONCE_RETRIES + 1):
            try:
                # private: the public post() retries a badNonce only once
                return self._post_once(*args, **kwargs)
            except messages.Error as error:
                if error.code != "badNonce" or attempt == BAD_NONCE_RETRIES:
                    raise
                log.debug("badNonce: sending again with a fresh nonce")
        raise AssertionError("unreachable")

    @classmethod
    def _check_response(
        cls, response: requests.Response, content_type: str | None = None
    ) -> requests.Response:
        # An override of acme's hook, which turns every 409 into ConflictError, dropping its
        # problem document: keep that for an existing account (it comes with a Location),
        # else raise the CA's problem (RFC 9773's alreadyReplaced is a 409).
        if response.status_code == 409 and "Location" not in response.headers:
            problem = problem_of(response)
            if problem is not None:
                raise problem
        return super()._check_response(response, content_type)

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        # An override of acme's one place every request passes: the log, the response an
        # error is classified by, and the nonce an error response carries.
        log.debug("%s %s", method, url)
        response = super()._send_request(method, url, *args, **kwargs)
        self.last_response = response
        status = f"{response.status_code} {response.reason or ''}".rstrip()
        wait = response.headers.get("Retry-After")
        log.debug("%s %s -> %s%s", method, url, status, f" (Retry-After: {wait})" if wait else "")
        if not response.ok and self.REPLAY_NONCE_HEADER in response.headers:
            with contextlib.suppress(acme_errors.Error):
                self._add_nonce(response)  # private: acme keeps nonces of successes only
        return response


def problem_of(response: requests.Response) -> messages.Error | None:
    """The RFC 7807 problem document a response carries, if it carries one."""
    try:
        body = response.json()
        return messages.Error.from_json(body) if isinstance(body, dict) and "type" in body else None
    except (ValueError, jose.DeserializationError):
        return None


def open_network(
    settings: CaSettings, key: jose.JWK | None = None, alg: jose.JWASignature = jose.RS256
) -> Network:
    """A session to the CA: TLS verified (with the configured bundle), our User-Agent; it
    signs with `key` (and `alg`) when it has one."""
    return Network(
        key=key,
        alg=alg,
        verify_ssl=settings.ca_bundle or True,  # type: ignore[arg-type]
        user_agent=USER_AGENT,
        timeout=settings.network_timeout,  # a float: 0.5 s must not become 0 (no timeout)
    )


def retry_after(response: requests.Response | None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date)."""
    value = response.headers.get("Retry-After") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def check_bundles(settings: CaSettings) -> None:
    """The CA bundle (else the one requests would take from the environment) is a regular
    file that can be read: requests would fail only once it asks, mid-order."""
    from certcli.inputs import NotRegularFile, read_regular

    if settings.ca_bundle is not None:
        bundles = [(f"the CA bundle {settings.ca_bundle}", settings.ca_bundle)]
    else:
        import os

        names = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
        bundles = [(f"{v}={os.environ[v]}", os.environ[v]) for v in names if os.environ.get(v)]
    for what, path in bundles:
        try:
            read_regular(Path(path), 0)
        except NotRegularFile:
            raise UsageError(f"{what} is not a regular file", "give a PEM file") from None
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise UsageError(f"cannot read {what}: {reason}", "give a PEM file") from None
