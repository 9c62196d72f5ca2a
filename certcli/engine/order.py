"""One order, step by step: place it (with RFC 9773's `replaces`), pick a challenge per
authorization, answer them, poll until decided, finalize, download and check the chain."""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import josepy as jose
from acme import challenges as acme_challenges
from acme import client as acme_client
from acme import errors as acme_errors
from acme import messages
from cryptography.hazmat.primitives import hashes

import certcli.engine.chain as chains  # by module: a fault test replaces split_chain
from certcli import x509 as x
from certcli.challenges import Challenge, Solver
from certcli.engine.chain import IssuedChain
from certcli.engine.classify import code
from certcli.engine.network import log, retry_after
from certcli.errors import AcmeError, AcmeTimeoutError, ValidationFailedError
from certcli.models import Phase

POLL_FIRST = 0.02  # seconds: a nearby CA has often validated by then; doubling from there
POLL_MAX = 3.0

Progress = Callable[[Phase], None]
SolverFor = Callable[[str], Solver]


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
    authorizations = [authorization(client, url) for url in body.authorizations]
    return messages.OrderResource(
        body=body,
        uri=response.headers.get("Location"),
        authorizations=authorizations,
        csr_pem=csr_pem,
    )


def complete(
    client: acme_client.ClientV2,
    order: messages.OrderResource,
    identifiers: list[str],
    solver_for: SolverFor,
    progress: Progress,
    preferred_chain: str | None,
    deadline: float,
    timeout: float,
) -> IssuedChain:
    """A placed order, to its checked chain."""
    # 1. Pick a challenge per pending authorization.
    work = answers(order, solver_for, client.net.key)
    log.debug("order %s: %d challenge(s) to answer", order.uri, len(work))

    # 2. Present, wait, answer, poll until the order is decided.
    progress(Phase.VALIDATING)
    body = validate(client, order.uri, work, deadline, timeout)

    # 3. Finalize with our CSR, and poll until the certificate is there.
    log.debug("order %s: finalizing", order.uri)
    certificate = finalize(client, order, body, deadline, timeout)

    # 4. Download the chain and check it is what was ordered.
    log.debug("order %s: downloading %s", order.uri, certificate)
    chain = download(client, certificate, preferred_chain)
    chains.verify_issued(chain, identifiers, order.csr_pem, datetime.now(UTC))
    return chain


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
            (c for c in authz.body.challenges if challenge_type(c) == solver.challenge_type), None
        )
        if challb is None:
            offered = ", ".join(sorted({challenge_type(c) for c in authz.body.challenges}))
            raise AcmeError(
                f"the CA offers no {solver.challenge_type} challenge for {identifier} "
                f"(it offers {offered or 'none'})"
            )
        challenge, response = prepared(identifier, solver.challenge_type, challb, key)
        work.append(Answer(solver, challenge, challb, response))
    return work


def challenge_type(challb: messages.ChallengeBody) -> str:
    """A challenge's type, also of one the acme library does not know (dns-account-01,
    dns-persist-01), which it keeps as plain JSON."""
    chall = challb.chall
    if isinstance(chall, acme_challenges.UnrecognizedChallenge):
        return str(chall.jobj.get("type", ""))
    return str(chall.typ)


class EmptyResponse(jose.JSONDeSerializable):
    """The answer `{}`: what the drafts' methods post (the CA looks at DNS, not at us).
    Not a JSONObjectWithFields: one without fields is falsy, and acme would send a
    POST-as-GET (an empty payload), which answers nothing."""

    def to_partial_json(self) -> dict[str, Any]:
        return {}

    @classmethod
    def from_json(cls, jobj: Any) -> EmptyResponse:
        return cls()


#: RFC 8555 §8: a token is base64url text (acme itself checks the types it knows).
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,1024}")


