"""Hooks (pre, post, deploy) and notifications (a command, a webhook): how certcli tells the
rest of the machine, and someone, what happened in an unattended run."""

from __future__ import annotations

import json
import os
import re
import subprocess
from typing import Any

from certcli import package_version
from certcli.config import SECRET_KEYS, env_name

#: certcli's own secrets, never handed to a hook or a notification command: every secret
#: setting's variable (a webhook URL's token too), and the secrets that are not settings.
SECRET_ENV = (
    *(env_name(key) for key in SECRET_KEYS),
    "CERTCLI_PASSPHRASE",
    "CERTCLI_PKCS12_PASSWORD",
    "CERTCLI_EAB_HMAC_KEY",
)


def redact_url(url: str) -> str:
    """A URL as a message may show it: scheme and host only (`https://hooks.example.com/…`),
    since a webhook's path or query is often its token."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        host = port = None
    if not host or not parts.scheme:
        return "(a URL that is not valid)"
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{port}" if port else ""
    rest = "…" if url.rstrip("/") != f"{parts.scheme}://{parts.netloc}" else ""
    return f"{parts.scheme}://{netloc}/{rest}"


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"`<>]+")


def redact_urls(text: str) -> str:
    """Every URL in `text` (a command line, what it printed) cut as `redact_url` cuts one:
    `curl -d @- https://hooks.example.com/TOKEN` is a webhook too."""
    return _URL.sub(lambda match: redact_url(match.group()), text)


def hook_environment(extra: dict[str, str]) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if k not in SECRET_ENV}, **extra}


def run_command(
    what: str, argv: list[str], env: dict[str, str], timeout: float, stdin: bytes | None = None
) -> str | None:
    """Run a user's command without certcli's secrets; return what went wrong, or None.
    `what` names it in that message ("the deploy hook `…`"), URLs cut after the host."""
    problem = _run(what, argv, env, timeout, stdin)
    return redact_urls(problem) if problem else None


def _run(
    what: str, argv: list[str], env: dict[str, str], timeout: float, stdin: bytes | None
) -> str | None:
    feed: dict[str, Any] = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    try:
        proc = subprocess.run(
            argv, env=hook_environment(env), capture_output=True, timeout=timeout, **feed
        )
    except subprocess.TimeoutExpired:
        return f"{what} did not finish in {timeout:.0f} s"
    except OSError as exc:
        return f"cannot run {what}: {exc.strerror}"
    if proc.returncode != 0:
        last = (proc.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
        return f"{what} failed (exit {proc.returncode})" + (f": {last}" if last else "")
    return None


def run_hook(kind: str, command: str, env: dict[str, str], timeout: float = 300) -> str | None:
    """Run a hook through the shell (as certbot does); return what went wrong, or None."""
    return run_command(f"the {kind} hook `{command}`", ["/bin/sh", "-c", command], env, timeout)


def notify(settings: dict[str, Any], event: dict[str, Any], timeout: float = 30) -> list[str]:
    """Send one event to `[notify] command` (JSON on stdin, CERTCLI_EVENT set) and to
    `[notify] webhook` (a JSON POST whose `text` suits Slack-compatible receivers)."""
    problems = []
    payload = json.dumps(event).encode()
    command = settings.get("command")
    if command:
        problem = run_command(
            f"the notify command `{command}`",
            ["/bin/sh", "-c", str(command)],
            {"CERTCLI_EVENT": event["event"]},
            timeout,
            stdin=payload,
        )
        problems += [problem] if problem else []
    webhook = settings.get("webhook")
    if webhook:
        problem = _post(str(webhook), payload, timeout)
        problems += [problem] if problem else []
    return problems


def _post(url: str, payload: bytes, timeout: float) -> str | None:
    """POST to a webhook; what went wrong, never showing the URL beyond its host."""
    import http.client
    import urllib.error
    import urllib.request

    shown = redact_url(url)
    if url.partition("://")[0].lower() not in ("http", "https"):  # urllib opens file: too
        return f"the notify webhook {shown} failed: not an http:// or https:// URL"
    try:
        request = urllib.request.Request(
            url,
            data=payload,
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"certcli/{package_version()}",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        # an answer that is not HTTP, or a URL http.client refuses, is no crash either
        reason = str(getattr(exc, "reason", None) or exc) or type(exc).__name__
        return f"the notify webhook {shown} failed: {_hidden(reason, url)}"
    return None


def _hidden(text: str, url: str) -> str:
    """`text` (an error's words) without any part of `url` past its host: the URL whole, its
    path, query, fragment or credentials, as written or as quoted by repr()."""
    from urllib.parse import urlsplit

    pieces = {url, url.partition("://")[2]}
    try:
        parts = urlsplit(url)
        pieces |= {parts.path, parts.query, parts.fragment, parts.username, parts.password}
    except ValueError:
        pass
    for piece in sorted((p for p in pieces if p and p.strip("/")), key=len, reverse=True):
        text = text.replace(piece, "…").replace(repr(piece)[1:-1], "…")
    return text
