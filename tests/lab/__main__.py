"""python -m tests.lab up [--a2c] [--postgres]|down|env [--dir DIR]: the lab by hand
(`make lab-up`).

`--a2c` also starts acme2certifier (tests/lab/a2c.py) on the lab's BIND and web server;
`--postgres` a PostgreSQL server (tests/lab/postgres.py), whose URL `env` then prints as
CERTCLI_STORE_URL (and its password as PGPASSWORD)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from tests.lab import Lab, LabError
from tests.lab.a2c import A2C
from tests.lab.postgres import Postgres


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.lab")
    parser.add_argument("action", choices=["up", "down", "env"])
    parser.add_argument("--dir", type=Path, default=Path(".lab"), help="lab state (default .lab)")
    parser.add_argument("--a2c", action="store_true", help="also start acme2certifier (up)")
    parser.add_argument("--postgres", action="store_true", help="also start PostgreSQL (up)")
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
            if args.postgres:
                _start_postgres(lab)
        elif args.action == "down":
            if (directory / "lab.json").exists():
                _stop(Lab.load(directory))
                (directory / "lab.json").unlink()
            print("lab down", file=sys.stderr)
        else:
            lab = Lab.load(directory)
            env = lab.env()
            server = Postgres.load(lab.directory / "postgres")
            if server is not None:
                env |= {"CERTCLI_STORE_URL": server.url, **server.env()}
            for key, value in env.items():
                print(f"export {key}={shlex.quote(value)}")
    except LabError as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 1
    return 0


def _start_postgres(lab: Lab) -> None:
    server = Postgres.create(lab.directory / "postgres")
    try:
        server.start()
    except LabError:
        server.remove()
        _stop(lab)
        (lab.directory / "lab.json").unlink(missing_ok=True)
        raise
    server.save()
    print(f"PostgreSQL {server.url} (password: `env` prints it)", file=sys.stderr)


def _stop(lab: Lab) -> None:
    server = Postgres.load(lab.directory / "postgres")
    if server is not None:
        server.remove()
        server.forget()
    a2c = A2C.load(lab)
    if a2c is not None:
        a2c.stop()
    lab.stop()


if __name__ == "__main__":
    sys.exit(main())
