"""One exception tree; each class carries the exit code documented in docs/exit-codes.md."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # an operation ran and reports a failure (or `status --fail-on` matched)
    USAGE = 2  # bad arguments, invalid domain names
    NOT_FOUND = 3  # unknown lineage, missing input file
    INVALID_INPUT = 4  # a certificate, key or CSR that certcli will not accept
    STORE = 5  # the store cannot be read or written
    LOCKED = 6  # another certcli process holds the lock
    NOT_CONFIRMED = 7  # a confirmation was declined, or needed without a TTY or --yes
    CA_UNREACHABLE = 10  # no connection to the CA (refused, timed out, DNS)
    TLS_FAILED = 11  # the CA's TLS certificate did not verify
    RATE_LIMITED = 12  # the CA asks to wait (Retry-After)
    VALIDATION_FAILED = 13  # the CA could not validate a challenge
    UNAUTHORIZED = 14  # the account or the request was refused (terms, EAB, permissions)
    CA_ERROR = 15  # any other problem the CA reported
    TIMEOUT = 16  # the CA did not finish in time, or DNS did not propagate in time
    DNS_NOT_READY = 17  # a SAN's _acme-challenge delegation is not Valid, or CAA forbids it
    DNS_PROVIDER = 18  # the DNS provider could not write or remove a TXT record
    INTERNAL = 70  # a bug: please report it with the output of -v
    INTERRUPTED = 130


class CertcliError(Exception):
    """An error with a message for the user, an optional next step and an exit code."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(CertcliError):
    exit_code = ExitCode.USAGE


class NotFoundError(CertcliError):
    exit_code = ExitCode.NOT_FOUND


class InvalidInputError(CertcliError):
    exit_code = ExitCode.INVALID_INPUT


class StoreError(CertcliError):
    exit_code = ExitCode.STORE


class UntrustedError(StoreError):
    """A store directory or settings file that another user could change (docs/security.md)."""


class LockedError(CertcliError):
    exit_code = ExitCode.LOCKED

    def __init__(self, message: str, hint: str | None = None, holder: str | None = None) -> None:
        super().__init__(message, hint)
        self.holder = holder  # who holds the lock: `HOST (PID N)`, `PID N`


class NotConfirmedError(CertcliError):
    exit_code = ExitCode.NOT_CONFIRMED


class AcmeError(CertcliError):
    """A classified failure of a conversation with the CA; `kind` goes into state.json."""

    kind = "ca_error"
    exit_code = ExitCode.CA_ERROR


class CaUnreachableError(AcmeError):
    kind = "ca_unreachable"
    exit_code = ExitCode.CA_UNREACHABLE


class TlsVerificationError(AcmeError):
    kind = "tls_failed"
    exit_code = ExitCode.TLS_FAILED


class RateLimitedError(AcmeError):
    kind = "rate_limited"
    exit_code = ExitCode.RATE_LIMITED

    def __init__(self, message: str, hint: str | None = None, retry_after: float = 3600) -> None:
        super().__init__(message, hint)
        self.retry_after = retry_after


class ValidationFailedError(AcmeError):
    kind = "validation_failed"
    exit_code = ExitCode.VALIDATION_FAILED


class BadCertificateError(AcmeError):
    """The CA returned a certificate other than the one ordered (key, names, validity, chain)."""

    kind = "bad_certificate"
    exit_code = ExitCode.CA_ERROR


class UnauthorizedError(AcmeError):
    kind = "unauthorized"
    exit_code = ExitCode.UNAUTHORIZED


class AcmeTimeoutError(AcmeError):
    kind = "timeout"
    exit_code = ExitCode.TIMEOUT


class DnsNotReadyError(AcmeError):
    """Some SAN's delegation is not Valid; `diagnoses` says which and why."""

    kind = "dns_not_ready"
    exit_code = ExitCode.DNS_NOT_READY

    def __init__(self, message: str, hint: str | None = None, diagnoses: tuple = ()) -> None:
        super().__init__(message, hint)
        self.diagnoses = diagnoses


class CaaForbidsError(AcmeError):
    """A SAN's CAA records allow none of the CA's identities, or not this account or
    method; `findings` says which and why. Nothing was ordered."""

    kind = "caa_forbids"
    exit_code = ExitCode.DNS_NOT_READY

    def __init__(self, message: str, hint: str | None = None, findings: tuple = ()) -> None:
        super().__init__(message, hint)
        self.findings = findings


class DnsProviderError(AcmeError):
    kind = "dns_provider"
    exit_code = ExitCode.DNS_PROVIDER


class DnsPropagationError(AcmeError):
    kind = "dns_propagation"
    exit_code = ExitCode.TIMEOUT
