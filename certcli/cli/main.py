"""The entry point and the single error boundary: every failure becomes one line on stderr
and a documented exit code (a traceback only with -v)."""

from __future__ import annotations

import os
import sys

from certcli import package_version
from certcli.cli.argv import command_to_build, hoist_global_options


def _fail(message: str, hint: str | None, code: int) -> int:
    from certcli.cli.output import error_line

    print(error_line(message, hint), file=sys.stderr)
    return code


def _log_to_stderr() -> None:
    """-v: the certcli loggers at DEBUG (the conversation with the CA) on stderr."""
    import logging

    class Stderr(logging.Handler):  # sys.stderr as it is at each record: a test may swap it
        def emit(self, record: logging.LogRecord) -> None:
            print(self.format(record), file=sys.stderr)

    logger = logging.getLogger("certcli")
    if not any(h.name == "-v" for h in logger.handlers):
        handler = Stderr()
        handler.name = "-v"
        handler.setFormatter(logging.Formatter("%(name)s: %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def run(argv: list[str]) -> int:
    instruction = os.environ.get("_CERTCLI_COMPLETE")  # completion.COMPLETE_VAR, not imported
    if instruction:  # the shell asks for completions at a Tab (completions/)
        from certcli.cli.completion import answer

        return answer(instruction)
    if argv == ["--version"]:  # the fast path: no Typer, no Rich
        print(f"certcli {package_version()}")
        return 0
    verbose = any(a in ("-v", "--verbose") for a in argv)
    if verbose:
        _log_to_stderr()
    from certcli.errors import CertcliError, ExitCode

    try:
        import typer

        from certcli.cli.app import build

        args = hoist_global_options(argv)
        command = typer.main.get_command(build(command_to_build(args)))
        result = command.main(args=args, prog_name="certcli", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except CertcliError as exc:
        if verbose:
            import traceback

            traceback.print_exc()
        return _fail(exc.message, exc.hint, exc.exit_code)
    except KeyboardInterrupt:
        return _fail("interrupted", None, ExitCode.INTERRUPTED)
    except Exception as exc:
        if type(exc).__name__ == "Abort":  # Ctrl-C or EOF at a prompt
            return _fail("aborted", None, ExitCode.INTERRUPTED)
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `certcli`: the help, no error
            print(exc.format_message(), file=sys.stderr)
            return ExitCode.USAGE
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):  # click's errors
            hint = None
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                hint = f"see `{ctx.command_path} --help`"
            return _fail(exc.format_message(), hint, exc.exit_code)
        if verbose:
            import traceback

            traceback.print_exc()
        return _fail(
            f"internal error: {type(exc).__name__}: {exc}",
            "run again with -v for the traceback and report it",
            ExitCode.INTERNAL,
        )


def main() -> None:
    sys.exit(run(sys.argv[1:]))
