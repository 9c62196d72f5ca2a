"""ACME Renewal Information (RFC 9773): when the CA suggests renewing one certificate."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import requests
from acme import errors as acme_errors
from acme import messages

from certcli.engine.network import CaSettings, open_network, retry_after
from certcli.errors import AcmeError, CaUnreachableError
from certcli.models import parse_rfc3339


@dataclass(frozen=True)
class RenewalWindow:
    start: datetime
    end: datetime
    retry_after: float  # seconds before asking again
    explanation_url: str | None = None  # the CA's page on why (RFC 9773 explanationURL)


def fetch_renewal_window(
    url: str, settings: CaSettings, default_retry: float = 6 * 3600
) -> RenewalWindow:
    """GET one certificate's renewal information: no account, one request."""
    try:
        response = open_network(settings).get(url)
        body = response.json()
        window = body["suggestedWindow"]
        start, end = (parse_rfc3339(window[k]) for k in ("start", "end"))
    except (requests.exceptions.RequestException, acme_errors.Error, messages.Error) as exc:
        raise CaUnreachableError(f"cannot fetch renewal information from {url}: {exc}") from None
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise AcmeError(f"the renewal information at {url} is malformed ({exc})") from None
    start, end = (t if t.tzinfo else t.replace(tzinfo=UTC) for t in (start, end))
    return RenewalWindow(
        start, end, retry_after(response) or default_retry, _explanation(body.get("explanationURL"))
    )


def _explanation(value: object) -> str | None:
    """An explanationURL worth showing: an http(s) URL on one line; anything else is
    dropped (it is advisory, so a malformed one never fails the window)."""
    if not isinstance(value, str) or len(value) > 2048:
        return None
    if not value.startswith(("https://", "http://")) or not value.isprintable() or " " in value:
        return None
    return value
