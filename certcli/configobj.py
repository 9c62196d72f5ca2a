"""The ConfigObj syntax certbot writes its renewal configurations (and credentials files) in:
parsed without the configobj package, refusing what is not plainly that syntax."""

from __future__ import annotations

import re
from typing import Any

from certcli.errors import InvalidInputError


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
