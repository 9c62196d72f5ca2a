"""python -m tests.lab up [--a2c]|down|env [--dir DIR]: the lab by hand (`make lab-up`).

`--a2c` also starts acme2certifier (tests/lab/a2c.py) on the lab's BIND and web server."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from tests.lab import Lab, LabError
from tests.lab.a2c import A2C


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab")
    parser.add_argument("action", choices=["up", "down", "env"])
    parser.add_argument("--dir", type=Path, default=Path(".lab"), help="lab state (default .lab)")
    parser.add_argument("--a2c", action="store_true", help="also start acme2certifier (up)")
    args = parser.parse_args(argv)
    directory = args.dir.resolve()
    try:
        if args.action == "up":
            if (directory / "lab.json").exists():
                _stop(Lab.load(directory))
            lab = Lab.create(directory)
            lab.start()
            print(
                f"lab up in {directory}: ACME {lab.directory_url}, DNS {lab.dns_server}",
                file=sys.stderr,
            )
            if args.a2c:
                a2c = A2C.create(lab)
                try:
                    a2c.start()
                except LabError:
                    lab.stop()
                    (directory / "lab.json").unlink(missing_ok=True)
                    raise
                a2c.save()
                print(
                    f"acme2certifier {a2c.directory_url} (trust {a2c.ca_bundle})",
                    file=sys.stderr,
                )
        elif args.action == "down":
            if (directory / "lab.json").exists():
                _stop(Lab.load(directory))
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


def _stop(lab: Lab) -> None:
    a2c = A2C.load(lab)
    if a2c is not None:
        a2c.stop()
    lab.stop()


if __name__ == "__main__":
    sys.exit(main())
