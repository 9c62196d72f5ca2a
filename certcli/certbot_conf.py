"""certbot's renewal configuration: its ConfigObj syntax, and what each setting becomes
in certcli. Pure functions of the parsed text; certcli.importer reads the files and writes
the store."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from certcli.config import LETSENCRYPT, SECRET_KEYS  # noqa: F401 -- importer and cmd_import use it
from certcli.errors import InvalidInputError
from certcli.models import KEY_TYPES
from certcli.providers.rfc2136 import TSIG_ALGORITHMS

# -- certbot's renewal configuration: the ConfigObj syntax it writes --------------------------


class ConfError(InvalidInputError):
    """A renewal configuration (or credentials file) that cannot be parsed."""


_SECTION = re.compile(r"(\[+)\s*(.*?)\s*(\]+)\s*(?:#.*)?")


def parse_configobj(text: str, source: str, *, reveal: bool = True) -> dict[str, Any]:
    """The sections and values of a ConfigObj file, as certbot writes them.

    Values are strings, or lists of strings where the line has a comma outside quotes
    (`webroot_path = /var/www,` is a list of one); `[section]` and `[[subsection]]` nest.
    Quotes ('…', "…", and triple quotes spanning lines) are removed; `#` outside quotes
    starts a comment. A line that is none of these is an error naming the line (quoting
    it, unless `reveal` is false: a credentials file's lines may hold its secret).
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

        def quoted(text: str) -> str:
            return repr(text[:60]) if reveal else "(not shown)"

        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            match = _SECTION.fullmatch(line)
            if not match or len(match.group(1)) != len(match.group(3)) or not match.group(2):
                raise fail(f"not a section header: {quoted(line)}")
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
            raise fail(f"expected `key = value`, found {quoted(line)}")
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
                raise fail(f"the value of {key!r}: {exc if reveal else 'malformed'}") from None
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


def text_of(value: Any) -> str | None:
    """A setting as one string (a list, as an unquoted comma would make it, joined back)."""
    if isinstance(value, list):
        return ", ".join(value) or None
    if isinstance(value, str):
        return value.strip() or None
    return None


def map_key_type(params: dict[str, Any], live_key_type: str) -> tuple[str, str | None]:
    """certcli's key type for renewals, and a warning when certbot's does not exist in
    certcli. Without `key_type` certbot renews with the type of the current key."""
    kind = (text_of(params.get("key_type")) or "").lower()
    if kind == "ecdsa":
        curve = (text_of(params.get("elliptic_curve")) or "secp256r1").lower()
        if curve in _CURVES:
            return _CURVES[curve], None
        return "ec-p384", f"certbot made {curve} keys; renewals make ec-p384 keys"
    if kind == "rsa":
        size_text = text_of(params.get("rsa_key_size")) or "2048"
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
        roots = [r for d in domains if (r := text_of(mapping.get(d)))]
        roots = roots or [r for r in map(text_of, mapping.values()) if r]
    else:
        paths = params.get("webroot_path")
        roots = [t for p in (paths if isinstance(paths, list) else [paths]) if (t := text_of(p))]
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
    server = text_of(credentials.get("dns_rfc2136_server"))
    name = text_of(credentials.get("dns_rfc2136_name"))
    secret = text_of(credentials.get("dns_rfc2136_secret"))
    if not (server and name and secret):
        missing = [k for k, v in (("server", server), ("name", name), ("secret", secret)) if not v]
        return {}, f"{where} has no dns_rfc2136_{', dns_rfc2136_'.join(missing)}"
    algorithm = (text_of(credentials.get("dns_rfc2136_algorithm")) or "HMAC-MD5").lower()
    if algorithm not in TSIG_ALGORITHMS:
        return {}, (
            f"the TSIG key in {where} uses {algorithm.upper()}, which certcli does not sign "
            "with: make an hmac-sha256 key (tsig-keygen) and set dns.rfc2136.*"
        )
    port = text_of(credentials.get("dns_rfc2136_port")) or "53"
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
        where = text_of(params.get("dns_rfc2136_credentials")) or "the credentials file"
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
        hooks = text_of(params.get("manual_auth_hook"))
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
    authenticator = (text_of(params.get("authenticator")) or "").lower()
    answer = _answer(
        authenticator, params, name, domains, (credentials, credentials_problem), dns_target
    )
    warnings = ([problem] if problem else []) + answer.warnings
    installer = (text_of(params.get("installer")) or "").lower()
    deploy_hook = text_of(params.get("renew_hook")) or text_of(params.get("deploy_hook"))
    if installer in ("nginx", "apache") and not deploy_hook:
        warnings.append(
            f"certbot's {installer} installer reloaded {installer} after each renewal; certcli "
            "runs a deploy hook instead: `certcli config set hooks.deploy 'systemctl reload "
            f"{'apache2' if installer == 'apache' else 'nginx'}'`"
        )
    global_settings = answer.global_settings
    for kind in ("pre", "post"):
        hook = text_of(params.get(f"{kind}_hook"))
        if hook:
            global_settings.append((f"the {kind} hook", {f"hooks.{kind}": hook}))
    if str(params.get("reuse_key", "")).lower() == "true":
        warnings.append("certbot reused the key at renewal (reuse_key); certcli makes a new one")
    return Settings(
        server=text_of(params.get("server")) or LETSENCRYPT,
        key_type=key_type,
        authenticator=authenticator or "none",
        challenge=answer.challenge,
        webroot=answer.webroot,
        deploy_hook=deploy_hook,
        preferred_chain=text_of(params.get("preferred_chain")),
        profile=text_of(params.get("required_profile")) or text_of(params.get("preferred_profile")),
        account=text_of(params.get("account")),
        global_settings=tuple(global_settings),
        warnings=tuple(warnings),
    )
