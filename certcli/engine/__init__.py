"""The ACME engine: directory → account → order → solve → finalize → download.

The only module that imports `acme.client`. It never prints: progress goes to a callback,
failures become the classified errors of certcli.errors.
"""

from __future__ import annotations

import contextlib
import copy
import email.utils
import json
import os
import re
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import josepy as jose
import requests
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certcli import __version__
from certcli import x509 as x
from certcli.accounts import (
    Account,
    account_id,
    load_account,
    load_directory,
    retire_account,
    save_account,
    save_directory,
    save_pending_key,
)
from certcli.errors import (
    AcmeError,
    AcmeTimeoutError,
    BadCertificateError,
    CaUnreachableError,
    CertcliError,
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
    TlsVerificationError,
    UnauthorizedError,
    UsageError,
    ValidationFailedError,
)
from certcli.models import parse_rfc3339, rfc3339
from certcli.solvers import Challenge, Solver
from certcli.store import Store

USER_AGENT = f"certcli/{__version__}"
BAD_NONCE_RETRIES = 30  # a CA may reject any nonce (a test CA half of them); one request each
POLL_FIRST = 0.02  # seconds: a nearby CA has often validated by then; doubling from there
POLL_MAX = 3.0
DIRECTORY_MAX_AGE = 24 * 3600.0  # seconds a kept copy of a CA's directory is used

Progress = Callable[[str], None]
SolverFor = Callable[[str], Solver]


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


@dataclass(frozen=True)
class IssuedChain:
    cert_pem: bytes
    chain_pem: bytes


class _Network(acme_client.ClientNetwork):
    """acme's ClientNetwork, retrying badNonce more than once (a CA may reject any nonce)
    and keeping the nonce that comes with an error response instead of asking for another."""

    last_response: requests.Response | None = None

    def post(self, *args: Any, **kwargs: Any) -> requests.Response:
        for attempt in range(BAD_NONCE_RETRIES + 1):
            try:
                return self._post_once(*args, **kwargs)
            except messages.Error as error:
                if error.code != "badNonce" or attempt == BAD_NONCE_RETRIES:
                    raise
        raise AssertionError("unreachable")

    @classmethod
    def _check_response(
        cls, response: requests.Response, content_type: str | None = None
    ) -> requests.Response:
        # acme turns every 409 into ConflictError, dropping its problem document: keep that
        # for an existing account (it comes with a Location), else raise the CA's problem
        # (RFC 9773's alreadyReplaced is a 409).
        if response.status_code == 409 and "Location" not in response.headers:
            problem = _problem_of(response)
            if problem is not None:
                raise problem
        return super()._check_response(response, content_type)

    def _send_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
        response = super()._send_request(method, url, *args, **kwargs)
        self.last_response = response
        if not response.ok and self.REPLAY_NONCE_HEADER in response.headers:
            with contextlib.suppress(acme_errors.Error):
                self._add_nonce(response)
        return response


def _problem_of(response: requests.Response) -> messages.Error | None:
    """The RFC 7807 problem document a response carries, if it carries one."""
    try:
        body = response.json()
        return messages.Error.from_json(body) if isinstance(body, dict) and "type" in body else None
    except (ValueError, jose.DeserializationError):
        return None


def _network(settings: CaSettings, key: jose.JWK | None = None) -> _Network:
    """A session to the CA: TLS verified (with the configured bundle), our User-Agent."""
    return _Network(
        key=key,
        alg=_alg(key),
        verify_ssl=settings.ca_bundle or True,  # type: ignore[arg-type]
        user_agent=USER_AGENT,
        timeout=settings.network_timeout,  # a float: 0.5 s must not become 0 (no timeout)
    )


