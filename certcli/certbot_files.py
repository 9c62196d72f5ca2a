"""Reading certbot's config directory for `certcli import certbot`: a lineage's live files,
its renewal configuration and credentials, certbot's ACME accounts, and what else certbot
runs. Nothing here writes; certcli.importer plans and applies the import."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from certcli import trust
from certcli import x509 as x
from certcli.certbot_conf import text_of
from certcli.configobj import ConfError, parse_configobj
from certcli.domains import check_certificate_names
from certcli.errors import CertcliError, InvalidInputError, NotFoundError
from certcli.inputs import read_input
from certcli.models import Account, CertInfo

_FILES = ("cert", "chain", "fullchain", "privkey")


@dataclass(frozen=True)
class Material:
    """The live files of a certbot lineage, checked: the key matches, the chain is in order."""

    cert_pem: bytes
    chain_pem: bytes
    key_pem: bytes
    info: CertInfo
    sources: dict[str, str]  # cert/chain/privkey -> the archive file read


def _live_file(directory: Path, name: str, conf: dict[str, Any], kind: str) -> Path:
    """The conf's path of a live file, else live/NAME/KIND.pem (a certbot directory that was
    moved or copied keeps its old absolute paths in the confs)."""
    default = directory / "live" / name / f"{kind}.pem"
    configured = text_of(conf.get(kind))
    if configured and (os.path.lexists(configured) or not os.path.lexists(default)):
        return Path(configured)
    return default


def read_material(directory: Path, name: str, conf: dict[str, Any]) -> Material:
    """Read and check the live certificate, chain and key (through the live symlinks)."""
    paths = {kind: _live_file(directory, name, conf, kind) for kind in _FILES}
    leaf = x.parse_certificates(read_input(paths["cert"], "certificate"), str(paths["cert"]))[0]
    try:
        chain_data = read_input(paths["chain"], "chain")
        chain = x.parse_certificates(chain_data, str(paths["chain"]))
        sources = {"chain": str(paths["chain"].resolve())}
    except NotFoundError:  # no chain.pem: the full chain has it
        fullchain = read_input(paths["fullchain"], "full chain")
        chain = x.parse_certificates(fullchain, str(paths["fullchain"]))[1:]
        sources = {"chain": str(paths["fullchain"].resolve())}
    key = x.load_private_key(read_input(paths["privkey"], "private key"), str(paths["privkey"]))
    if not x.same_public_key(key.public_key(), leaf.public_key()):
        raise InvalidInputError(
            f"the key {paths['privkey']} does not match the certificate {paths['cert']}",
            "repair the lineage with certbot (certbot renew --cert-name "
            f"{name} --force-renewal), then import it",
        )
    x.check_chain(leaf, chain)
    info = x.cert_info(leaf)
    if not info.sans:
        raise InvalidInputError(f"{paths['cert']} has no subjectAltName extension")
    check_certificate_names(info.sans, str(paths["cert"]))
    sources |= {k: str(paths[k].resolve()) for k in ("cert", "privkey")}
    return Material(
        cert_pem=x.cert_pem(leaf),
        chain_pem=b"".join(x.cert_pem(c) for c in chain),
        key_pem=x.private_key_pem(key),
        info=info,
        sources=sources,
    )


def read_conf(path: Path, what: str = "renewal configuration") -> dict[str, Any]:
    """A ConfigObj file parsed; a credentials file's lines are never quoted in errors."""
    data = read_input(path, what)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ConfError(f"{path} is not UTF-8 text") from None
    return parse_configobj(text, str(path), reveal=what != "credentials file")


def read_credentials(params: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """The rfc2136 credentials file a renewal configuration names, or why it is unreadable."""
    path = text_of(params.get("dns_rfc2136_credentials"))
    if not path:
        return None, None
    try:
        return read_conf(Path(path), "credentials file"), None
    except CertcliError as exc:
        return None, exc.message


def jwk_private_key(jwk: dict[str, Any]) -> x.PrivateKey:
    """A private key from certbot's account key (a JWK: RSA, or EC P-256/P-384)."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def number(field: str) -> int:
        value = str(jwk[field])
        return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")

    if jwk.get("kty") == "RSA":
        public = rsa.RSAPublicNumbers(number("e"), number("n"))
        return rsa.RSAPrivateNumbers(
            number("p"),
            number("q"),
            number("d"),
            number("dp"),
            number("dq"),
            number("qi"),
            public,
        ).private_key()
    curves = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1}
    if jwk.get("kty") == "EC" and jwk.get("crv") in curves:
        return ec.derive_private_key(number("d"), curves[str(jwk["crv"])]())
    raise ValueError(f"a {jwk.get('kty')} {jwk.get('crv', '')} key, which certcli cannot use")


def read_certbot_account(directory: Path, server: str, account: str) -> Account:
    """certbot's account `account` at `server`: accounts/<host><path>/<id>/ holds
    private_key.json (a JWK), regr.json (its URI) and meta.json (when it was made)."""
    parts = urlsplit(server)
    path = directory / "accounts" / (parts.netloc + parts.path).strip("/") / account
    if not path.is_dir():
        found = sorted((directory / "accounts").glob(f"**/{account}/regr.json"))
        if not found:
            raise NotFoundError(f"certbot's account {account} is not under {directory}/accounts")
        path = found[0].parent
    # its key becomes certcli's account key, which signs every request to the CA: read only
    # from directories and files nobody else can change, as certcli's own account
    for below in (p for p in reversed((path, *path.parents)) if directory in p.parents):
        trust.check_path(below)  # accounts/, then each directory down to the account's
    for name in ("private_key.json", "regr.json", "meta.json"):
        trust.check_path(path / name)
    try:
        key = jwk_private_key(json.loads(read_input(path / "private_key.json", "account key")))
        regr = json.loads(read_input(path / "regr.json", "account"))
        meta_path = path / "meta.json"
        meta = json.loads(read_input(meta_path, "account")) if meta_path.exists() else {}
        uri = regr["uri"]
        body = regr.get("body") or {}
        return Account(
            directory=server,
            uri=str(uri),
            contact=tuple(str(c) for c in body.get("contact") or ()),
            terms_of_service=regr.get("terms_of_service"),
            created=str(meta.get("creation_dt") or ""),
            key_pem=x.private_key_pem(key),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        raise InvalidInputError(f"cannot read certbot's account in {path}: {reason}") from None


def certbot_notes(directory: Path) -> list[str]:
    """What certbot does beyond the lineages' own settings and certcli does not."""
    notes = []
    for kind in ("pre", "post", "deploy"):
        hooks = directory / "renewal-hooks" / kind
        try:
            scripts = sorted(
                p.name for p in hooks.iterdir() if p.is_file() and os.access(p, os.X_OK)
            )
        except OSError:
            continue
        if scripts:
            notes.append(
                f"certbot also runs {', '.join(scripts)} from {hooks} at each renewal; certcli "
                f"does not: call them from hooks.{kind} (`certcli config set hooks.{kind} CMD`)"
            )
    if (directory / "cli.ini").is_file():
        notes.append(
            f"{directory / 'cli.ini'} may hold defaults certbot's renewals used too; "
            "certcli did not read it"
        )
    return notes
