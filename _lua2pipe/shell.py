"""``lua2pipe check | query | axfr | cmd``: a script's hooks from a shell.

Each subcommand loads the script exactly as the coprocess loads it (:class:`lua2pipe.Script`)
and calls its hooks as pdns would: ``check`` reports what works through pdns's pipe backend
and the pdns.conf to use, ``query`` runs pdns's zone walk and ``dns_lookup``, ``axfr`` runs
``dns_list``, ``cmd`` runs CMD commands (:class:`lua2pipe.Commands`) without pdns. Output goes
to stdout, diagnostics to stderr (``error: ...``, ``warning: ...``); exit code 0 means fine, 1 a
problem with the script or its data, 2 bad usage.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import selectors
import shutil
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dns.exception
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

import lua2pipe
from lua2pipe import (
    CommandError,
    Commands,
    Log,
    Script,
    ScriptError,
    _lua_message,
    add_script_options,
    from_lua,
    log_from_args,
    one_line,
    parse_content,
)


class OfflineHost:
    """What :class:`lua2pipe.Commands` reports on outside a coprocess (``lua2pipe cmd``): the script,
    and no questions served."""

    def __init__(self, script: Script | None, log: Log | None = None, load_error: str = "") -> None:
        self.script = script
        self.load_error = load_error
        self.log = log or Log()
        self.abi = 5
        self.questions = 0
        self.failures = 0
        self.latencies: deque[float] = deque()
        self.started = time.monotonic()

    def use_script(self, script: Script | None, load_error: str = "") -> None:
        """As :meth:`lua2pipe.Coprocess.use_script` (CMD reload)."""
        self.script = script
        self.load_error = load_error


#: For each hook pdns never calls through the pipe, the CMD that reaches it.
HOOK_COMMANDS = {
    "dns_get_domaininfo": "domaininfo ZONE",
    "dns_get_all_domains": "domains",
    "dns_get_domain_metadata": "metadata ZONE KIND",
    "dns_get_all_domain_metadata": "metadata ZONE",
    "dns_get_domain_keys": "keys ZONE",
    "dns_get_before_and_after_names_absolute": "nsec ID NAME",
    "dns_set_notified": "set-notified ID SERIAL",
}


def _subcommand_parser(name: str, description: str, examples: list[str]) -> Any:
    return argparse.ArgumentParser(
        prog=f"lua2pipe {name}",
        description=description,
        epilog="examples:\n" + "\n".join(f"  {example}" for example in examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _load_for_shell(args: Any) -> Script | None:
    """The script, loaded as the coprocess loads it; None (after saying why) when it fails."""
    try:
        return Script(args.script, lua=args.lua, log=log_from_args(args), max_memory_mb=args.max_memory)
    except ScriptError as exc:
        print(f"error: {args.script} does not load: {exc}", file=sys.stderr)
        return None


class _Record:
    """One DATA line of a dispatcher answer (pipe ABI 5 layout)."""

    def __init__(self, line: str) -> None:
        fields = line.split("\t")
        self.scope, self.auth, self.name = int(fields[1]), fields[2] == "1", fields[3]
        self.type, self.ttl, self.zone_id = fields[5], int(fields[6]), int(fields[7])
        self.content = " ".join(fields[8:])  # MX and SRV come as two fields: priority, rest

    def zone_line(self) -> str:
        notes = ([] if self.auth else ["auth=0"]) + ([f"scope={self.scope}"] if self.scope else [])
        line = f"{self.name}\t{self.ttl}\tIN\t{self.type}\t{self.content}"
        return line + ("\t; " + " ".join(notes) if notes else "")


def _answer_records(answer: Any, what: str) -> list[_Record]:
    """The records of a dispatcher answer; warnings (LOG lines) go to stderr. Raises
    CommandError when the hook failed (the answer pdns would get is FAIL)."""
    if type(answer) is not bytes:
        raise CommandError(f"{what} failed: {from_lua(answer[1])}")
    records = []
    for line in answer.decode("utf-8", "backslashreplace").splitlines():
        if line.startswith("DATA\t"):
            records.append(_Record(line))
        elif line.startswith("LOG\t"):
            print(f"warning: {what}: {line[4:]}", file=sys.stderr)
    return records


def _ask(script: Script, what: str, question: Callable[..., Any], *arguments: Any) -> list[_Record]:
    """The records of one dispatcher call (``dispatch.lookup`` or ``dispatch.list``). Raises
    CommandError when the hook fails, or when its result cannot be read (metamethods that raise,
    --max-memory), where the coprocess answers LOG + FAIL."""
    try:
        answer = question(*arguments)
    except (script.LuaError, MemoryError) as exc:
        why = "not enough memory (--max-memory)" if isinstance(exc, MemoryError) else _lua_message(exc)
        raise CommandError(f"{what} result could not be read: {why}") from None
    return _answer_records(answer, what)


def check_content(rtype: str, content: str) -> tuple[bool, str | None]:
    """(valid, note) for one record's content, parsed with dnspython. Types dnspython does not
    know (pdns's ALIAS, LUA, ...) are valid with a note saying they were not checked."""
    try:
        code = dns.rdatatype.from_text(rtype)
    except dns.rdatatype.UnknownRdatatype:
        return True, f"not checked: dnspython does not know type {rtype}"
    if dns.rdata.get_rdata_class(
        dns.rdataclass.IN, code
    ) is dns.rdata.GenericRdata and not content.startswith("\\#"):
        return True, f"not checked: dnspython does not know type {rtype}"
    try:
        parse_content(code, content)
    except ValueError as exc:
        return False, str(exc)
    return True, None


def _print_zone(
    records: list[_Record], drop_reason: Callable[[_Record], str | None] = lambda _r: None
) -> int:
    """Prints records as zone-file lines; returns how many have invalid content. ``drop_reason``
    gives the reason pdns would not serve a record (printed as a comment), or None."""
    invalid = 0
    for record in records:
        dropped = drop_reason(record)
        valid, note = check_content(record.type, record.content)
        if dropped:
            print(f"; {dropped}:\n; {record.zone_line()}")
        elif not valid:
            invalid += 1
            print(f"; invalid content ({one_line(note or '')}):\n; {record.zone_line()}")
        else:
            print(record.zone_line() + (f"\t; {note}" if note else ""))
    if invalid:
        print(
            f"error: {invalid} record(s) with content pdns cannot parse (commented out above)",
            file=sys.stderr,
        )
    return invalid


#: The remote, local and real-remote fields of the lookups pdns makes for itself (no packet).
NO_PACKET = (b"0.0.0.0", b"0.0.0.0", b"0.0.0.0/0")


def _find_zone(script: Script, name: str) -> tuple[str, int, _Record] | None:
    """pdns's zone walk: SOA lookups (id -1, no packet) for name and each parent in turn; the
    first that answers an SOA is the zone, and its row's domain_id the zone id (the last SOA
    row wins). None when no name up to the root has an SOA."""
    try:
        current = dns.name.from_text(name)
    except dns.exception.DNSException as exc:
        raise CommandError(f"invalid name {name!r}: {exc}") from None
    while True:
        text = current.to_text()
        records = _ask(
            script, f"SOA lookup for {text}", script.dispatch.lookup, text.encode(), b"SOA", -1, *NO_PACKET
        )
        others = [r for r in records if r.type != "SOA"]
        if others:
            raise CommandError(
                f"dns_lookup answered a {others[0].type} row to the SOA question for "
                f"{text} (pdns: Got non-SOA record when asking for SOA)"
            )
        if records:
            return text, records[-1].zone_id, records[-1]
        if current == dns.name.root:
            return None
        current = current.parent()


def query_main(argv: list[str]) -> int:
    """``lua2pipe query SCRIPT NAME [TYPE]``: dns_lookup as pdns calls it."""
    parser = _subcommand_parser(
        "query",
        "Call dns_lookup as pdns does and print the records in zone-file format. Without "
        "--zone-id, pdns's zone walk comes first (SOA lookups for NAME and its parents) to find "
        "the zone id; without --from, --local or --ecs the lookup has no packet and ctx is {} "
        "(as for pdns's own lookups), with any of them --from defaults to 127.0.0.1. Every "
        "content is parsed with dnspython; invalid ones are commented out and the exit code is 1. "
        "Rows of another type than a typed question asks for are commented out too: pdns drops them.",
        [
            "lua2pipe query zone.lua www.example.org",
            "lua2pipe query zone.lua www.example.org A --from 198.51.100.7",
            "lua2pipe query zone.lua www.example.org A --ecs 203.0.113.0/24",
            "lua2pipe query zone.lua example.org SOA --zone-id -1",
        ],
    )
    parser.add_argument("script", help="the lua2 script")
    parser.add_argument("name", help="the question's name")
    parser.add_argument(
        "type",
        nargs="?",
        default="ANY",
        help="the question's type (default ANY, which is what pdns asks most)",
    )
    parser.add_argument(
        "--from", dest="remote", metavar="IP", help="the client's address (ctx.source_address)"
    )
    parser.add_argument("--local", metavar="IP", help="the address the question arrived on")
    parser.add_argument(
        "--ecs",
        metavar="SUBNET",
        help="EDNS client subnet (ctx.real_source_address; default: --from as /32 or /128)",
    )
    parser.add_argument(
        "--zone-id",
        type=int,
        metavar="N",
        help="the domain_id to pass (default: the id of the SOA the zone walk finds)",
    )
    add_script_options(parser)
    args = parser.parse_args(argv)
    try:
        remote = str(ipaddress.ip_address(args.remote)) if args.remote else None
        local = str(ipaddress.ip_address(args.local)) if args.local else None
        ecs = str(ipaddress.ip_network(args.ecs, strict=False)) if args.ecs else None
    except ValueError as exc:
        parser.error(str(exc))
    if remote is None and (local or ecs):
        remote = "127.0.0.1"
    qtype = args.type.upper()
    script = _load_for_shell(args)
    if script is None:
        return 1
    try:
        zone_id = args.zone_id
        if zone_id is None:
            found = _find_zone(script, args.name)
            if found is None:
                print(
                    f"error: no SOA for {args.name} or any parent: pdns is not authoritative "
                    "and answers REFUSED (give --zone-id to call dns_lookup anyway)",
                    file=sys.stderr,
                )
                return 1
            print(f"; zone {found[0]} id {found[1]} (zone walk)")
            zone_id = found[1]
        packet: tuple[bytes, bytes, bytes | None]
        if remote is None:  # no packet: what pdns sends for its own lookups
            packet = NO_PACKET
        else:  # without ECS the real remote is the client's address as /32 or /128
            packet = (remote.encode(), (local or "0.0.0.0").encode(), ecs.encode() if ecs else None)
        records = _ask(
            script, "dns_lookup", script.dispatch.lookup, args.name.encode(), qtype.encode(), zone_id, *packet
        )
    except CommandError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 1

    def dropped(record: _Record) -> str | None:
        if qtype in ("ANY", record.type):
            return None
        return f"not served: pdns keeps only {qtype} rows for a {qtype} question"

    return 1 if _print_zone(records, dropped) else 0


def axfr_main(argv: list[str]) -> int:
    """``lua2pipe axfr SCRIPT ZONE``: dns_list as pdns calls it."""
    parser = _subcommand_parser(
        "axfr",
        "Call dns_list as pdns does for an AXFR and print the zone in zone-file format. pdns "
        "first looks up the zone's SOA (its domain_id is the id passed to dns_list) and sends "
        "that SOA first; the SOA rows dns_list returns are not sent again. Every content is "
        "parsed with dnspython; invalid ones are commented out and the exit code is 1.",
        ["lua2pipe axfr zone.lua example.org", "lua2pipe axfr zone.lua example.org > example.org.zone"],
    )
    parser.add_argument("script", help="the lua2 script")
    parser.add_argument("zone", help="the zone to list")
    parser.add_argument(
        "--zone-id", type=int, metavar="N", help="the domain_id to pass (default: that of the zone's SOA row)"
    )
    add_script_options(parser)
    args = parser.parse_args(argv)
    script = _load_for_shell(args)
    if script is None:
        return 1
    try:
        zone = dns.name.from_text(args.zone).to_text()
    except Exception as exc:
        parser.error(f"invalid zone {args.zone!r}: {exc}")
    try:
        soas = _ask(
            script, f"SOA lookup for {zone}", script.dispatch.lookup, zone.encode(), b"SOA", -1, *NO_PACKET
        )
        if [r for r in soas if r.type != "SOA"]:
            raise CommandError(f"dns_lookup answered a non-SOA row to the SOA question for {zone}")
        if not soas:
            raise CommandError(
                f"dns_lookup has no SOA for {zone}: pdns is not authoritative for it and refuses the AXFR"
            )
        soa = soas[-1]
        zone_id = soa.zone_id if args.zone_id is None else args.zone_id
        if not script.hooks or "dns_list" not in script.hooks:
            raise CommandError("dns_list missing - cannot do AXFR")
        records = _ask(script, "dns_list", script.dispatch.list, zone_id, zone.encode())
    except CommandError as exc:
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 1
    print(f"; zone {zone} id {zone_id}")
    return 1 if _print_zone([soa, *(r for r in records if r.type != "SOA")]) else 0


def cmd_main(argv: list[str]) -> int:
    """``lua2pipe cmd SCRIPT COMMAND...``: the CMD surface without pdns."""
    parser = _subcommand_parser(
        "cmd",
        "Run CMD commands (what `pdnsutil backend-cmd pipe COMMAND` sends) against the script, "
        "without pdns, and print the answers. `lua2pipe cmd SCRIPT help` lists the commands. "
        'Exit code: 0 answered, 1 the hook answered false ("not found:"), 2 an error ("error:").',
        [
            "lua2pipe cmd zone.lua help",
            "lua2pipe cmd zone.lua 'domaininfo example.org'",
            "lua2pipe cmd zone.lua 'keys example.org --json'",
            "lua2pipe cmd zone.lua 'stats'   # the script's stats(\"\") if it defines one",
        ],
    )
    parser.add_argument("script", help="the lua2 script")
    parser.add_argument(
        "command",
        nargs="+",
        help="a command and its arguments, quoted as one word; "
        "several run in turn, each after a line '== COMMAND' on stderr",
    )
    add_script_options(parser)
    args = parser.parse_args(argv)
    script = _load_for_shell(args)
    if script is None:
        return 2
    commands = Commands(OfflineHost(script, script.log), {"lua": args.lua, "max_memory_mb": args.max_memory})
    worst = 0
    for text in args.command:
        if len(args.command) > 1:
            print(f"== {text}", file=sys.stderr, flush=True)
        status, answer = commands.execute(text.encode("utf-8", "surrogateescape"))
        print(answer, flush=True)
        worst = max(worst, status)
    return worst


def _launcher() -> str | None:
    """The executable pipe-command should name: the launcher beside lua2pipe.py in a checkout,
    else ``lua2pipe`` on PATH."""
    beside = Path(lua2pipe.__file__).resolve().parent / "lua2pipe"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("lua2pipe")
    return str(Path(found).resolve()) if found else None


def _measure_banner(command: list[str], timeout: float) -> tuple[float | None, str]:
    """Starts the coprocess as pdns would, sends HELO 5 and times the first answer line.
    Returns (seconds or None, the line or the reason)."""
    started = time.monotonic()
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
    except OSError as exc:
        return None, f"cannot start {command[0]}: {exc.strerror}"
    assert process.stdin is not None and process.stdout is not None  # both are PIPE
    try:
        process.stdin.write(b"HELO\t5\n")
        process.stdin.flush()
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                return None, f"no answer to HELO within {timeout:g} s"
        line = process.stdout.readline().decode("utf-8", "backslashreplace").rstrip("\n")
        return time.monotonic() - started, line
    finally:
        process.kill()  # as pdns stops the coprocesses it drops: only the banner's timing counts
        process.communicate()


def _capabilities(hooks: set[str], dnssec: bool) -> list[tuple[str, str, str, str]]:
    """The capability list of the lua2 documentation: (capability, native lua2 with this
    script, through the pipe backend, through the remote backend)."""
    all_domains = "dns_get_all_domains" in hooks
    needs_all = "no (needs dns_get_all_domains)"
    if dnssec:
        native_dnssec = "yes" if "dns_get_domain_keys" in hooks else "presigned only (no dns_get_domain_keys)"
    else:
        native_dnssec = "no (dns_dnssec is not true)"
    remote_dnssec = native_dnssec + " (remote-dnssec=yes)" if native_dnssec == "yes" else native_dnssec
    listing = "yes" if "dns_list" in hooks else "no (no dns_list)"
    zone_cache = "yes" if all_domains else "no (needs dns_get_all_domains: REFUSED)"
    rows = [
        ("Native", "yes", "yes", "yes"),
        # remote: getUpdatedMasters, derived from dns_get_all_domains (README, "Remote mode")
        (
            "Primary",
            "yes" if all_domains else needs_all,
            "no",
            "yes, with notifies" if all_domains else needs_all,
        ),
        ("Secondary", "no", "no", "no"),
        ("Producer", "no", "no", "no"),
        ("Consumer", "no", "no", "no"),
        ("Autosecondary", "no", "no", "no"),
        ("DNS Update", "no", "no", "no"),
        (
            "DNSSEC",
            native_dnssec,
            "no (pdns never asks the pipe backend for keys, metadata, NSEC names)",
            remote_dnssec,
        ),
        ("Disabled data", "no", "no", "no"),
        ("Comments", "no", "no", "no"),
        ("Search", "yes" if all_domains else needs_all, "no", "no (searchRecords: no lua2 hook)"),
        ("Views", "no", "no", "no"),
        ("API", "read-write (as documented)", "read-only", "read-only (writes answer false)"),
        ("Multiple instances", "yes", "yes", "yes"),
        ("Zone caching", zone_cache, "no (zone-cache-refresh-interval=0)", zone_cache),
        ("AXFR (dns_list)", listing, "yes (pipe-abi-version>=4)" if listing == "yes" else listing, listing),
        ("backend-cmd", "yes (lua2)", "yes (pipe, pipe-abi-version=5)", "yes (remote)"),
        ("Empty non-terminals", "yes", "no (a row without type cannot cross the pipe)", "yes"),
    ]
    return rows


def check_main(argv: list[str]) -> int:
    """``lua2pipe check SCRIPT``: can pdns use this script through lua2pipe, and how."""
    parser = _subcommand_parser(
        "check",
        "Load the script as the coprocess does and report: the hooks it defines, the capability "
        "table of the lua2 documentation as native lua2 would give it and as the pipe and remote "
        "backends give it, what will not work through the pipe, and the pdns.conf settings to "
        "use for either backend (with pipe-timeout checked against the measured start-up time). "
        "Exit code 0: usable through launch=pipe; 1: not usable (the reasons are the lines "
        "starting with 'error:').",
        ["lua2pipe check zone.lua", "lua2pipe check zone.lua --pipe-timeout 5000"],
    )
    parser.add_argument("script", help="the lua2 script")
    parser.add_argument(
        "--pipe-timeout",
        type=int,
        default=2000,
        metavar="MS",
        help="the pipe-timeout pdns will use (default 2000, pdns's default)",
    )
    add_script_options(parser)
    args = parser.parse_args(argv)
    errors: list[str] = []
    warnings: list[str] = []
    path = Path(args.script).resolve()
    print(f"script: {path}")
    if " " in str(path):
        errors.append(
            "the script's path contains a space: pdns splits pipe-command on spaces "
            "and cannot pass it (move or rename the file)"
        )
    if "," in str(path):
        # pdns 4.7.3 RemoteBackend::build splits the connection string on commas
        warnings.append(
            "the script's path contains a comma: the remote backend's connection string cannot pass it"
        )
    started = time.monotonic()
    script = _load_for_shell(args)
    load_ms = (time.monotonic() - started) * 1000
    if script is None:
        print("loads: no")
        print("usable through the pipe backend: no")
        return 1
    hooks = set(script.hooks)
    functions = from_lua(script.dispatch.script_functions()).split()
    print(f"loads: yes ({script.version}, {load_ms:.0f} ms in this process)")
    print(f"hooks: {' '.join(script.hooks)}")
    print(f"dns_dnssec: {'true' if script.dnssec else 'false'}")
    print(
        "backend-cmd functions: "
        + (
            " ".join(f for f in functions if f not in hooks and f not in ("dns_init", "dns_deinit"))
            or "(none)"
        )
    )
    launcher = _launcher()
    options = ([f"--lua {args.lua}"] if args.lua != "luajit" else []) + (
        [f"--max-memory {args.max_memory}"] if args.max_memory else []
    )
    banner_ms = None
    if launcher:
        command = [launcher, str(path), *" ".join(options).split()]
        seconds, line = _measure_banner(command, max(10.0, args.pipe_timeout / 1000 * 2))
        if seconds is None or not line.startswith("OK"):
            errors.append(f"the coprocess did not answer HELO with OK: {line!r}")
        else:
            banner_ms = seconds * 1000
            print(f"start-up: {banner_ms:.0f} ms from start to the HELO answer ({one_line(line)})")
    else:
        warnings.append("lua2pipe's launcher was not found (not on PATH): start-up time not measured")
    print()
    rows = [
        ("capability", "native lua2", "pipe + lua2pipe", "remote + lua2pipe"),
        *_capabilities(hooks, script.dnssec),
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}")
    print()
    for hook, command_text in HOOK_COMMANDS.items():
        if hook in hooks:
            warnings.append(
                f"{hook}: pdns never calls it through the pipe backend; operators "
                f"reach it with: pdnsutil backend-cmd pipe '{command_text}'"
            )
    for name in sorted(set(functions) & set(Commands(OfflineHost(script)).builtins)):
        warnings.append(
            f"the script's function {name}() shadows lua2pipe's command {name!r}: "
            f"backend-cmd '{name}' calls the script's, as native lua2 does; "
            f"'lua2pipe {name}' reaches lua2pipe's"
        )
    if script.dnssec:
        warnings.append(
            "dns_dnssec is true, but DNSSEC does not work through the pipe backend: "
            "answers are not signed and no NSEC/NSEC3 is served"
        )
    if "dns_list" not in hooks:
        warnings.append("no dns_list: AXFR of the script's zones fails")
    warnings.append(
        "zones are found by SOA lookups only (domain_id -1, empty ctx): dns_lookup "
        "must answer SOA questions with the zone's SOA row, whose domain_id becomes "
        "the zone id"
    )
    if banner_ms is not None:
        if banner_ms > args.pipe_timeout:
            errors.append(
                f"start-up takes {banner_ms:.0f} ms, more than pipe-timeout="
                f"{args.pipe_timeout}: pdns kills the coprocess before it answers"
            )
        elif banner_ms * 2 > args.pipe_timeout:
            warnings.append(
                f"start-up takes {banner_ms:.0f} ms, over half of pipe-timeout="
                f"{args.pipe_timeout}: under load it may not answer in time"
            )
    timeout = args.pipe_timeout
    if banner_ms is not None and banner_ms * 3 > timeout:
        timeout = int(-(-banner_ms * 3 // 1000) * 1000)
    for warning in warnings:
        print(f"warning: {warning}")
    for error in errors:
        print(f"error: {error}")
    print()
    print("pdns.conf:")
    print("launch=pipe")
    print(
        f"pipe-command={launcher or '/absolute/path/to/lua2pipe'} {path}"
        + "".join(" " + option for option in options)
    )
    print("pipe-abi-version=5")
    print(f"pipe-timeout={timeout}")
    print("zone-cache-refresh-interval=0")
    print()
    print(
        'remote-mode pdns.conf (DNSSEC, the zone cache, empty non-terminals, notifies; README "Remote mode"):'
    )
    print("launch=remote")
    # timeout=0: pdns reads each reply buffered instead of one byte per read() (pdns 4.7.3
    # PipeConnector::launch, recv_message), about twice the throughput (make bench); it never
    # times out then, and lua2pipe's watchdog answers every request within --max-query-ms
    # (1000 ms by default, bounding script loads too) instead.
    print(
        f"remote-connection-string=pipe:command={launcher or '/absolute/path/to/lua2pipe'} {path}"
        + "".join(" " + option for option in options)
        + ",timeout=0"
    )
    if script.dnssec:
        print("remote-dnssec=yes")
    if "dns_get_all_domains" not in hooks:
        print("zone-cache-refresh-interval=0")
    print()
    usable = not errors
    print(f"usable through the pipe backend: {'yes' if usable else 'no'}")
    return 0 if usable else 1
