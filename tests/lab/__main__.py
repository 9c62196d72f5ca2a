"""python -m tests.lab up|down|env [--dir DIR]: the lab by hand (used by `make demo`)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from tests.lab import Lab, LabError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab")
    parser.add_argument("action", choices=["up", "down", "env"])
    parser.add_argument("--dir", type=Path, default=Path(".lab"), help="lab state (default .lab)")
    args = parser.parse_args(argv)
    directory = args.dir.resolve()
    try:
        if args.action == "up":
            if (directory / "lab.json").exists():
                Lab.load(directory).stop()
            lab = Lab.create(directory)
            lab.start()
            print(
                f"lab up in {directory}: ACME {lab.directory_url}, DNS {lab.dns_server}",
                file=sys.stderr,
            )
        elif args.action == "down":
            if (directory / "lab.json").exists():
                lab = Lab.load(directory)
                lab.stop()
                (directory / "lab.json").unlink()
            print("lab down", file=sys.stderr)
        else:
            lab = Lab.load(directory)
            for key, value in lab.env().items():
                print(f"export {key}={shlex.quote(value)}")
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
