"""The command line before click parses it: what `run` and the completion both read, so that
a Tab sees the words as the real parser does."""

from __future__ import annotations

# Options that may appear anywhere on the line, as users type `certcli status --json`.
_GLOBAL_FLAGS = {"--json", "-q", "--quiet", "-v", "--verbose", "--no-color"}
_GLOBAL_WITH_VALUE = {"--config-dir", "--passphrase-file"}


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move global options to the front so that click sees them before the subcommand."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        if arg in _GLOBAL_FLAGS or (arg.split("=", 1)[0] in _GLOBAL_WITH_VALUE and "=" in arg):
            front.append(arg)
        elif arg in _GLOBAL_WITH_VALUE and i + 1 < len(argv):
            front.extend(argv[i : i + 2])
            i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def _takes_value(args: list[str], word: str) -> bool:
    """Whether `word` is the value of a global option rather than the command."""
    i = args.index(word)
    return i > 0 and args[i - 1] in _GLOBAL_WITH_VALUE


def command_to_build(args: list[str]) -> str | None:
    """The command a (hoisted) command line names, the only one to build; None: all."""
    from certcli.cli.app import COMMANDS

    named = next((a for a in args if not a.startswith("-")), None)
    return named if named in COMMANDS and not _takes_value(args, named) else None
