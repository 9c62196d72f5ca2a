"""`certcli import certbot`: certbot's lineages adopted into certcli's store.

certbot keeps, under its config directory (/etc/letsencrypt), one renewal configuration per
lineage (`renewal/NAME.conf`, ConfigObj syntax), the live files as symlinks into `archive/`,
and its ACME accounts under `accounts/`. Importing only reads there. Each lineage becomes an
ACME lineage of certcli with the same name, whose version 1 is certbot's live certificate,
chain and key, with the settings certcli can run: the CA, the webroot, the rfc2136 key,
hooks and the key type. What does not map is said in warnings naming what to set instead.

The work is split in a plan (reads and checks everything, writes nothing: `--dry-run` shows
it) and its application (an account, config.toml, then each lineage whole).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from certcli import x509 as x
from certcli.accounts import Account, load_account, save_account
from certcli.config import LETSENCRYPT, setting
from certcli.domains import validate_lineage_name
from certcli.errors import CertcliError, InvalidInputError, NotFoundError, StoreError
from certcli.inputs import read_input
from certcli.models import KEY_TYPES, CertInfo, LineageConfig, Mode, rfc3339
from certcli.store import KEY_MODE, Store, atomic_write, version_files

_FILES = ("cert", "chain", "fullchain", "privkey")

# -- certbot's renewal configuration: the ConfigObj syntax it writes --------------------------


class ConfError(InvalidInputError):
    """A renewal configuration (or credentials file) that cannot be parsed."""


_SECTION = re.compile(r"^(\[+)\s*(.*?)\s*(\]+)\s*(?:#.*)?$")


def parse_configobj(text: str, source: str) -> dict[str, Any]:
    """The sections and values of a ConfigObj file, as certbot writes them.

    Values are strings, or lists of strings where the line has a comma outside quotes
    (`webroot_path = /var/www,` is a list of one); `[section]` and `[[subsection]]` nest.
    Quotes ('…', "…", and triple quotes spanning lines) are removed; `#` outside quotes
    starts a comment. A line that is none of these is an error naming the line.
    """
    root: dict[str, Any] = {}
    stack: list[tuple[int, dict[str, Any]]] = [(0, root)]
    lines = text.removeprefix("\ufeff").splitlines()
    index = 0
    while index < len(lines):
        number = index + 1
        line = lines[index].strip()
        index += 1

        def fail(why: str, number: int = number) -> ConfError:
            return ConfError(f"{source} line {number}: {why}", "fix or remove the line")

        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            match = _SECTION.match(line)
            if not match or len(match.group(1)) != len(match.group(3)) or not match.group(2):
                raise fail(f"not a section header: {line[:60]}")
            depth = len(match.group(1))
            while stack[-1][0] >= depth:
                stack.pop()
            if stack[-1][0] != depth - 1:
                raise fail(f"section {match.group(2)!r} is nested {depth} deep under nothing")
            parent = stack[-1][1]
            name = _unquote_key(match.group(2))
            if name in parent:
                raise fail(f"{name!r} appears twice")
            parent[name] = section = {}
            stack.append((depth, section))
            continue
        key, rest = _split_key(line)
        if key is None:
            raise fail(f"expected `key = value`, found {line[:60]!r}")
        rest = rest.strip()
        if rest[:3] in ('"""', "'''"):
            quote, body = rest[:3], rest[3:]
            while quote not in body:
                if index >= len(lines):
                    raise fail(f"the value of {key!r} opens {quote} and never closes it")
                body += "\n" + lines[index]
                index += 1
            value, _, after = body.partition(quote)
            if after.strip() and not after.strip().startswith("#"):
                raise fail(f"unexpected text after the value of {key!r}")
        else:
            try:
                value = _value(rest)
            except ValueError as exc:
                raise fail(f"the value of {key!r}: {exc}") from None
        current = stack[-1][1]
        if key in current:
            raise fail(f"{key!r} appears twice")
        current[key] = value
    return root


