"""Our account at a CA: its key as a JWK, registration (or finding the existing one), and
the changes the CA is told of: contact, deactivation, key rollover."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import josepy as jose
from acme import client as acme_client
from acme import errors as acme_errors
from acme import jws, messages
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from certcli import x509 as x
from certcli.engine.network import CaSettings, Network, log, open_network
from certcli.errors import NotFoundError, UnauthorizedError, UsageError
from certcli.models import Account, rfc3339
from certcli.storage.protocol import Storage


def jwk(key_pem: bytes, what: str = "the account key") -> jose.JWK:
    key = x.load_private_key(key_pem, what)
    if isinstance(key, rsa.RSAPrivateKey):  # certbot's account keys, adopted by `import`
        return jose.JWKRSA(key=key)
    return jose.JWKEC(key=key)


def alg(key: jose.JWK | None) -> jose.JWASignature:
    """The JWS algorithm for an account key: RS256 for RSA, ES256/ES384 by curve for EC."""
    if isinstance(key, jose.JWKRSA):
        return jose.RS256
    if isinstance(key, jose.JWKEC) and key.key.curve.name == "secp384r1":
        return jose.ES384
    return jose.ES256


def signed_network(settings: CaSettings, key_pem: bytes) -> Network:
    """A network session that signs with the account key `key_pem`."""
    key = jwk(key_pem)
    return open_network(settings, key, alg(key))


class ThreadNetworks:
    """A signing network session per thread. One outlives an order (its TLS connection,
    its spare nonce and the parsed key serve the thread's next order) until the account
    key changes or `drop` forgets it, as after a failure: a stale connection or nonce must
    not outlive the order it broke."""

    def __init__(self, settings: CaSettings) -> None:
        self.settings = settings
        self._local = threading.local()

    def get(self, account: Account) -> Network:
        net: Network | None = getattr(self._local, "net", None)
        if net is None or self._local.key_pem != account.key_pem:
            net = self._local.net = signed_network(self.settings, account.key_pem)
            self._local.key_pem = account.key_pem
        net.last_response = None  # errors are classified by this order's responses only
        net.account = resource(account)
        return net

    def current(self) -> Network | None:
        """This thread's session, for the last response an error is classified by."""
        return getattr(self._local, "net", None)

    def drop(self) -> None:
        self._local.net = None


def resource(account: Account) -> messages.RegistrationResource:
    """The account as acme's client knows it: its URL (its key ID); the CA has the rest."""
    return messages.RegistrationResource(uri=account.uri, body=messages.Registration())


def register(
    store: Storage,
    settings: CaSettings,
    directory: messages.Directory,
    accept_tos: Callable[[str], bool],
    existing: Account | None,
) -> Account:
    """Create the account (or, with `existing`, register its key again at a CA that has
    forgotten it, as a test CA does when it restarts). Under the account's lock: another
    process may have registered meanwhile, and its account is the one."""
    with store.lock_account(settings.directory_url):
        stored = store.read_account(settings.directory_url)
        if stored is not None and (existing is None or stored.uri != existing.uri):
            return stored
        key_pem = (
            existing.key_pem
            if existing
            else x.private_key_pem(ec.generate_private_key(ec.SECP256R1()))
        )
        key = jwk(key_pem)
        client = acme_client.ClientV2(directory, open_network(settings, key, alg(key)))
        meta = directory.meta
        tos = meta.terms_of_service
        if tos and existing is None and not (settings.agree_tos or accept_tos(tos)):
            raise UsageError(
                f"the CA's terms of service must be accepted to create an account: {tos}",
                "read them, then add --agree-tos (or run certcli at a terminal to be asked)",
            )
        eab = None
        if settings.eab_kid and settings.eab_hmac_key:
            try:
                eab = messages.ExternalAccountBinding.from_data(
                    key.public_key(), settings.eab_kid, settings.eab_hmac_key, directory
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
        log.debug("registering %s account key", "the same" if existing else "a new")
        try:
            uri = client.new_account(registration).uri
        except acme_errors.ConflictError as conflict:  # the key already has an account
            uri = conflict.location
        except messages.Error as error:
            if eab is None or error.code in ("rateLimited", "badNonce", "serverInternal"):
                raise
            raise _eab_refused(error) from None
        contact = (f"mailto:{settings.email}",) if settings.email else ()
        account = Account(
            directory=settings.directory_url,
            uri=uri,
            contact=existing.contact if existing else contact,
            terms_of_service=tos,
            created=existing.created if existing else rfc3339(datetime.now(UTC)),
            key_pem=key_pem,
        )
        store.write_account(account)
        return account


def _eab_refused(error: messages.Error) -> UnauthorizedError:
    detail = str(error.detail or error.description or error.typ)
    if "cryptographic primitive" in detail or "verification error" in detail:
        # a library's words ("square/go-jose: error in cryptographic primitive")
        detail = "its signature by the HMAC key did not verify"
    return UnauthorizedError(
        f"the CA refused the External Account Binding: {detail}",
        "the EAB key or key ID is probably wrong: check --eab-kid and "
        "--eab-hmac-key against your CA account",
    )


@contextlib.contextmanager
def changing(store: Storage, directory_url: str) -> Iterator[Account]:
    """The account as stored now, under its lock while it changes: two changes at once
    (or one built on a copy read earlier) could leave the store holding a key or contact
    the CA no longer has."""
    with store.lock_account(directory_url):
        account = store.read_account(directory_url)
        if account is None:
            raise NotFoundError(
                f"no account at {directory_url} any more",
                "another certcli deactivated it meanwhile; `certcli account show` tells",
            )
        yield account


def send_contact(client: acme_client.ClientV2, account: Account, contact: tuple[str, ...]) -> None:
    client.update_registration(resource(account), messages.Registration(contact=contact))


def send_deactivation(client: acme_client.ClientV2, account: Account) -> None:
    client.deactivate_registration(resource(account))


def send_key_change(
    client: acme_client.ClientV2, url: str, account: Account, new_pem: bytes
) -> None:
    """RFC 8555 §7.3.5: an inner JWS signed by the new key, inside a request signed by
    the old one."""
    new_jwk = jwk(new_pem, "the new account key")
    old_public = jwk(account.key_pem).public_key()
    payload = json.dumps({"account": account.uri, "oldKey": old_public.to_partial_json()})
    inner = jws.JWS.sign(payload.encode(), key=new_jwk, alg=alg(new_jwk), nonce=None, url=url)
    client._post(url, inner)  # private: acme has no key change (certbot does not roll keys)
