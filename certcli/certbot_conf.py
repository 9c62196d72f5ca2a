"""What each setting of certbot's renewal configuration becomes in certcli. Pure functions of
the parsed text (certcli.configobj parses it); certcli.certbot_files reads the files and
certcli.importer writes the store."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from certcli.config import LETSENCRYPT
from certcli.keytypes import BY_CURVE, KEY_TYPES
from certcli.providers.rfc2136 import TSIG_ALGORITHMS

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
        if curve in BY_CURVE:
            return BY_CURVE[curve], None
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