def _unquote_key(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _split_key(line: str) -> tuple[str | None, str]:
    if line[0] in "'\"":
        end = line.find(line[0], 1)
        if end < 0:
            return None, ""
        key, rest = line[1:end], line[end + 1 :].lstrip()
        if not rest.startswith("="):
            return None, ""
        return key, rest[1:]
    key, sep, rest = line.partition("=")
    if not sep or not key.strip():
        return None, ""
    return key.strip(), rest


def _value(text: str) -> str | list[str]:
    """One value: a string, or a list when a comma separates items outside quotes."""
    if text.split("#", 1)[0].strip() == ",":
        return []  # ConfigObj's empty list
    items: list[tuple[str, bool]] = []  # (text, was quoted)
    is_list = False
    pos = 0
    while True:
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] in "'\"":
            end = text.find(text[pos], pos + 1)
            if end < 0:
                raise ValueError(f"the quote {text[pos]} is never closed")
            items.append((text[pos + 1 : end], True))
            pos = end + 1
        else:
            match = re.match(r"[^,#]*", text[pos:])
            assert match is not None
            items.append((match.group(0).strip(), False))
            pos += match.end()
        while pos < len(text) and text[pos] in " \t":
            pos += 1
        if pos < len(text) and text[pos] == ",":
            is_list = True
            pos += 1
            continue
        if pos < len(text) and text[pos] != "#":
            raise ValueError(f"unexpected {text[pos:][:20]!r} after a quoted string")
        break
    if not is_list:
        return items[0][0]
    if items and items[-1] == ("", False):
        items.pop()  # `a, b,`: the trailing comma makes a list, adds no item
    return [item for item, _ in items]