def prepared(
    identifier: str, typ: str, challb: messages.ChallengeBody, key: jose.JWK
) -> tuple[Challenge, Any]:
    """The challenge as a solver presents it, and the response to post. A type the acme
    library does not know is answered with `{}`; its token, when it has one, gives the
    key authorization and the DNS-01-style TXT value (base64url of its SHA-256), as
    dns-account-01 uses them; dns-persist-01 has no token and needs neither."""
    chall = challb.chall
    offered = ""
    if not isinstance(chall, acme_challenges.UnrecognizedChallenge):
        response, validation = chall.response_and_validation(key)
        token = chall.encode("token")
        key_authorization = response.key_authorization
    else:
        offered = json.dumps(chall.jobj)
        response = EmptyResponse()
        token = chall.jobj.get("token") or ""
        if not isinstance(token, str) or (token and not _TOKEN.fullmatch(token)):
            # acme checks the token of the types it knows; this one is the CA's text as is
            raise AcmeError(
                f"the CA's {typ} challenge for {identifier} has a token that is not "
                f"base64url text ({type(token).__name__}, {len(str(token))} characters)",
                "the CA does not follow RFC 8555 §8; report it to the CA",
            )
        key_authorization = validation = ""
        if token:
            thumbprint = jose.b64encode(key.thumbprint(hash_function=hashes.SHA256)).decode()
            key_authorization = f"{token}.{thumbprint}"
            digest = hashlib.sha256(key_authorization.encode()).digest()
            validation = jose.b64encode(digest).decode()
    challenge = Challenge(
        identifier=identifier,
        type=typ,
        token=token,
        key_authorization=key_authorization,
        validation=validation,
        offered=offered,
    )
    return challenge, response


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
        body = poll(
            client,
            uri,
            {"ready", "valid", "invalid"},
            deadline,
            timeout,
            lambda pending: failed_authorization(client, pending),
        )
    finally:
        for solver, challenges in by_solver.values():
            solver.cleanup(challenges)
    if body.status != messages.STATUS_READY and body.status != messages.STATUS_VALID:
        raise validation_error(client, body)
    return body


def failed_authorization(client: acme_client.ClientV2, order: messages.Order) -> bool:
    """Whether an authorization of the order is invalid: some CAs leave the order
    pending when one fails (RFC 8555 makes it invalid), and it would never be ready."""
    return any(
        authorization(client, url).body.status == messages.STATUS_INVALID
        for url in order.authorizations
    )


def authorization(client: acme_client.ClientV2, url: str) -> messages.AuthorizationResource:
    return client.poll(messages.AuthorizationResource(uri=url, body=messages.Authorization()))[0]


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
    texts = [cert_response.text]
    if preferred:
        texts += [
            client._post_as_get(link).text  # private: as above
            for link in client._get_links(cert_response, "alternate")  # private: no public one
        ]
    return chains.split_chain(chains.choose_chain(texts, preferred))


#: Polls of a pending order before its authorizations are looked at too, and how often.
STALL_AFTER = 4


def poll(
    client: acme_client.ClientV2,
    uri: str,
    wanted: set[str],
    deadline: float,
    timeout: float,
    stalled: Callable[[messages.Order], bool] | None = None,
) -> messages.Order:
    """POST-as-GET the order until its status is in `wanted`: fast at first, backing
    off, never sooner than the CA's Retry-After, never past the deadline. A pending order
    is returned as it is once `stalled` says it will stay so (asked every few polls)."""
    wait = POLL_FIRST
    polls = 0
    while True:
        time.sleep(wait)
        # private: acme's public polling (poll_finalization) sleeps a fixed second
        response = client._post_as_get(uri)
        body = messages.Order.from_json(response.json())
        if body.status.name in wanted:
            return body
        polls += 1
        if stalled is not None and polls % STALL_AFTER == 0 and stalled(body):
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
        authz = authorization(client, url)
        name = ("*." if authz.body.wildcard else "") + authz.body.identifier.value
        found = [
            f"{name} ({challenge_type(c)}): {c.error.detail or c.error.typ}"
            for c in authz.body.challenges
            if c.error is not None
        ]
        if not found and authz.body.status == messages.STATUS_INVALID:
            # some CAs mark the authorization invalid and give no reason (dns-persist-01)
            found = [f"{name}: the CA found it invalid and gave no reason"]
        failures += found
    if not failures and order.error is not None:
        failures.append(order.error.detail or str(order.error.typ))
    return ValidationFailedError(
        "validation failed for " + "; ".join(failures or ["an identifier"]),
        "the CA's words above say what it saw; fix that and try again",
    )


def revoke(client: acme_client.ClientV2, cert_pem: bytes, reason: int) -> bool:
    """Revoke a certificate: True, or False when the CA had revoked it already."""
    certificate = x.parse_certificates(cert_pem, "the certificate")[0]
    try:
        client.revoke(certificate, reason)
    except messages.Error as error:
        if code(error) != "alreadyRevoked":
            raise
        return False
    return True
