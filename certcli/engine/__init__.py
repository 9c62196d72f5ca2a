"""The ACME engine: directory → account → order → solve → finalize → download.

The only package that imports `acme`. It never prints: progress goes to a callback, the
conversation with the CA to the `certcli.acme` logger, failures become the classified
errors of certcli.errors. `Ca` is its front; the steps live in the modules beside it.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

import requests
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from cryptography.hazmat.primitives.asymmetric import ec

from certcli import x509 as x
from certcli.engine import account as accounts
from certcli.engine import order as orders
from certcli.engine.ari import RenewalWindow, fetch_renewal_window
from certcli.engine.chain import IssuedChain, verify_issued
from certcli.engine.classify import classified, is_unknown_account
from certcli.engine.directory import Directory, looks_moved
from certcli.engine.network import CaSettings, Network, check_bundles, log
from certcli.engine.order import Progress, SolverFor
from certcli.errors import NotFoundError
from certcli.models import Account, Phase
from certcli.storage.protocol import Storage

__all__ = [
    "Ca",
    "CaSettings",
    "IssuedChain",
    "Progress",
    "RenewalWindow",
    "SolverFor",
    "fetch_renewal_window",
    "verify_issued",
]


class Ca:
    """One CA: its directory and our account there. Safe to share between threads: each
    order runs on its own network session. It connects on first use (or `connect`): the
    constructor reads no store and asks no CA."""

    def __init__(
        self,
        store: Storage,
        settings: CaSettings,
        accept_tos: Callable[[str], bool],
        *,
        create: bool = True,
    ) -> None:
        check_bundles(settings)  # a usage error, before anything is stored or asked
        self.store, self.settings = store, settings
        self._accept_tos, self._create = accept_tos, create
        self._lock = threading.Lock()  # a refetch or re-registration, once for all threads
        self._connect_lock = threading.Lock()
        self._connected = False
        self._networks = accounts.ThreadNetworks(settings)  # kept per thread across orders
        self._directory = Directory(store, settings)
        self._account: Account | None = None

    def connect(self) -> None:
        """Read the account, fetch the directory (or use the copy kept with an account)
        and register when there is no account yet: once, whichever thread comes first."""
        if self._connected:
            return
        with self._connect_lock:
            if self._connected:
                return
            url = self.settings.directory_url
            account = self.store.read_account(url)
            if account is None and not self._create:
                raise NotFoundError(
                    f"no account at {url} yet",
                    "`certcli account register --agree-tos` creates one (or check --server)",
                )
            with self._classified():
                # With an account, the directory kept from an earlier run saves a round trip;
                # a failure while using it makes the next run (and a failed order) ask again.
                self._directory.load(use_kept=account is not None)
                self._account = account or accounts.register(
                    self.store, self.settings, self._directory.current, self._accept_tos, None
                )
            self._directory.save()
            self._connected = True

    @property
    def account(self) -> Account:
        self.connect()
        assert self._account is not None
        return self._account

    @property
    def directory(self) -> messages.Directory:
        self.connect()
        return self._directory.current

    @property
    def renewal_info_url(self) -> str | None:
        """The CA's renewalInfo resource (RFC 9773), when it offers one."""
        self.connect()
        return self._directory.renewal_info_url

    @property
    def profiles(self) -> dict[str, str]:
        """The ACME profiles the CA offers, by name, with their descriptions."""
        self.connect()
        return self._directory.profiles

    def refresh_directory(self, used: messages.Directory) -> bool:
        """Fetch the directory again if `used` was a kept copy; True when a resource moved."""
        return self._directory.refresh(used)

    def _client(self) -> acme_client.ClientV2:
        """A client on a network session of this thread's own, signing as our account."""
        return acme_client.ClientV2(self.directory, self._networks.get(self.account))

    def _last_response(self) -> requests.Response | None:
        net: Network | None = self._networks.current()
        return net.last_response if net is not None else None

    @contextlib.contextmanager
    def _classified(self) -> Iterator[None]:
        """Classified errors; one a moved resource could cause drops the kept directory."""
        with classified(self.settings.directory_url, self._last_response):
            try:
                yield
            except BaseException as exc:
                if looks_moved(exc, self._last_response()):  # forget() keeps a fresh copy
                    self._directory.forget()
                raise

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

        def attempt() -> IssuedChain:
            timeout = self.settings.timeout
            deadline = time.monotonic() + timeout
            # 1. Place the order, and fetch each of its authorizations.
            progress(Phase.ORDERING)
            client, order = self._place(identifiers, csr_pem, profile, replaces)
            # 2. Answer its challenges, finalize, download and check the chain.
            return orders.complete(
                client, order, identifiers, solver_for, progress, preferred_chain, deadline, timeout
            )

        try:
            with self._classified():
                self.connect()
                try:
                    return attempt()
                except messages.Error as error:
                    if not is_unknown_account(error):
                        raise
                # The CA no longer knows our account (a test CA restarted): register the
                # same key again and retry once.
                log.debug("the CA no longer knows the account %s", self.account.uri)
                with self._lock:
                    self._account = accounts.register(
                        self.store, self.settings, self.directory, self._accept_tos, self._account
                    )
                return attempt()
        except BaseException:
            self._networks.drop()  # only once classified, by this network's last response
            raise

    def _place(
        self, identifiers: list[str], csr_pem: bytes, profile: str | None, replaces: str | None
    ) -> tuple[acme_client.ClientV2, messages.OrderResource]:
        """The order placed, and the client that placed it."""
        client = self._client()
        log.debug("ordering %s", ", ".join(identifiers))
        try:
            return client, orders.place_order(client, identifiers, csr_pem, profile, replaces)
        except (requests.exceptions.RequestException, acme_errors.Error, messages.Error) as exc:
            # A kept directory may be stale (the CA moved a resource): once more with a
            # fresh one, only when a resource did move.
            moved = looks_moved(exc, self._last_response())
            if not (moved and self.refresh_directory(client.directory)):
                raise
        client = self._client()
        return client, orders.place_order(client, identifiers, csr_pem, profile, replaces)

    def update_contact(self, email: str | None) -> Account:
        """Send the new contact to the CA, then keep it."""
        contact = (f"mailto:{email}",) if email else ()
        with self._account_changing() as account, self._classified():
            accounts.send_contact(self._client(), account, contact)
            self._account = replace(account, contact=contact)
            self.store.write_account(self._account)
        return self._account

    @contextlib.contextmanager
    def _account_changing(self) -> Iterator[Account]:
        """The account as stored now, under its lock while it changes."""
        self.connect()
        with accounts.changing(self.store, self.settings.directory_url) as account:
            self._account = account
            yield account

    def deactivate(self) -> Account:
        """Deactivate the account at the CA (for good) and retire it from the store."""
        with self._account_changing() as account:
            with self._classified():
                accounts.send_deactivation(self._client(), account)
            self.store.retire_account(account)
        return account

    def rollover(self) -> Account:
        """Replace the account key (RFC 8555 §7.3.5). The new key is on disk before it is
        sent."""
        new_pem = x.private_key_pem(ec.generate_private_key(ec.SECP256R1()))
        with self._account_changing() as account:
            url = self.directory["keyChange"]
            self.store.stage_account_key(account, new_pem)
            with self._classified():
                accounts.send_key_change(self._client(), url, account, new_pem)
            self._account = replace(account, key_pem=new_pem)
            self.store.write_account(self._account)
            self.store.unstage_account_key(account)
        return self._account

    def revoke(self, cert_pem: bytes, reason: int) -> bool:
        """Revoke a certificate: True, or False when the CA had revoked it already."""
        with self._classified():
            self.connect()
            return orders.revoke(self._client(), cert_pem, reason)
