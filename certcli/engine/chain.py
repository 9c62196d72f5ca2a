"""The chain a CA returned: split into certificate and chain, the preferred one chosen,
and checked to be what was ordered before anything goes live."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from certcli import x509 as x
from certcli.errors import BadCertificateError, InvalidInputError
from certcli.models import rfc3339

NOTHING_INSTALLED = "nothing was installed; the CA (or a proxy before it) is at fault: report it"
CLOCK_SKEW = timedelta(minutes=5)  # a CA whose clock runs ahead of ours is not hostile


@dataclass(frozen=True)
class IssuedChain:
    cert_pem: bytes
    chain_pem: bytes


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
