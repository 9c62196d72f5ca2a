"""One order, step by step: place it (with RFC 9773's `replaces`), pick a challenge per
authorization, answer them, poll until decided, finalize, download and check the chain."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import josepy as jose
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages

from certcli import x509 as x
from certcli.engine.classify import code
from certcli.engine.network import log, retry_after
from certcli.errors import (
    AcmeError,
    AcmeTimeoutError,
    BadCertificateError,
    InvalidInputError,
    ValidationFailedError,
)
from certcli.models import rfc3339
from certcli.solvers import Challenge, Solver

POLL_FIRST = 0.02  # seconds: a nearby CA has often validated by then; doubling from there
POLL_MAX = 3.0
NOTHING_INSTALLED = "nothing was installed; the CA (or a proxy before it) is at fault: report it"
CLOCK_SKEW = timedelta(minutes=5)  # a CA whose clock runs ahead of ours is not hostile

Progress = Callable[[str], None]
SolverFor = Callable[[str], Solver]


@dataclass(frozen=True)
class IssuedChain:
    cert_pem: bytes
    chain_pem: bytes


@dataclass(frozen=True)
class Answer:
    """One pending authorization's challenge, as its solver presents it and as sent."""

    solver: Solver
    challenge: Challenge
    body: messages.ChallengeBody
    response: Any  # acme's ChallengeResponse for it


class NewOrder(messages.NewOrder):
    """acme's NewOrder plus RFC 9773's `replaces` (the certificate this order renews)."""

    replaces: str | None = jose.field("replaces", omitempty=True)


def place_order(
    client: acme_client.ClientV2,
    identifiers: list[str],
    csr_pem: bytes,
    profile: str | None,
    replaces: str | None,
) -> messages.OrderResource:
    try:
        return new_order(client, identifiers, csr_pem, profile, replaces)
    except (messages.Error, acme_errors.ConflictError) as error:
        if replaces is None or code(error) in ("rateLimited", "badNonce"):
            raise
        # A CA may refuse the certificate ID: unknown, or already replaced (409
        # alreadyReplaced, e.g. after a crash between its issuance and our commit).
        # Once more without it, as RFC 9773 allows.
        log.debug("the CA refused replaces=%s: ordering again without it", replaces)
        return new_order(client, identifiers, csr_pem, profile, None)


def new_order(
    client: acme_client.ClientV2,
    identifiers: list[str],
    csr_pem: bytes,
    profile: str | None,
    replaces: str | None,
) -> messages.OrderResource:
    """The order and each of its authorizations."""
    from certcli.domains import is_ip

    order = NewOrder(
        identifiers=[
            messages.Identifier(
                typ=messages.IDENTIFIER_IP if is_ip(i) else messages.IDENTIFIER_FQDN, value=i
            )
            for i in identifiers
        ],
        profile=profile,
        replaces=replaces,
    )
    # private: the public new_order() sends no `replaces`
    response = client._post(client.directory["newOrder"], order)
    body = messages.Order.from_json(response.json())
    authorizations = [
        client.poll(messages.AuthorizationResource(uri=url, body=messages.Authorization()))[0]
        for url in body.authorizations
    ]
    return messages.OrderResource(
        body=body,
        uri=response.headers.get("Location"),
        authorizations=authorizations,
        csr_pem=csr_pem,
    )


def answers(order: messages.OrderResource, solver_for: SolverFor, key: jose.JWK) -> list[Answer]:
    """A challenge per pending authorization (a valid one was reused by the CA)."""
    work = []
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
        work.append(Answer(solver, challenge, challb, response))
    return work


def validate(
    client: acme_client.ClientV2, uri: str, work: list[Answer], deadline: float, timeout: float
) -> messages.Order:
    """Present every challenge, wait until the CA can see them, answer them all, and poll
    the order (one request per poll, however many names) until it is decided. Cleanup
    always runs."""
    by_solver: dict[int, tuple[Solver, list[Challenge]]] = {}
    for answer in work:
        by_solver.setdefault(id(answer.solver), (answer.solver, []))[1].append(answer.challenge)
    try:
        for solver, challenges in by_solver.values():
            solver.present(challenges)
        for solver, challenges in by_solver.values():
            solver.wait(challenges)
        for answer in work:
            client.answer_challenge(answer.body, answer.response)
        body = poll(client, uri, {"ready", "valid", "invalid"}, deadline, timeout)
    finally:
        for solver, challenges in by_solver.values():
            solver.cleanup(challenges)
    if body.status == messages.STATUS_INVALID:
        raise validation_error(client, body)
    return body


