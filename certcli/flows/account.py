"""certcli account: the stored ACME account, and the changes to it made at its CA."""

from __future__ import annotations

from collections.abc import Callable
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
            "`certcli account register --agree-tos` creates one (or check --server)",
        )
    return account


def register(
    store: Storage,
    config: dict[str, Any],
    options: AcmeOptions,
    accept_tos: Callable[[str], bool],
    warn: Callable[[str], None],
) -> tuple[Account, bool]:
    """The account at the CA of `options`, created there when the store holds none (with
    the options' contact, terms and EAB), and whether this call created it. An account
    already stored is returned as it is, asking the CA nothing: registering twice is no
    error, so that a script can run it every time (`warn` hears of an --email it ignores)."""
    from certcli.engine import Ca  # the ACME stack

    settings = ca_settings(options, config)
    if options.email:
        check_email(options.email)  # a bad address fails before the CA is asked
    known = store.read_account(settings.directory_url)
    if known is not None:
        warning = contact_warning(store, config, options)
        if warning:
            warn(warning)
        return known, False
    ca = Ca(store, settings, accept_tos)
    return ca.account, True


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


def contact_warning(store: Storage, config: dict[str, Any], options: AcmeOptions) -> str | None:
    """What to tell when --email is not the stored account's contact (only a new account
    takes it); None when there is nothing to tell."""
    found = other_contact(store, config, options)
    if found is None:
        return None
    directory, account = found
    return (
        f"--email {options.email} is not the contact of your account at "
        f"{directory} ({', '.join(account.contact) or 'none'}), and only a "
        f"new account takes it: `certcli account update --email {options.email}` "
        "changes the contact"
    )