# -- mapping certbot's settings onto certcli's ------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """What a certbot lineage becomes in certcli: lineage.toml's settings, settings that
    certcli keeps once per installation (config.toml), and warnings for what does not map."""

    server: str
    key_type: str
    authenticator: str
    challenge: str | None = None  # None: certcli cannot answer as certbot did
    webroot: str | None = None
    deploy_hook: str | None = None
    preferred_chain: str | None = None
    profile: str | None = None
    account: str | None = None  # certbot's account ID
    # (what, {dotted config.toml key: value}): set together, or not at all
    global_settings: tuple[tuple[str, dict[str, Any]], ...] = ()
    warnings: tuple[str, ...] = ()

    def lineage_extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"server": self.server}
        if self.challenge:
            extra["challenge"] = self.challenge
        for key, value in (
            ("webroot", self.webroot),
            ("preferred_chain", self.preferred_chain),
            ("profile", self.profile),
        ):
            if value:
                extra[key] = value
        if self.deploy_hook:
            extra["hooks"] = {"deploy": self.deploy_hook}
        return extra


_CURVES = {"secp256r1": "ec-p256", "prime256v1": "ec-p256", "secp384r1": "ec-p384"}
_TSIG = {"hmac-sha1", "hmac-sha224", "hmac-sha256", "hmac-sha384", "hmac-sha512"}
SECRET_KEYS = frozenset({"dns.rfc2136.tsig_secret"})


def _text(value: Any) -> str | None:
    """A setting as one string (a list, as an unquoted comma would make it, joined back)."""
    if isinstance(value, list):
        return ", ".join(value) or None
    if isinstance(value, str):
        return value.strip() or None
    return None


def map_key_type(params: dict[str, Any], live_key_type: str) -> tuple[str, str | None]:
    """certcli's key type for renewals, and a warning when certbot's does not exist in
    certcli. Without `key_type` certbot renews with the type of the current key."""
    kind = (_text(params.get("key_type")) or "").lower()
    if kind == "ecdsa":
        curve = (_text(params.get("elliptic_curve")) or "secp256r1").lower()
        if curve in _CURVES:
            return _CURVES[curve], None
        return "ec-p384", f"certbot made {curve} keys; renewals make ec-p384 keys"
    if kind == "rsa":
        size_text = _text(params.get("rsa_key_size")) or "2048"
        key_type = f"rsa-{size_text}"
        if key_type in KEY_TYPES:
            return key_type, None
        fallback = "rsa-4096" if size_text.isdigit() and int(size_text) > 4096 else "rsa-2048"
        return fallback, f"certbot made {size_text}-bit RSA keys; renewals make {fallback} keys"
    if not kind:
        if live_key_type in KEY_TYPES:
            return live_key_type, None
        return "rsa-2048", f"the live key is {live_key_type}; renewals make rsa-2048 keys"
    return "ec-p256", f"certbot's key_type {kind!r} is unknown to certcli; renewals make ec-p256"


def _webroot(params: dict[str, Any], domains: tuple[str, ...]) -> tuple[str | None, str | None]:
    """The one webroot of the lineage, or None and why not (certcli has one per lineage)."""
    mapping = params.get("webroot_map")
    roots: list[str] = []
    if isinstance(mapping, dict) and mapping:
        roots = [r for d in domains if (r := _text(mapping.get(d)))]
        roots = roots or [r for r in map(_text, mapping.values()) if r]
    else:
        paths = params.get("webroot_path")
        roots = [t for p in (paths if isinstance(paths, list) else [paths]) if (t := _text(p))]
    distinct = list(dict.fromkeys(r.rstrip("/") or "/" for r in roots))
    if len(distinct) == 1:
        return distinct[0], None
    if not distinct:
        return None, "its renewal configuration names no webroot"
    return None, (
        f"certbot served its names from {len(distinct)} webroots ({', '.join(distinct)}) and "
        "certcli uses one per lineage: serve /.well-known/acme-challenge/ of every name from one "
        "directory, or split the lineage"
    )


def _rfc2136(
    credentials: dict[str, Any] | None, problem: str | None, where: str
) -> tuple[dict[str, Any], str | None]:
    """certcli's [dns.rfc2136] settings from certbot's credentials INI, or why not."""
    if credentials is None:
        return {}, problem or "its renewal configuration names no dns_rfc2136_credentials file"
    server = _text(credentials.get("dns_rfc2136_server"))
    name = _text(credentials.get("dns_rfc2136_name"))
    secret = _text(credentials.get("dns_rfc2136_secret"))
    if not (server and name and secret):
        missing = [k for k, v in (("server", server), ("name", name), ("secret", secret)) if not v]
        return {}, f"{where} has no dns_rfc2136_{', dns_rfc2136_'.join(missing)}"
    algorithm = (_text(credentials.get("dns_rfc2136_algorithm")) or "HMAC-MD5").lower()
    if algorithm not in _TSIG:
        return {}, (
            f"the TSIG key in {where} uses {algorithm.upper()}, which certcli does not sign "
            "with: make an hmac-sha256 key (tsig-keygen) and set dns.rfc2136.*"
        )
    port = _text(credentials.get("dns_rfc2136_port")) or "53"
    host = f"[{server}]" if ":" in server else server
    return {
        "dns.rfc2136.server": f"{host}:{port}",
        "dns.rfc2136.tsig_name": name,
        "dns.rfc2136.tsig_secret": secret,
        "dns.rfc2136.tsig_algorithm": algorithm,
    }, None


@dataclass
class _Answer:
    """How certcli answers the CA's challenge for one lineage, as far as it can."""

    challenge: str | None = None
    webroot: str | None = None
    global_settings: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _answer(
    authenticator: str,
    params: dict[str, Any],
    name: str,
    domains: tuple[str, ...],
    credentials: tuple[dict[str, Any] | None, str | None],
    dns_target: str | None,
) -> _Answer:
    """certbot's authenticator, mapped onto certcli's challenge settings."""
    names = shlex.join(domains)
    webroot_hint = (
        f"set one with `certcli config set webroot DIR` (for every lineage without its own), "
        f"or re-issue: `certcli issue {names} --name {name} --webroot DIR --force-renewal`"
    )
    result = _Answer()
    if authenticator == "webroot":
        result.webroot, problem = _webroot(params, domains)
        if result.webroot:
            result.challenge = "http-01"
        else:
            result.warnings.append(f"no webroot imported: {problem}; {webroot_hint}")
    elif authenticator == "dns-rfc2136":
        result.challenge = "dns-01"
        where = _text(params.get("dns_rfc2136_credentials")) or "the credentials file"
        dns, problem = _rfc2136(*credentials, where)
        if dns:
            result.global_settings.append((f"the rfc2136 key of {where}", dns))
        else:
            result.warnings.append(f"no DNS key imported: {problem}")
        if dns_target:
            result.warnings.append(
                f"certcli answers DNS-01 by CNAME delegation to {dns_target}: create the "
                f"records `certcli dns check {names}` shows"
            )
        else:
            result.warnings.append(
                "certbot wrote each name's own _acme-challenge TXT record; certcli writes one "
                "delegation target that every _acme-challenge name CNAMEs to: set it with "
                "`certcli config set dns.target NAME` (a name this key may update), then "
                f"create the records `certcli dns check {names}` shows"
            )
    elif authenticator in ("standalone", "nginx", "apache"):
        how = {
            "standalone": "with its own web server on port 80",
            "nginx": "through nginx, whose configuration it edited",
            "apache": "through Apache, whose configuration it edited",
        }[authenticator]
        result.warnings.append(
            f"certbot answered HTTP-01 {how} ({authenticator}); certcli answers from a "
            f"directory your web server serves at /.well-known/acme-challenge/: {webroot_hint}"
        )
    elif authenticator == "manual":
        hooks = _text(params.get("manual_auth_hook"))
        what = (
            f"runs the manual hooks ({hooks}) with certbot's CERTBOT_* variables"
            if hooks
            else "needs a person at each renewal (manual)"
        )
        result.warnings.append(
            f"certbot {what}; certcli renews from a webroot ({webroot_hint}) or by DNS "
            "delegation (dns.provider = hook runs commands with CERTCLI_DNS_NAME, "
            f"CERTCLI_DNS_VALUE; then `certcli issue {names} --name {name} --dns "
            "--force-renewal`)"
        )
    else:
        result.warnings.append(
            f"certcli cannot run certbot's authenticator ({authenticator or 'none named'}): "
            f"it answers HTTP-01 from a webroot ({webroot_hint}) or DNS-01 by CNAME "
            f"delegation (rfc2136, hook: set dns.* and re-issue with `certcli issue {names} "
            f"--name {name} --dns --force-renewal`)"
        )
    return result


