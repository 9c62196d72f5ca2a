"""What `requests` and `acme` raise, as one classified error of certcli.errors."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from urllib.parse import urlsplit

import josepy as jose
import requests
from acme import errors as acme_errors
from acme import messages

from certcli.engine.network import retry_after
from certcli.errors import (
    AcmeError,
    AcmeTimeoutError,
    CaUnreachableError,
    CertcliError,
    RateLimitedError,
    TlsVerificationError,
    UnauthorizedError,
    UsageError,
    ValidationFailedError,
)


@contextlib.contextmanager
def classified(url: str, last_response: Callable[[], requests.Response | None]) -> Iterator[None]:
    """Turn what the network and the CA at `url` raise into one classified certcli error;
    `last_response` gives the answer the failure came with (for its Retry-After)."""
    host = urlsplit(url).netloc or url
    try:
        yield
    except CertcliError:
        raise
    except requests.exceptions.SSLError as exc:
        raise TlsVerificationError(
            f"the TLS certificate of the CA at {host} did not verify ({reason(exc)})",
            "for a private CA give its bundle with --ca-bundle FILE or REQUESTS_CA_BUNDLE",
        ) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise CaUnreachableError(
            f"cannot reach the CA at {url} ({reason(exc)})",
            "check --server and the network; nothing was changed",
        ) from None
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
        raise UsageError(f"--server {url} is not a usable URL ({exc})") from None
    except requests.exceptions.RequestException as exc:
        raise CaUnreachableError(
            f"the connection to the CA at {host} failed ({type(exc).__name__})"
        ) from None
    except (acme_errors.Error, jose.DeserializationError, ValueError, KeyError) as exc:
        raise classify_acme(exc, host, last_response()) from None


def classify_acme(exc: Exception, host: str, response: requests.Response | None) -> AcmeError:
    """What `acme` raises, as a classified error: "not understood" only for an answer that
    truly was not (not JSON, not the object expected)."""
    if isinstance(exc, messages.Error):
        return classify_problem(exc, response)
    if isinstance(exc, acme_errors.IssuanceError):
        return classify_problem(exc.error, response)
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
    http = response_in(exc) if isinstance(exc, acme_errors.ClientError) else None
    if http is not None:
        return classify_status(http, host)
    return AcmeError(f"the CA's answer was not understood ({type(exc).__name__}: {exc})")


def response_in(exc: Exception) -> requests.Response | None:
    """The HTTP response a ClientError carries (alone, or with the error it caused)."""
    for arg in exc.args:
        for item in arg if isinstance(arg, tuple) else (arg,):
            if isinstance(item, requests.Response):
                return item
    return None


def classify_status(response: requests.Response, host: str) -> AcmeError:
    """An error answer without an ACME problem document (a proxy's, a CA's outage page)."""
    status = response.status_code
    said = f"the CA at {host} answered HTTP {status} {response.reason or ''}".rstrip()
    if status == 429:
        wait = retry_after(response) or 3600.0
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


def code(error: BaseException) -> str | None:
    """An ACME problem's code, also for types acme does not list (alreadyReplaced)."""
    typ = str(getattr(error, "typ", "") or "")
    prefix = messages.ERROR_PREFIX
    return typ.removeprefix(prefix) if typ.startswith(prefix) else None


def classify_problem(error: messages.Error, response: requests.Response | None) -> AcmeError:
    detail = error.detail or error.description or str(error.typ)
    problem = code(error)
    if problem == "rateLimited":
        wait = retry_after(response) or 3600.0
        retry = f"certcli will not retry before {wait:.0f} s have passed"
        unpause = unpause_url(detail)
        if unpause is None:
            return RateLimitedError(
                f"the CA's rate limit was hit: {detail}", retry, retry_after=wait
            )
        # a paused account (Let's Encrypt, after failing validation for a name again and
        # again): only a person visiting the URL lifts it, so the hint names it alone
        said = detail.replace(unpause, "the URL below")
        return RateLimitedError(
            f"the CA has paused the account: {said}", f"unpause at {unpause}", retry_after=wait
        )
    if problem in (
        "unauthorized",
        "accountDoesNotExist",
        "externalAccountRequired",
        "userActionRequired",
    ):
        return UnauthorizedError(f"the CA refused the request: {detail}")
    if problem in ("connection", "dns", "incorrectResponse", "tls", "caa"):
        return ValidationFailedError(f"validation failed: {detail}")
    return AcmeError(f"the CA reported a problem ({problem or error.typ}): {detail}")


_UNPAUSE = re.compile(r"https://\S+/unpause\?\S+")


def unpause_url(detail: str) -> str | None:
    """The unpause URL a paused account's rateLimited problem holds, as Let's Encrypt sends
    it (`https://portal.letsencrypt.org/sfe/v1/unpause?jwt=...`); None in any other."""
    match = _UNPAUSE.search(detail)
    return match.group(0).rstrip(".,;)\"'") if match else None


def is_unknown_account(error: messages.Error) -> bool:
    if error.code == "accountDoesNotExist":
        return True
    return error.code == "unauthorized" and "account" in (error.detail or "").lower()


def reason(exc: Exception) -> str:
    """The useful end of a requests error: 'Connection refused', 'certificate verify failed'."""
    text = str(exc)
    for pattern in (r"certificate verify failed: ([^(')\]]+)", r"\[Errno -?\d+\] ([^'\")]+)"):
        match = re.search(pattern, text)
        if match:
            return match.group(1).strip()
    if "timed out" in text.lower():
        return "timed out"
    return type(exc).__name__
