"""certcli account: the stored ACME account, and the changes to it made at its CA."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from certcli.domains import check_email
from certcli.errors import NotFoundError
from certcli.flows.plan import AcmeOptions, ca_settings
from certcli.models import Account
from certcli.storage.protocol import Storage

if TYPE_CHECKING:
    from certcli.engine import Ca


def _ca(store: Storage, config: dict[str, Any], server: str | None) -> Ca:
    """The CA's engine for an account that exists: none is created, no terms are asked."""
    from certcli.engine import Ca  # the ACME stack

    settings = ca_settings(AcmeOptions(server=server), config)
    return Ca(store, settings, lambda _url: False, create=False)


def show_account(store: Storage, config: dict[str, Any], server: str | None) -> Account:
    """The stored account (no request to the CA)."""
    directory = ca_settings(AcmeOptions(server=server), config).directory_url
    account = store.read_account(directory)
    if account is None:
        raise NotFoundError(
            f"no account at {directory} yet",
            "`certcli issue DOMAIN --agree-tos` creates one (or check --server)",
        )
    return account


def update_contact(
    store: Storage, config: dict[str, Any], server: str | None, email: str
) -> Account:
    """Change the account's contact at the CA ('' for none), checked before it is asked."""
    contact = check_email(email) if email else None
    return _ca(store, config, server).update_contact(contact)


def rollover(store: Storage, config: dict[str, Any], server: str | None) -> Account:
    """Replace the account key at the CA (RFC 8555 key change)."""
    return _ca(store, config, server).rollover()


def deactivate(store: Storage, config: dict[str, Any], server: str | None) -> Account:
    """Deactivate the account at the CA, for good."""
    return _ca(store, config, server).deactivate()


def other_contact(
    store: Storage, config: dict[str, Any], options: AcmeOptions
) -> tuple[str, Account] | None:
    """The CA's directory and the account there when --email is not its contact (only a
    new account takes --email); None otherwise. The CA's settings are checked first, so
    that a bad one fails before anything is written."""
    settings = ca_settings(options, config)
    if not options.email:
        return None
    account = store.read_account(settings.directory_url)
    if account is not None and f"mailto:{options.email}" not in account.contact:
        return settings.directory_url, account
    return None
