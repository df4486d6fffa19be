"""Serve a lua2 script with pdns_server on a loopback address, in the foreground (`make run`).

    python examples/serve.py [--port 5300] [--address 127.0.0.1] [--native | --remote] [SCRIPT]

pdns runs with launch=pipe and lua2pipe as its coprocess (with --remote, launch=remote and
lua2pipe through the remote backend's pipe connector, with remote-dnssec, the zone cache on and
timeout=0; with --native, pdns's own lua2 backend, for comparison), from a throwaway config directory:
the system's pdns service and /etc/powerdns are never touched, and pdns listens on the one
loopback address given. Its log goes to this terminal. Ctrl-C (or SIGTERM) stops it.

The pdns.conf is written by tests/pdns.py, the same code the end-to-end tests use.
"""

from __future__ import annotations

import argparse
import functools
import ipaddress
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from pdns import REPO, PdnsError, PdnsServer, lua2pipe_missing, pdns_available

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "script",
        nargs="?",
        default=str(REPO / "examples" / "geo.lua"),
        help="the lua2 script to serve (default: examples/geo.lua)",
    )
    parser.add_argument("--port", type=int, default=5300, help="UDP and TCP port (default: 5300)")
    parser.add_argument("--address", default="127.0.0.1", help="a 127.0.0.0/8 address (default: 127.0.0.1)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--native", action="store_true", help="run the script inside pdns (launch=lua2)")
    mode.add_argument(
        "--remote",
        action="store_true",
        help="launch=remote: DNSSEC, the zone cache and ENTs out of process (e.g. examples/signed.lua)",
    )
    parser.add_argument("--threads", type=int, default=2, help="pdns distributor-threads (default: 2)")
    parser.add_argument("--loglevel", type=int, default=6, help="pdns loglevel, 0-7 (default: 6)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SETTING=VALUE",
        help="any other pdns setting, e.g. --set lua2-query-logging=yes (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        if ipaddress.ip_address(args.address) not in LOOPBACK:
            raise ValueError
    except ValueError:
        parser.error(f"--address must be in 127.0.0.0/8, not {args.address!r}")
    if not 0 < args.port < 65536:
        parser.error("--port must be 1-65535")
    if not Path(args.script).is_file():
        parser.error(f"no such script: {args.script}")
    for setting in args.set:
        if "=" not in setting:
            parser.error(f"--set wants SETTING=VALUE, not {setting!r}")
    return args


def try_these(address: str, port: int, config_dir: Path, backend: str) -> str:
    dig = f"dig @{address} -p {port}"
    commands = (
        [
            (f"{dig} +dnssec www.nsec.example A", "signed: A and its RRSIG"),
            (f"{dig} +dnssec nope.nsec3.example A", "NXDOMAIN proven by NSEC3"),
            (f"{dig} +dnssec ent.narrow.example A", "an empty non-terminal: NODATA"),
            (f"pdnsutil --config-dir={config_dir} export-zone-ds nsec.example", "the DS for delv"),
            (f"pdnsutil --config-dir={config_dir} backend-cmd remote stats", "a backend command"),
        ]
        if backend == "remote"
        else [
            (f"{dig} www.example.org A", "the answer depends on the client address"),
            (f"{dig} -b 127.0.1.1 www.example.org A", "another client, another answer"),
            (f"{dig} +subnet=198.51.100.0/24 www.example.org A", "a resolver's client subnet (ECS)"),
            (f"{dig} example.org MX", ""),
            (f"{dig} _sip._tcp.example.org SRV", ""),
            (f"{dig} foo.apps.example.org A", "a wildcard"),
            (f"{dig} host.sub.example.org A", "a referral to sub.example.org"),
            (f"{dig} nosuch.example.org A", "NXDOMAIN"),
            (f"{dig} example.org AXFR", ""),
            (f"pdnsutil --config-dir={config_dir} backend-cmd {backend} stats", "a backend command"),
        ]
    )
    width = max(len(command) for command, _ in commands)
    lines = [f"pdns is answering on {address}:{port}. Try:"]
    lines += [f"  {command:<{width}}  # {note}" if note else f"  {command}" for command, note in commands]
    lines.append("Ctrl-C stops it.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    backend = "lua2" if args.native else "remote" if args.remote else "pipe"
    if not pdns_available(backend):
        print(
            f"pdns_server with the {backend} backend is not installed (make setup installs it as root)",
            file=sys.stderr,
        )
        return 1
    if not args.native and (reason := lua2pipe_missing()):
        print(f"{reason}; try --native", file=sys.stderr)
        return 1

    extra = dict(setting.split("=", 1) for setting in args.set)
    kind = PdnsServer.native if args.native else PdnsServer.pipe
    if args.remote:  # the zone cache at pdns's default interval (getAllDomains answers it)
        extra = {"zone-cache-refresh-interval": None, **extra}
        # timeout=0, as README "Remote mode" recommends: pdns then reads replies buffered, not one
        # byte per read() (pdns 4.7.3 pipeconnector.cc PipeConnector::launch, recv_message), and
        # lua2pipe's watchdog (--max-query-ms) bounds every request instead of pdns's timeout.
        kind = functools.partial(PdnsServer.remote, timeout_ms=0)
    server = kind(
        args.script,
        extra=extra,
        address=args.address,
        port=args.port,
        distributor_threads=args.threads,
        loglevel=args.loglevel,
        log=sys.stderr,
    )

    # A plain list, not a threading.Event: Event.set() in a signal handler can deadlock with
    # the main thread's own Event.wait() (both take the Event's lock).
    signals: list[int] = []

    def on_signal(signum: int, frame: object) -> None:
        signals.append(signum)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        server.start()
    except PdnsError as error:
        print(f"serve.py: {error}", file=sys.stderr)
        server.cleanup()
        return 1
    print(try_these(args.address, server.port, server.config_dir, backend), flush=True)

    while not signals and server.running:
        time.sleep(0.2)
    died = not signals
    code = server.stop()
    server.cleanup()
    if died:
        print(f"serve.py: pdns_server exited on its own (status {code})", file=sys.stderr)
        return 1
    print("serve.py: stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