def map_renewal(
    name: str,
    domains: tuple[str, ...],
    conf: dict[str, Any],
    *,
    live_key_type: str,
    credentials: dict[str, Any] | None = None,
    credentials_problem: str | None = None,
    dns_target: str | None = None,
) -> Settings:
    """certcli's settings for one certbot lineage, from its parsed renewal configuration
    (and, for dns-rfc2136, its parsed credentials file); `dns_target` is certcli's
    configured delegation target, if any. Pure: no I/O."""
    params = conf.get("renewalparams")
    params = params if isinstance(params, dict) else {}
    key_type, problem = map_key_type(params, live_key_type)
    authenticator = (_text(params.get("authenticator")) or "").lower()
    answer = _answer(
        authenticator, params, name, domains, (credentials, credentials_problem), dns_target
    )
    warnings = ([problem] if problem else []) + answer.warnings
    installer = (_text(params.get("installer")) or "").lower()
    deploy_hook = _text(params.get("renew_hook")) or _text(params.get("deploy_hook"))
    if installer in ("nginx", "apache") and not deploy_hook:
        warnings.append(
            f"certbot's {installer} installer reloaded {installer} after each renewal; certcli "
            "runs a deploy hook instead: `certcli config set hooks.deploy 'systemctl reload "
            f"{'apache2' if installer == 'apache' else 'nginx'}'`"
        )
    global_settings = answer.global_settings
    for kind in ("pre", "post"):
        hook = _text(params.get(f"{kind}_hook"))
        if hook:
            global_settings.append((f"the {kind} hook", {f"hooks.{kind}": hook}))
    if str(params.get("reuse_key", "")).lower() == "true":
        warnings.append("certbot reused the key at renewal (reuse_key); certcli makes a new one")
    return Settings(
        server=_text(params.get("server")) or LETSENCRYPT,
        key_type=key_type,
        authenticator=authenticator or "none",
        challenge=answer.challenge,
        webroot=answer.webroot,
        deploy_hook=deploy_hook,
        preferred_chain=_text(params.get("preferred_chain")),
        profile=_text(params.get("required_profile")) or _text(params.get("preferred_profile")),
        account=_text(params.get("account")),
        global_settings=tuple(global_settings),
        warnings=tuple(warnings),
    )


# -- reading certbot's directory ------------------------------------------------------------


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
    configured = _text(conf.get(kind))
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
    sources |= {k: str(paths[k].resolve()) for k in ("cert", "privkey")}
    return Material(
        cert_pem=x.cert_pem(leaf),
        chain_pem=b"".join(x.cert_pem(c) for c in chain),
        key_pem=x.private_key_pem(key),
        info=info,
        sources=sources,
    )


def _read_conf(path: Path) -> dict[str, Any]:
    data = read_input(path, "renewal configuration")
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ConfError(f"{path} is not UTF-8 text") from None
    return parse_configobj(text, str(path))