def finalize(
    client: acme_client.ClientV2,
    order: messages.OrderResource,
    body: messages.Order,
    deadline: float,
    timeout: float,
) -> str:
    """Finalize with the order's CSR and poll until the certificate is there: its URL."""
    if body.status == messages.STATUS_READY:
        body = client.begin_finalization(order.update(body=body)).body
    if body.status != messages.STATUS_VALID:
        body = poll(client, order.uri, {"valid", "invalid"}, deadline, timeout)
    if body.status != messages.STATUS_VALID or body.certificate is None:
        detail = f": {body.error.detail}" if body.error is not None else ""
        raise AcmeError(f"the CA did not issue the certificate{detail}")
    return body.certificate


def download(client: acme_client.ClientV2, url: str, preferred: str | None) -> IssuedChain:
    """The chain (and the alternates, only when a preferred one is asked for)."""
    # private: POST-as-GET of a certificate URL; acme downloads only inside its 1 s polling
    cert_response = client._post_as_get(url)
    chains = [cert_response.text]
    if preferred:
        chains += [
            client._post_as_get(link).text  # private: as above
            for link in client._get_links(cert_response, "alternate")  # private: no public one
        ]
    return split_chain(choose_chain(chains, preferred))


def poll(
    client: acme_client.ClientV2, uri: str, wanted: set[str], deadline: float, timeout: float
) -> messages.Order:
    """POST-as-GET the order until its status is in `wanted`: fast at first, backing
    off, never sooner than the CA's Retry-After, never past the deadline."""
    wait = POLL_FIRST
    while True:
        time.sleep(wait)
        # private: acme's public polling (poll_finalization) sleeps a fixed second
        response = client._post_as_get(uri)
        body = messages.Order.from_json(response.json())
        if body.status.name in wanted:
            return body
        left = deadline - time.monotonic()
        if left <= 0:
            raise AcmeTimeoutError(
                f"the CA did not finish the order in {timeout:.0f} s (still {body.status.name})",
                "try again later, or raise the timeout (CERTCLI_ACME_TIMEOUT)",
            )
        asked = retry_after(response) or 0
        wait = min(max(min(wait * 2, POLL_MAX), asked), left)
        if asked:
            log.debug("order %s: polling again in %.1f s (Retry-After)", body.status.name, wait)


def validation_error(client: acme_client.ClientV2, order: messages.Order) -> ValidationFailedError:
    """Name each identifier that failed, with the CA's own words."""
    failures = []
    for url in order.authorizations:
        authz, _ = client.poll(
            messages.AuthorizationResource(uri=url, body=messages.Authorization())
        )
        for challenge in authz.body.challenges:
            if challenge.error is not None:
                name = ("*." if authz.body.wildcard else "") + authz.body.identifier.value
                why = challenge.error.detail or challenge.error.typ
                failures.append(f"{name} ({challenge.chall.typ}): {why}")
    if not failures and order.error is not None:
        failures.append(order.error.detail or str(order.error.typ))
    return ValidationFailedError(
        "validation failed for " + "; ".join(failures or ["an identifier"]),
        "the CA's words above say what it saw; fix that and try again",
    )


def split_chain(fullchain: str) -> IssuedChain:
    try:
        certs = x.parse_certificates(fullchain.encode(), "the CA's certificate chain")
    except InvalidInputError as exc:
        raise BadCertificateError(exc.message, NOTHING_INSTALLED) from None
    return IssuedChain(
        cert_pem=x.cert_pem(certs[0]), chain_pem=b"".join(x.cert_pem(c) for c in certs[1:])
    )


def choose_chain(chains: list[str], preferred: str | None) -> str:
    """The first chain whose topmost certificate is issued by (or is) `preferred`, by CN;
    else the CA's default, as certbot does."""
    if preferred:
        wanted = preferred.strip().lower()
        for chain in chains:
            top = x.parse_certificates(chain.encode(), "a chain")[-1]
            if wanted in (x.issuer_label(top).lower(), (x.cert_info(top).subject_cn or "").lower()):
                return chain
    return chains[0]


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
