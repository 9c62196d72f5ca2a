"""acme2certifier for the test lab, run with the Python of its own virtualenv (.lab/a2c).

    .lab/a2c/bin/python tests/lab/a2c_server.py --dir DIR --port PORT --dns-port PORT
        --http-port PORT [--validity-days N]

DIR holds what tests/lab/a2c.py made: tls/listener.pem + tls/listener.key (the HTTPS
listener), ca/issuing.pem + ca/issuing.key (the OpenSSL handler's issuing CA). This script
writes DIR/acme_srv.cfg, points ACME_SRV_CONFIGFILE at it, and serves acme2certifier's WSGI
application with werkzeug on 127.0.0.1:PORT, logging one line per request to stderr.

acme2certifier asks DNS on port 53 of `dns_server_list` and fetches HTTP-01 from port 80,
with no setting for either: both are moved here, in this process only, to the lab's BIND
and web server, so the lab needs no privileged port and two labs never contend.

Only the standard library, werkzeug and acme2certifier: certcli's venv is not on the path.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import ssl
import sys
from pathlib import Path


def write_config(directory: Path, port: int, validity_days: int) -> Path:
    certs = directory / "certs"
    certs.mkdir(parents=True, exist_ok=True)
    ca = directory / "ca"
    config = f"""[DEFAULT]
debug: False
# URLs in one spelling whatever the Host header: accounturi is compared as a string
server_name: 127.0.0.1:{port}
dns_server_list: ["127.0.0.1"]

[Nonce]
nonce_check_disable: False

[Account]
# certcli registers without an email unless given one; a2c would refuse that
contact_check_disable: True

[CAhandler]
handler_module: acme2certifier.cahandlers.openssl_ca_handler
issuing_ca_key: {ca / "issuing.key"}
issuing_ca_cert: {ca / "issuing.pem"}
# must be set; the file need not exist
issuing_ca_crl: {ca / "crl.pem"}
cert_save_path: {certs}
cert_validity_days: {validity_days}

[DBhandler]
handler: wsgi
dbfile: {directory / "acme_srv.db"}

[Directory]
caaidentities: ["a2c.test"]

[Challenge]
dns_persist_01_support: True
dns_persist_allow_policy_wildcard: True

[Order]
tnauthlist_support: False
"""
    path = directory / "acme_srv.cfg"
    path.write_text(config)
    return path


def move_ports(dns_port: int, http_port: int) -> None:
    """Send a2c's DNS queries to `dns_port` and its HTTP-01 fetches (port 80 of a loopback
    address) to `http_port`."""
    import dns.resolver
    import urllib3.util.connection

    reset = dns.resolver.Resolver.reset

    def reset_to_lab_port(self: dns.resolver.Resolver) -> None:
        reset(self)
        self.port = dns_port  # before nameservers are set: they take this port

    dns.resolver.Resolver.reset = reset_to_lab_port  # type: ignore[method-assign]
    dns.resolver.reset_default_resolver()

    create_connection = urllib3.util.connection.create_connection

    def to_lab_web_server(address: tuple[str, int], *args: object, **kwargs: object) -> object:
        host, port = address
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback and port == 80:
            address = (host, http_port)
        return create_connection(address, *args, **kwargs)  # type: ignore[arg-type]

    # urllib3's HTTPConnection looks the function up in this module at each connection
    urllib3.util.connection.create_connection = to_lab_web_server  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="a2c_server.py")
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dns-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--validity-days", type=int, default=30)
    args = parser.parse_args(argv)
    directory = args.dir.resolve()

    os.environ["ACME_SRV_CONFIGFILE"] = str(write_config(directory, args.port, args.validity_days))
    move_ports(args.dns_port, args.http_port)

    import werkzeug.serving
    from acme2certifier.share.acme2certifier_wsgi import application
    from werkzeug.serving import run_simple

    werkzeug.serving._log_add_style = False  # plain request lines in the log file

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls = directory / "tls"
    context.load_cert_chain(tls / "listener.pem", tls / "listener.key")
    print(f"acme2certifier on https://127.0.0.1:{args.port}/directory", file=sys.stderr)
    run_simple("127.0.0.1", args.port, application, ssl_context=context, threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