def _credentials(params: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    path = _text(params.get("dns_rfc2136_credentials"))
    if not path:
        return None, None
    try:
        return _read_conf(Path(path)), None
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
    try:
        key = jwk_private_key(json.loads((path / "private_key.json").read_bytes()))
        regr = json.loads((path / "regr.json").read_bytes())
        meta_path = path / "meta.json"
        meta = json.loads(meta_path.read_bytes()) if meta_path.exists() else {}
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


# -- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineageImport:
    """One certbot lineage: what the import does (or did) with it."""

    name: str
    conf: str  # the renewal configuration's path
    action: str  # import (planned), imported, skipped, failed
    settings: Settings | None = None
    certificate: CertInfo | None = None
    reason: str | None = None  # why it is skipped
    error: CertcliError | None = None
    version: int | None = None
    warnings: tuple[str, ...] = ()
    material: Material | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        s, cert = self.settings, self.certificate
        return {
            "name": self.name,
            "action": self.action,
            "renewal_conf": self.conf,
            "domains": list(cert.sans) if cert else [],
            "not_after": rfc3339(cert.not_after) if cert else None,
            "fingerprint_sha256": cert.fingerprint_sha256 if cert else None,
            "authenticator": s.authenticator if s else None,
            "server": s.server if s else None,
            "challenge": s.challenge if s else None,
            "webroot": s.webroot if s else None,
            "key_type": s.key_type if s else None,
            "deploy_hook": s.deploy_hook if s else None,
            "version": self.version,
            "reason": self.reason,
            "error": self.error.message if self.error else None,
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class AccountImport:
    """certbot's ACME account at one CA: imported unless certcli has one there already."""

    server: str
    action: str  # import (planned), imported, kept (certcli's own), missing
    uri: str | None = None
    reason: str | None = None
    account: Account | None = field(default=None, repr=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "action": self.action,
            "uri": self.uri,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ImportPlan:
    directory: Path
    lineages: list[LineageImport]
    accounts: list[AccountImport]
    config: dict[str, Any]  # dotted config.toml keys to set (only keys not set yet)
    notes: list[str]  # about the certbot directory as a whole

    @property
    def to_import(self) -> list[LineageImport]:
        return [item for item in self.lineages if item.action == "import"]

    def to_json(self, dry_run: bool) -> dict[str, Any]:
        return {
            "source": str(self.directory),
            "dry_run": dry_run,
            "lineages": [item.to_json() for item in self.lineages],
            "accounts": [a.to_json() for a in self.accounts],
            "config": [
                {"key": k, "value": None if k in SECRET_KEYS else v, "secret": k in SECRET_KEYS}
                for k, v in self.config.items()
            ],
            "warnings": self.notes,
        }


def _lookup(table: dict[str, Any], key: str) -> Any:
    node: Any = table
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _fingerprints(store: Store) -> dict[str, str]:
    """Every certificate in the store (all versions made live): fingerprint -> where."""
    found: dict[str, str] = {}
    for name in store.names():
        live = store.live_version(name) or 0
        for version in store.versions(name):
            if version <= live:
                meta = store.version_meta(name, version)
                fingerprint = (meta.get("certificate") or {}).get("fingerprint_sha256")
                if fingerprint:
                    found[fingerprint] = f"{name!r} version {version}"
    return found


def plan_import(
    store: Store,
    config: dict[str, Any],
    directory: Path,
    names: list[str],
    *,
    now: datetime,
) -> ImportPlan:
    """Read certbot's directory and decide what to import; nothing is written."""
    if not directory.is_dir():
        raise NotFoundError(
            f"{directory} is not a directory",
            "give certbot's config directory (its --config-dir; /etc/letsencrypt by default)",
        )
    renewal = directory / "renewal"
    if not renewal.is_dir():
        raise NotFoundError(
            f"{directory} has no renewal/ directory: it is not certbot's config directory",
            "give certbot's config directory (its --config-dir; /etc/letsencrypt by default)",
        )
    for sub in ("renewal", "live", "archive"):
        # certbot makes live/ and archive/ 0700: one clear line, not one per lineage
        if (directory / sub).exists() and not os.access(directory / sub, os.R_OK | os.X_OK):
            raise InvalidInputError(
                f"cannot read {directory / sub}: permission denied",
                "run the import as the user certbot runs as (usually root)",
            )
    try:
        confs = {
            p.name.removesuffix(".conf"): p
            for p in sorted(renewal.iterdir())
            if p.name.endswith(".conf") and not p.name.startswith(".")
        }
    except OSError as exc:
        raise InvalidInputError(f"cannot read {renewal}: {exc.strerror}") from None
    unknown = [n for n in names if n not in confs]
    if unknown:
        raise NotFoundError(
            f"certbot has no lineage {', '.join(map(repr, unknown))} in {renewal}",
            f"its lineages: {', '.join(confs) or 'none'}",
        )
    selected = [confs[n] for n in dict.fromkeys(names)] if names else list(confs.values())
    stored = _fingerprints(store)
    zone = setting("dns.zone", None, config, None)
    dns_target = setting("dns.target", None, config, None) or (
        f"the default target under {zone}" if zone else None
    )
    lineages = [_plan_one(store, directory, path, stored, now, dns_target) for path in selected]
    lineages, changes = _plan_config(config, lineages)
    lineages, accounts = _plan_accounts(store, directory, lineages)
    return ImportPlan(directory, lineages, accounts, changes, _notes(directory))


def _plan_one(
    store: Store,
    directory: Path,
    path: Path,
    stored: dict[str, str],
    now: datetime,
    dns_target: str | None,
) -> LineageImport:
    name = path.name.removesuffix(".conf")
    try:
        validate_lineage_name(name)
        if store.exists(name):
            return LineageImport(
                name,
                str(path),
                "skipped",
                reason=f"certcli already has a certificate named {name!r} "
                f"(`certcli delete {name}` first to import it again)",
            )
        conf = _read_conf(path)
        material = read_material(directory, name, conf)
        info = material.info
        if info.fingerprint_sha256 in stored:
            return LineageImport(
                name,
                str(path),
                "skipped",
                certificate=info,
                reason="its certificate is in certcli's store already, as "
                + stored[info.fingerprint_sha256],
            )
        stored[info.fingerprint_sha256] = f"{name!r} (this import)"
        params = conf.get("renewalparams") if isinstance(conf.get("renewalparams"), dict) else {}
        credentials, problem = _credentials(params)
        settings = map_renewal(
            name,
            info.sans,
            conf,
            live_key_type=info.key_type,
            credentials=credentials,
            credentials_problem=problem,
            dns_target=dns_target,
        )
        warnings = list(settings.warnings)
        if now >= info.not_after:
            warnings.append(
                f"its certificate expired on {info.not_after:%Y-%m-%d}: `certcli renew` will "
                f"try to renew it (`certcli delete {name}` if it is no longer needed)"
            )
        return LineageImport(
            name,
            str(path),
            "import",
            settings,
            info,
            warnings=tuple(warnings),
            material=material,
        )
    except CertcliError as exc:
        return LineageImport(name, str(path), "failed", error=exc)


def _plan_config(
    config: dict[str, Any], lineages: list[LineageImport]
) -> tuple[list[LineageImport], dict[str, Any]]:
    """Settings certcli keeps once per installation (pre/post hooks, the rfc2136 key): set
    when config.toml has none yet, never changed; a different value is a warning."""
    changes: dict[str, Any] = {}
    result = []
    for item in lineages:
        if item.action == "import" and item.settings:
            warnings = list(item.warnings)
            for what, values in item.settings.global_settings:
                present = {k: _lookup(config, k) for k in values}
                present = {k: changes.get(k) if v is None else v for k, v in present.items()}
                if all(v is None for v in present.values()):
                    changes.update(values)
                elif present != values:
                    keys = ", ".join(values)
                    warnings.append(
                        f"{what} was not imported: certcli's config.toml has {keys} set "
                        "otherwise already (one per installation)"
                    )
            item = replace(item, warnings=tuple(warnings))
        result.append(item)
    return result, changes


def _plan_accounts(
    store: Store, directory: Path, lineages: list[LineageImport]
) -> tuple[list[LineageImport], list[AccountImport]]:
    """certcli keeps one account per CA: certbot's is imported where certcli has none."""
    accounts: dict[str, AccountImport] = {}
    chosen: dict[str, str | None] = {}
    result = []
    for item in lineages:
        if item.action != "import" or item.settings is None:
            result.append(item)
            continue
        server, wanted = item.settings.server, item.settings.account
        warnings = list(item.warnings)
        if server not in accounts:
            chosen[server] = wanted
            accounts[server] = _plan_account(store, directory, server, wanted)
            if accounts[server].action == "missing":
                warnings.append(
                    f"no account at {server} imported ({accounts[server].reason}): the first "
                    f"renewal creates one; run `certcli renew {item.name} --force` at a "
                    "terminal to accept the CA's terms"
                )
        elif wanted != chosen[server] and accounts[server].action == "import":
            warnings.append(
                f"certbot's account {wanted} was not imported: certcli keeps one account per "
                f"CA, and renews it with the one imported from certbot's {chosen[server]}"
            )
        result.append(replace(item, warnings=tuple(warnings)))
    return result, list(accounts.values())


def _plan_account(store: Store, directory: Path, server: str, wanted: str | None) -> AccountImport:
    try:
        existing = load_account(store, server)
    except StoreError:
        existing = None
    if existing is not None:
        return AccountImport(server, "kept", existing.uri, "certcli has an account there")
    if not wanted:
        return AccountImport(server, "missing", reason="the renewal configuration names none")
    try:
        account = read_certbot_account(directory, server, wanted)
    except CertcliError as exc:
        return AccountImport(server, "missing", reason=exc.message)
    return AccountImport(server, "import", account.uri, account=account)


def _notes(directory: Path) -> list[str]:
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


# -- applying the plan ----------------------------------------------------------------------


def apply_import(store: Store, plan: ImportPlan, *, now: datetime) -> ImportPlan:
    """Write what the plan says: accounts, then config.toml (once), then each lineage whole
    (a lineage appears when its lineage.toml is written, last). Returns the plan with what
    was done; a lineage that could not be written is `failed` and the others go on."""
    if not plan.to_import:
        return plan
    store.ensure()
    store.check_key_protection()  # before anything is written
    accounts = [_apply_account(store, a) for a in plan.accounts]
    config = _apply_config(store, plan.config)
    lineages = [
        _apply_lineage(store, item, now) if item.action == "import" else item
        for item in plan.lineages
    ]
    return replace(plan, lineages=lineages, accounts=accounts, config=config)


def _apply_account(store: Store, item: AccountImport) -> AccountImport:
    if item.action != "import" or item.account is None:
        return item
    from certcli.accounts import account_id

    with store.lock_account(account_id(item.server)):
        existing = load_account(store, item.server)
        if existing is not None:  # made meanwhile: certcli's own stays
            return replace(item, action="kept", uri=existing.uri, account=None)
        save_account(store, item.account)
    return replace(item, action="imported")


def _apply_config(store: Store, changes: dict[str, Any]) -> dict[str, Any]:
    """Set the keys still unset in config.toml, in one atomic write, 0600 (it may hold the
    TSIG secret)."""
    if not changes:
        return changes
    import tomli_w

    from certcli.config import load_config

    config = load_config(store.root)
    done: dict[str, Any] = {}
    for key, value in changes.items():
        if _lookup(config, key) is not None:
            continue
        *parents, last = key.split(".")
        node = config
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                break
            node = child
        else:
            node[last] = value
            done[key] = value
    if done:
        path = store.root / "config.toml"
        try:
            atomic_write(path, tomli_w.dumps(config).encode(), KEY_MODE)
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror}") from None
    return done


def _apply_lineage(store: Store, item: LineageImport, now: datetime) -> LineageImport:
    assert item.material is not None and item.settings is not None
    name, material, info = item.name, item.material, item.material.info
    try:
        with store.lock(name):
            if store.exists(name):
                return replace(
                    item,
                    action="skipped",
                    reason=f"certcli has a certificate named {name!r} now",
                    material=None,
                )
            directory = store.lineage_dir(name)
            # Without lineage.toml the directory is no lineage: what an interrupted import
            # (or first upload) left, invisible to every reader.
            shutil.rmtree(directory, ignore_errors=True)
            try:
                version = store.add_version(
                    name,
                    version_files(material.cert_pem, material.chain_pem, material.key_pem),
                    {
                        "certificate": info.to_json(),
                        "source": "certbot",
                        "imported_from": item.conf,
                        "certbot_files": material.sources,
                        "created": rfc3339(now),
                    },
                )
                store.write_config(
                    LineageConfig(
                        name,
                        info.sans,
                        Mode.AUTO,
                        item.settings.key_type,
                        item.settings.lineage_extra(),
                    )
                )
            except BaseException:
                if not store.exists(name):
                    shutil.rmtree(directory, ignore_errors=True)
                raise
    except CertcliError as exc:
        return replace(item, action="failed", error=exc, material=None)
    return replace(item, action="imported", version=version, material=None)