def _check_bundles(settings: CaSettings) -> None:
    """The CA bundle (else the one requests would take from the environment) is a regular
    file that can be read: requests would fail only once it asks, mid-order."""
    if settings.ca_bundle is not None:
        bundles = [(f"the CA bundle {settings.ca_bundle}", settings.ca_bundle)]
    else:
        names = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
        bundles = [(f"{v}={os.environ[v]}", os.environ[v]) for v in names if os.environ.get(v)]
    for what, path in bundles:
        try:
            if not stat.S_ISREG(os.stat(path).st_mode):
                raise UsageError(f"{what} is not a regular file", "give a PEM file")
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # a FIFO is refused above
        except (OSError, ValueError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise UsageError(f"cannot read {what}: {reason}", "give a PEM file") from None


def _resources(directory: Any) -> dict[str, Any]:
    """A directory's resource URLs: what a client uses of it (a CA may add random keys)."""
    names = ("newNonce", "newAccount", "newOrder", "revokeCert", "keyChange", "renewalInfo")
    return {name: directory.get(name) for name in names} if isinstance(directory, dict) else {}


def _jwk(key_pem: bytes, what: str = "the account key") -> jose.JWK:
    key = x.load_private_key(key_pem, what)
    if isinstance(key, rsa.RSAPrivateKey):  # certbot's account keys, adopted by `import`
        return jose.JWKRSA(key=key)
    return jose.JWKEC(key=key)


def _alg(key: jose.JWK | None) -> jose.JWASignature:
    """The JWS algorithm for an account key: RS256 for RSA, ES256/ES384 by curve for EC."""
    if isinstance(key, jose.JWKRSA):
        return jose.RS256
    if isinstance(key, jose.JWKEC) and key.key.curve.name == "secp384r1":
        return jose.ES384
    return jose.ES256


class _NewOrder(messages.NewOrder):
    """acme's NewOrder plus RFC 9773's `replaces` (the certificate this order renews)."""

    replaces: str | None = jose.field("replaces", omitempty=True)


@dataclass(frozen=True)
class RenewalWindow:
    start: datetime
    end: datetime
    retry_after: float  # seconds before asking again


def fetch_renewal_window(
    url: str, settings: CaSettings, default_retry: float = 6 * 3600
) -> RenewalWindow:
    """GET one certificate's renewal information (RFC 9773): no account, one request."""
    try:
        response = _network(settings).get(url)
        window = response.json()["suggestedWindow"]
        start, end = (parse_rfc3339(window[k]) for k in ("start", "end"))
    except (requests.exceptions.RequestException, acme_errors.Error, messages.Error) as exc:
        raise CaUnreachableError(f"cannot fetch renewal information from {url}: {exc}") from None
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise AcmeError(f"the renewal information at {url} is malformed ({exc})") from None
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    return RenewalWindow(start, end, _retry_after(response) or default_retry)


def _retry_after(response: requests.Response | None) -> float | None:
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


class Ca:
    """One CA: its directory and our account there. Safe to share between threads: each
    order runs on its own network session."""

    def __init__(
        self,
        store: Store,
        settings: CaSettings,
        accept_tos: Callable[[str], bool],
        *,
        create: bool = True,
    ) -> None:
        _check_bundles(settings)
        self.store = store
        self.settings = settings
        self._accept_tos = accept_tos
        self._lock = threading.Lock()
        self._local = threading.local()  # this thread's network, for Retry-After on errors
        account = load_account(store, settings.directory_url)
        if account is None and not create:
            raise NotFoundError(
                f"no account at {settings.directory_url} yet",
                "`certcli issue DOMAIN --agree-tos` creates one (or check --server)",
            )
        # With an account, the directory kept from an earlier run saves a round trip; a
        # failure while using it makes the next run (and a failed order at once) ask again.
        kept = account and load_directory(store, settings.directory_url, DIRECTORY_MAX_AGE)
        self.directory_kept = self._directory_changed = False
        if kept:
            with contextlib.suppress(AcmeError):  # a damaged copy: ask the CA instead
                self._use_directory(kept)
                self.directory_kept = True
        with self._classified():
            if not self.directory_kept:
                self._use_directory(self._get_directory())
            self.account = account or self._register(None)
        if not self.directory_kept:
            save_directory(store, settings.directory_url, self._directory_data)

    # -- connection and account ---------------------------------------------------------

    def _get_directory(self) -> Any:
        return _network(self.settings).get(self.settings.directory_url).json()

    def _use_directory(self, data: Any) -> None:
        try:
            directory = messages.Directory.from_json(copy.deepcopy(data))  # it edits its input
            if "newOrder" not in directory.to_partial_json():
                raise KeyError("newOrder")
        except (ValueError, KeyError, TypeError, AttributeError, jose.DeserializationError):
            raise AcmeError(
                f"{self.settings.directory_url} is not an ACME directory",
                "check --server (it ends in /directory)",
            ) from None
        self.directory, self._directory_data = directory, data

    def refresh_directory(self, used: messages.Directory) -> bool:
        """Fetch the directory again if `used` was a kept copy; True when a resource moved.
        Threads that failed on the same copy share one fetch and its answer."""
        with self._lock:
            if self.directory is not used:
                return self._directory_changed
            if not self.directory_kept:
                return False
            self.directory_kept = False
            kept = self._directory_data
            try:
                with self._classified():
                    self._use_directory(self._get_directory())
            except CertcliError:
                return False  # the caller reports what went wrong first
            self._directory_changed = _resources(self._directory_data) != _resources(kept)
        save_directory(self.store, self.settings.directory_url, self._directory_data)
        return self._directory_changed

    def _looks_moved(self, exc: BaseException) -> bool:
        """Whether a failure could come from a stale kept directory: no answer at its URL,
        404 or 405 there, or an answer not understood. Never a problem the CA meant."""
        if isinstance(exc, requests.exceptions.ConnectionError | ValueError | KeyError):
            return True
        net = getattr(self._local, "net", None)
        response = net.last_response if net is not None else None
        return response is not None and response.status_code in (404, 405)

    def _register(self, existing: Account | None) -> Account:
        """Create the account (or, with `existing`, register its key again at a CA that has
        forgotten it, as a test CA does when it restarts)."""
        settings = self.settings
        with self.store.lock_account(account_id(settings.directory_url)):
            stored = load_account(self.store, settings.directory_url)
            if stored is not None and (existing is None or stored.uri != existing.uri):
                return stored  # another process registered meanwhile
            key_pem = (
                existing.key_pem
                if existing
                else x.private_key_pem(ec.generate_private_key(ec.SECP256R1()))
            )
            jwk = _jwk(key_pem)
            client = acme_client.ClientV2(self.directory, _network(settings, jwk))
            meta = self.directory.meta
            tos = meta.terms_of_service
            if tos and existing is None and not (settings.agree_tos or self._accept_tos(tos)):
                raise UsageError(
                    f"the CA's terms of service must be accepted to create an account: {tos}",
                    "read them, then add --agree-tos to `certcli issue` "
                    "(or run certcli at a terminal to be asked)",
                )
            eab = None
            if settings.eab_kid and settings.eab_hmac_key:
                try:
                    eab = messages.ExternalAccountBinding.from_data(
                        jwk.public_key(), settings.eab_kid, settings.eab_hmac_key, self.directory
                    )
                except (ValueError, TypeError) as exc:
                    raise UsageError(f"invalid --eab-hmac-key: {exc}") from None
            elif meta.external_account_required:
                raise UsageError(
                    "this CA requires External Account Binding",
                    "give --eab-kid and --eab-hmac-key from your CA account",
                )
            registration = messages.NewRegistration.from_data(
                email=settings.email,
                terms_of_service_agreed=bool(tos) or None,
                external_account_binding=eab,
            )
            try:
                uri = client.new_account(registration).uri
            except acme_errors.ConflictError as conflict:  # the key already has an account
                uri = conflict.location
            except messages.Error as error:
                if eab is None or error.code in ("rateLimited", "badNonce", "serverInternal"):
                    raise
                detail = str(error.detail or error.description or error.typ)
                if "cryptographic primitive" in detail or "verification error" in detail:
                    # a library's words ("square/go-jose: error in cryptographic primitive")
                    detail = "its signature by the HMAC key did not verify"
                raise UnauthorizedError(
                    f"the CA refused the External Account Binding: {detail}",
                    "the EAB key or key ID is probably wrong: check --eab-kid and "
                    "--eab-hmac-key against your CA account",
                ) from None
            contact = (f"mailto:{settings.email}",) if settings.email else ()
            account = Account(
                directory=settings.directory_url,
                uri=uri,
                contact=existing.contact if existing else contact,
                terms_of_service=tos,
                created=existing.created if existing else rfc3339(datetime.now(UTC)),
                key_pem=key_pem,
            )
            save_account(self.store, account)
            return account

    @property
    def renewal_info_url(self) -> str | None:
        """The CA's renewalInfo resource (RFC 9773), when it offers one."""
        return self.directory.to_partial_json().get("renewalInfo")

    @property
    def profiles(self) -> dict[str, str]:
        """The ACME profiles the CA offers, by name, with their descriptions."""
        return dict(self.directory.meta.profiles or {})

    # -- one order ----------------------------------------------------------------------

    def obtain(
        self,
        identifiers: list[str],
        csr_pem: bytes,
        solver_for: SolverFor,
        progress: Progress,
        preferred_chain: str | None = None,
        profile: str | None = None,
        replaces: str | None = None,
    ) -> IssuedChain:
        """Order a certificate for `identifiers` (with an ACME profile, and as the renewal
        of the certificate `replaces` names), solve its challenges, finalize with `csr_pem`
        and download the chain."""
        args = (identifiers, csr_pem, solver_for, progress, preferred_chain, profile, replaces)
        with self._classified():
            try:
                return self._obtain(*args)
            except messages.Error as error:
                if not _is_unknown_account(error):
                    raise
            # The CA no longer knows our account (a test CA restarted): register the same
            # key again and retry once.
            with self._lock:
                self.account = self._register(self.account)
            return self._obtain(*args)

    def _obtain(
        self,
        identifiers: list[str],
        csr_pem: bytes,
        solver_for: SolverFor,
        progress: Progress,
        preferred_chain: str | None,
        profile: str | None,
        replaces: str | None,
    ) -> IssuedChain:
        deadline = time.monotonic() + self.settings.timeout
        client = self._client()
        key = client.net.key

        # 1. Place the order, and fetch each of its authorizations.
        progress("Ordering")
        try:
            order = self._place_order(client, identifiers, csr_pem, profile, replaces)
        except (requests.exceptions.RequestException, acme_errors.Error, messages.Error) as exc:
            # A kept directory may be stale (the CA moved a resource): once more with a
            # fresh one, only when a resource did move.
            if not (self._looks_moved(exc) and self.refresh_directory(client.directory)):
                raise
            client = self._client()
            order = self._place_order(client, identifiers, csr_pem, profile, replaces)

        # 2. Pick a challenge per pending authorization (a valid one was reused by the CA).
        work: list[tuple[Solver, Challenge, messages.ChallengeBody, Any]] = []
        for authz in order.authorizations:
            if authz.body.status == messages.STATUS_VALID:
                continue
            name = authz.body.identifier.value
            identifier = f"*.{name}" if authz.body.wildcard else name
            solver = solver_for(identifier)
            challb = next(
                (c for c in authz.body.challenges if c.chall.typ == solver.challenge_type), None
            )
            if challb is None:
                offered = ", ".join(sorted({c.chall.typ for c in authz.body.challenges}))
                raise AcmeError(
                    f"the CA offers no {solver.challenge_type} challenge for {identifier} "
                    f"(it offers {offered or 'none'})"
                )
            response, validation = challb.chall.response_and_validation(key)
            challenge = Challenge(
                identifier=identifier,
                type=solver.challenge_type,
                token=challb.chall.encode("token"),
                key_authorization=response.key_authorization,
                validation=validation,
            )
            work.append((solver, challenge, challb, response))

        # 3. Present every challenge, wait until the CA can see them, answer them all, and
        #    poll the order (one request per poll, however many names) until it is decided.
        progress("Validating")
        by_solver: dict[int, tuple[Solver, list[Challenge]]] = {}
        for solver, challenge, _, _ in work:
            by_solver.setdefault(id(solver), (solver, []))[1].append(challenge)
        try:
            for solver, challenges in by_solver.values():
                solver.present(challenges)
            for solver, challenges in by_solver.values():
                solver.wait(challenges)
            for _, _, challb, response in work:
                client.answer_challenge(challb, response)
            body = self._poll(client, order.uri, {"ready", "valid", "invalid"}, deadline)
        finally:
            for solver, challenges in by_solver.values():
                solver.cleanup(challenges)
        if body.status == messages.STATUS_INVALID:
            raise self._validation_error(client, body)

        # 4. Finalize with our CSR, and poll until the certificate is there.
        if body.status == messages.STATUS_READY:
            response = client._post(
                body.finalize, messages.CertificateRequest(csr=x.load_csr(csr_pem))
            )
            body = messages.Order.from_json(response.json())
        if body.status != messages.STATUS_VALID:
            body = self._poll(client, order.uri, {"valid", "invalid"}, deadline)
        if body.status != messages.STATUS_VALID or body.certificate is None:
            detail = f": {body.error.detail}" if body.error is not None else ""
            raise AcmeError(f"the CA did not issue the certificate{detail}")

        # 5. Download the chain (and the alternates, only when a preferred one is asked for).
        cert_response = client._post_as_get(body.certificate)
        chains = [cert_response.text]
        if preferred_chain:
            chains += [
                client._post_as_get(url).text
                for url in client._get_links(cert_response, "alternate")
            ]
        chain = _split_chain(_choose_chain(chains, preferred_chain))
        verify_issued(chain, identifiers, csr_pem, datetime.now(UTC))
        return chain

    def _place_order(
        self,
        client: acme_client.ClientV2,
        identifiers: list[str],
        csr_pem: bytes,
        profile: str | None,
        replaces: str | None,
    ) -> messages.OrderResource:
        try:
            return self._new_order(client, identifiers, csr_pem, profile, replaces)
        except (messages.Error, acme_errors.ConflictError) as error:
            if replaces is None or _code(error) in ("rateLimited", "badNonce"):
                raise
            # A CA may refuse the certificate ID: unknown, or already replaced (409
            # alreadyReplaced, e.g. after a crash between its issuance and our commit).
            # Once more without it, as RFC 9773 allows.
            return self._new_order(client, identifiers, csr_pem, profile, None)

    @staticmethod
    def _new_order(
        client: acme_client.ClientV2,
        identifiers: list[str],
        csr_pem: bytes,
        profile: str | None,
        replaces: str | None,
    ) -> messages.OrderResource:
        from certcli.domains import is_ip

        order = _NewOrder(
            identifiers=[
                messages.Identifier(
                    typ=messages.IDENTIFIER_IP if is_ip(i) else messages.IDENTIFIER_FQDN, value=i
                )
                for i in identifiers
            ],
            profile=profile,
            replaces=replaces,
        )
        response = client._post(client.directory["newOrder"], order)
        body = messages.Order.from_json(response.json())
        authorizations = [
            client._authzr_from_response(client._post_as_get(url), uri=url)
            for url in body.authorizations
        ]
        return messages.OrderResource(
            body=body,
            uri=response.headers.get("Location"),
            authorizations=authorizations,
            csr_pem=csr_pem,
        )

    def _client(self) -> acme_client.ClientV2:
        """A client on a network session of this thread's own, signing as our account."""
        net = self._local.net = _network(self.settings, _jwk(self.account.key_pem))
        net.account = messages.RegistrationResource(
            uri=self.account.uri, body=messages.Registration()
        )
        return acme_client.ClientV2(self.directory, net)

    # -- the account and certificates after issuance ------------------------------------

    def update_contact(self, email: str | None) -> Account:
        """Send the new contact to the CA, then keep it."""
        contact = (f"mailto:{email}",) if email else ()
        with self._account_changing() as account, self._classified():
            self._client()._post(account.uri, messages.UpdateRegistration(contact=contact))
            self.account = replace(account, contact=contact)
            save_account(self.store, self.account)
        return self.account

    @contextlib.contextmanager
    def _account_changing(self) -> Iterator[Account]:
        """The account as stored now, under its lock while it changes: two changes at once
        (or one built on a copy read earlier) could leave the store holding a key or contact
        the CA no longer has."""
        with self.store.lock_account(account_id(self.settings.directory_url)):
            account = load_account(self.store, self.settings.directory_url)
            if account is None:
                raise NotFoundError(
                    f"no account at {self.settings.directory_url} any more",
                    "another certcli deactivated it meanwhile; `certcli account show` tells",
                )
            self.account = account
            yield account

    def deactivate(self) -> Account:
        """Deactivate the account at the CA (for good) and retire it from the store."""
        with self._account_changing() as account:
            with self._classified():
                self._client()._post(
                    account.uri, messages.UpdateRegistration.from_json({"status": "deactivated"})
                )
            retire_account(self.store, account)
        return account

    def rollover(self) -> Account:
        """Replace the account key (RFC 8555 §7.3.5): an inner JWS signed by the new key,
        inside a request signed by the old one. The new key is on disk before it is sent."""
        from acme import jws

        new_pem = x.private_key_pem(ec.generate_private_key(ec.SECP256R1()))
        new_jwk = _jwk(new_pem, "the new account key")
        url = self.directory["keyChange"]
        with self._account_changing() as account:
            old_public = _jwk(account.key_pem).public_key()
            payload = json.dumps({"account": account.uri, "oldKey": old_public.to_partial_json()})
            inner = jws.JWS.sign(
                payload.encode(), key=new_jwk, alg=_alg(new_jwk), nonce=None, url=url
            )
            pending = save_pending_key(self.store, account, new_pem)
            with self._classified():
                self._client()._post(url, inner)
            self.account = replace(account, key_pem=new_pem)
            save_account(self.store, self.account)
            pending.unlink()
        return self.account

    def revoke(self, cert_pem: bytes, reason: int) -> bool:
        """Revoke a certificate: True, or False when the CA had revoked it already."""
        certificate = x.parse_certificates(cert_pem, "the certificate")[0]
        with self._classified():
            try:
                self._client().revoke(certificate, reason)
            except messages.Error as error:
                if _code(error) != "alreadyRevoked":
                    raise
                return False
        return True

    def _poll(
        self,
        client: acme_client.ClientV2,
        uri: str,
        wanted: set[str],
        deadline: float,
    ) -> messages.Order:
        """POST-as-GET the order until its status is in `wanted`: fast at first, backing
        off, never sooner than the CA's Retry-After, never past the deadline."""
        wait = POLL_FIRST
        while True:
            time.sleep(wait)
            response = client._post_as_get(uri)
            body = messages.Order.from_json(response.json())
            if body.status.name in wanted:
                return body
            left = deadline - time.monotonic()
            if left <= 0:
                raise AcmeTimeoutError(
                    f"the CA did not finish the order in {self.settings.timeout:.0f} s "
                    f"(still {body.status.name})",
                    "try again later, or raise the timeout (CERTCLI_ACME_TIMEOUT)",
                )
            wait = min(max(min(wait * 2, POLL_MAX), _retry_after(response) or 0), left)

    def _validation_error(
        self, client: acme_client.ClientV2, order: messages.Order
    ) -> ValidationFailedError:
        """Name each identifier that failed, with the CA's own words."""
        failures = []
        for url in order.authorizations:
            authz = client._authzr_from_response(client._post_as_get(url), uri=url).body
            for challenge in authz.challenges:
                if challenge.error is not None:
                    name = ("*." if authz.wildcard else "") + authz.identifier.value
                    why = challenge.error.detail or challenge.error.typ
                    failures.append(f"{name} ({challenge.chall.typ}): {why}")
        if not failures and order.error is not None:
            failures.append(order.error.detail or str(order.error.typ))
        return ValidationFailedError(
            "validation failed for " + "; ".join(failures or ["an identifier"]),
            "the CA's words above say what it saw; fix that and try again",
        )

    # -- error classification -----------------------------------------------------------

    @contextlib.contextmanager
    def _classified(self) -> Iterator[None]:
        """Turn what the network and the CA raise into one classified certcli error."""
        url = self.settings.directory_url
        host = urlsplit(url).netloc or url
        try:
            try:
                yield
            except BaseException as exc:
                if self.directory_kept and self._looks_moved(exc):  # the next run asks afresh
                    save_directory(self.store, url, None)
                raise
        except CertcliError:
            raise
        except requests.exceptions.SSLError as exc:
            raise TlsVerificationError(
                f"the TLS certificate of the CA at {host} did not verify ({_reason(exc)})",
                "for a private CA give its bundle with --ca-bundle FILE or REQUESTS_CA_BUNDLE",
            ) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise CaUnreachableError(
                f"cannot reach the CA at {url} ({_reason(exc)})",
                "check --server and the network; nothing was changed",
            ) from None
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise UsageError(f"--server {url} is not a usable URL ({exc})") from None
        except requests.exceptions.RequestException as exc:
            raise CaUnreachableError(
                f"the connection to the CA at {host} failed ({type(exc).__name__})"
            ) from None
        except (acme_errors.Error, jose.DeserializationError, ValueError, KeyError) as exc:
            net = getattr(self._local, "net", None)
            raise _classify_acme(exc, host, net.last_response if net else None) from None


def _classify_acme(exc: Exception, host: str, response: requests.Response | None) -> AcmeError:
    """What `acme` raises, as a classified error: "not understood" only for an answer that
    truly was not (not JSON, not the object expected)."""
    if isinstance(exc, messages.Error):
        return _classify_problem(exc, response)
    if isinstance(exc, acme_errors.IssuanceError):
        return _classify_problem(exc.error, response)
    if isinstance(exc, acme_errors.ValidationError):
        names = ", ".join(a.body.identifier.value for a in exc.failed_authzrs)
        return ValidationFailedError(f"validation failed for {names or 'an identifier'}")
    if isinstance(exc, acme_errors.TimeoutError | acme_errors.PollError):
        return AcmeTimeoutError(
            f"the CA at {host} did not finish in time",
            "try again later, or raise the timeout (CERTCLI_ACME_TIMEOUT)",
        )
    if isinstance(exc, acme_errors.ConflictError):
        return AcmeError(f"the CA at {host} refused the request as a conflict (HTTP 409)")
    if isinstance(exc, acme_errors.NonceError):
        return CaUnreachableError(
            f"the CA at {host} sent no usable anti-replay nonce",
            "this is usually an outage of the CA (or a proxy in the way): try again later",
        )
    if isinstance(exc, acme_errors.ARIError):
        return CaUnreachableError(f"cannot fetch renewal information from {host}: {exc}")
    if isinstance(exc, acme_errors.WildcardUnsupportedError):
        return AcmeError(f"the CA at {host} does not issue wildcard certificates")
    if isinstance(exc, acme_errors.UnexpectedUpdate):
        return AcmeError(f"the CA at {host} answered with another resource than the one asked")
    if isinstance(exc, acme_errors.DependencyError):
        return AcmeError(f"a dependency of certcli is missing or too old: {exc}")
    http = _response_in(exc) if isinstance(exc, acme_errors.ClientError) else None
    if http is not None:
        return _classify_status(http, host)
    return AcmeError(f"the CA's answer was not understood ({type(exc).__name__}: {exc})")


def _response_in(exc: Exception) -> requests.Response | None:
    """The HTTP response a ClientError carries (alone, or with the error it caused)."""
    for arg in exc.args:
        for item in arg if isinstance(arg, tuple) else (arg,):
            if isinstance(item, requests.Response):
                return item
    return None


def _classify_status(response: requests.Response, host: str) -> AcmeError:
    """An error answer without an ACME problem document (a proxy's, a CA's outage page)."""
    status = response.status_code
    said = f"the CA at {host} answered HTTP {status} {response.reason or ''}".rstrip()
    if status == 429:
        wait = _retry_after(response) or 3600.0
        return RateLimitedError(
            f"{said}: a rate limit",
            f"certcli will not retry before {wait:.0f} s have passed",
            retry_after=wait,
        )
    if status in (401, 403):
        return UnauthorizedError(f"{said}: the request was refused")
    if status >= 500:
        return CaUnreachableError(f"{said}: it is not available", "try again later")
    return AcmeError(f"{said}, without an ACME problem document")


def _code(error: BaseException) -> str | None:
    """An ACME problem's code, also for types acme does not list (alreadyReplaced)."""
    typ = str(getattr(error, "typ", "") or "")
    prefix = messages.ERROR_PREFIX
    return typ.removeprefix(prefix) if typ.startswith(prefix) else None


def _classify_problem(error: messages.Error, response: requests.Response | None) -> AcmeError:
    detail = error.detail or error.description or str(error.typ)
    code = _code(error)
    if code == "rateLimited":
        wait = _retry_after(response) or 3600.0
        return RateLimitedError(
            f"the CA's rate limit was hit: {detail}",
            f"certcli will not retry before {wait:.0f} s have passed",
            retry_after=wait,
        )
    if code in (
        "unauthorized",
        "accountDoesNotExist",
        "externalAccountRequired",
        "userActionRequired",
    ):
        return UnauthorizedError(f"the CA refused the request: {detail}")
    if code in ("connection", "dns", "incorrectResponse", "tls", "caa"):
        return ValidationFailedError(f"validation failed: {detail}")
    return AcmeError(f"the CA reported a problem ({code or error.typ}): {detail}")


def _is_unknown_account(error: messages.Error) -> bool:
    if error.code == "accountDoesNotExist":
        return True
    return error.code == "unauthorized" and "account" in (error.detail or "").lower()


def _reason(exc: Exception) -> str:
    """The useful end of a requests error: 'Connection refused', 'certificate verify failed'."""
    text = str(exc)
    for pattern in (r"certificate verify failed: ([^(')\]]+)", r"\[Errno -?\d+\] ([^'\")]+)"):
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    return type(exc).__name__


def _split_chain(fullchain: str) -> IssuedChain:
    try:
        certs = x.parse_certificates(fullchain.encode(), "the CA's certificate chain")
    except InvalidInputError as exc:
        raise BadCertificateError(exc.message, NOTHING_INSTALLED) from None
    return IssuedChain(
        cert_pem=x.cert_pem(certs[0]), chain_pem=b"".join(x.cert_pem(c) for c in certs[1:])
    )


NOTHING_INSTALLED = "nothing was installed; the CA (or a proxy before it) is at fault: report it"
CLOCK_SKEW = timedelta(minutes=5)  # a CA whose clock runs ahead of ours is not hostile


def verify_issued(
    chain: IssuedChain, identifiers: list[str], csr_pem: bytes, now: datetime
) -> None:
    """The certificate the CA returned is the one ordered, before anything goes live: for
    the key of our CSR, for exactly the names ordered, valid now, its chain linking."""
    leaf = x.parse_certificates(chain.cert_pem, "the issued certificate")[0]
    intermediates = x.parse_certificates(chain.chain_pem, "its chain") if chain.chain_pem else []
    wrong = []
    if not x.same_public_key(leaf.public_key(), x.load_csr(csr_pem).public_key()):
        wrong.append("it is for another key than the one certcli sent")
    got, ordered = set(x.sans_of(leaf)), {i.lower() for i in identifiers}
    if got != ordered:
        missing = ", ".join(sorted(ordered - got)) or "none"
        extra = ", ".join(sorted(got - ordered)) or "none"
        wrong.append(f"its names are not those ordered (missing: {missing}; not ordered: {extra})")
    start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    if not start - CLOCK_SKEW <= now < end:
        wrong.append(f"it is not valid now (valid from {rfc3339(start)} to {rfc3339(end)})")
    try:
        x.check_chain(leaf, intermediates)
    except InvalidInputError as exc:
        wrong.append(exc.message.replace("the chain is out of order or", "its chain"))
    if wrong:
        raise BadCertificateError(
            "the CA returned a certificate certcli will not install: " + "; ".join(wrong),
            NOTHING_INSTALLED,
        )


def _choose_chain(chains: list[str], preferred: str | None) -> str:
    """The first chain whose topmost certificate is issued by (or is) `preferred`, by CN;
    else the CA's default, as certbot does."""
    if preferred:
        wanted = preferred.strip().lower()
        for chain in chains:
            top = x.parse_certificates(chain.encode(), "a chain")[-1]
            if wanted in (x.issuer_label(top).lower(), (x.cert_info(top).subject_cn or "").lower()):
                return chain
    return chains[0]
