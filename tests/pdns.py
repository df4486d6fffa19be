"""Start a real PowerDNS Authoritative Server (pdns_server) for tests, examples and benchmarks.

In the style of PowerDNS's own ``regression-tests.auth-py``: every server gets a fresh throwaway
config directory holding a generated ``pdns.conf``, listens on a loopback address and a free
port, runs in the foreground as a child of this process (never the Debian system service), and
logs to a file that tests can read.

Typical use::

    from pdns import PdnsServer

    with PdnsServer.native("examples/geo.lua") as server:      # launch=lua2
        answer = server.query("www.example.org", "A", source="127.0.1.1")

    with PdnsServer.pipe("examples/geo.lua", abi=5) as server:  # launch=pipe + lua2pipe
        rrsets = server.axfr("example.org")
        assert "Backend launched with banner" in server.log_text()

    with PdnsServer({"launch": "pipe", "pipe-command": "/abs/other-coprocess"}) as server:
        ...                                                     # anything else

The settings every server gets (:data:`BASE_SETTINGS`) turn off everything that would make a
result depend on timing or reach outside the machine: all caches, the zone cache (required by the
pipe backend, and native lua2 without ``dns_get_all_domains`` REFUSES everything with it on),
the web server and API, security polling (a DNS query to the outside world) and syslog.

Privileges: pdns never changes user unless ``setuid``/``setgid`` are set, so by default it runs
as whoever runs the tests (root in CI). ``PdnsServer(..., user="pdns")`` drops to that user when
run as root (the script, the config directory and lua2pipe must then be readable by it); as a
non-root user ``user`` must be None, because pdns's setgid/initgroups would fail.

:func:`build_config` is the one place that renders a pdns.conf; ``examples/serve.py`` uses this
module too.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rdataclass
import dns.rdatatype
import dns.rrset

REPO = Path(__file__).resolve().parent.parent
#: The launcher pdns runs as ``pipe-command`` (a shell script that finds the venv's python).
LUA2PIPE = REPO / "lua2pipe"

PDNS_SERVER = shutil.which("pdns_server", path="/usr/sbin:/usr/local/sbin:" + os.environ.get("PATH", ""))
PDNSUTIL = shutil.which("pdnsutil", path="/usr/bin:/usr/local/bin:" + os.environ.get("PATH", ""))

#: Where Debian (and most builds) keep the backend modules; used only to answer pdns_available().
MODULE_DIRS = (
    "/usr/lib/x86_64-linux-gnu/pdns",
    "/usr/lib/aarch64-linux-gnu/pdns",
    "/usr/lib/pdns",
    "/usr/local/lib/pdns",
    "/usr/lib64/pdns",
)

#: Settings every server gets; kinds (pipe/native) and callers add to and override them.
#: A value of None leaves the setting out of pdns.conf; True/False become yes/no.
BASE_SETTINGS: dict[str, Any] = {
    "launch": "",
    # Caches off: every question reaches the backend, so answers never depend on timing.
    "query-cache-ttl": 0,
    "negquery-cache-ttl": 0,
    "cache-ttl": 0,
    "zone-cache-refresh-interval": 0,
    # With several backends, do not skip the others once one answered (pdns's default is yes).
    "consistent-backends": "yes",
    # Nothing outside the machine: no web server or API, no security-status query over DNS.
    "webserver": "no",
    "api": "no",
    "security-poll-suffix": "",
    # AXFR to local clients only (these are pdns's defaults, spelled out).
    "disable-axfr": "no",
    "allow-axfr-ips": "127.0.0.0/8",
    # So that a client-subnet (ECS) option reaches the backend as ctx.real_source_address.
    "edns-subnet-processing": "yes",
    "log-timestamp": "yes",
}

DEFAULT_LOGLEVEL = 6  # pdns's default is 4 (warnings); 6 adds Info, useful in test logs
STARTUP_TIMEOUT = 10.0  # seconds for pdns to answer its first question
STOP_TIMEOUT = 5.0  # seconds between SIGTERM and SIGKILL


class PdnsError(RuntimeError):
    """pdns_server did not start, or died; the message ends with the tail of its log."""


# --------------------------------------------------------------------------------------------------
# Configuration


def conf_value(value: Any) -> str:
    if value is True:
        return "yes"
    if value is False:
        return "no"
    return str(value)


def build_config(*layers: Mapping[str, Any]) -> str:
    """Render pdns.conf text from settings dicts; later layers override earlier ones.

    Keys are pdns setting names without ``--`` (``"pipe-command"``). None drops a setting.
    """
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer)
    lines = ["# written by tests/pdns.py; one setting per line, exactly as pdns reads it"]
    for key, value in merged.items():
        if value is None:
            continue
        text = conf_value(value)
        if "\n" in text or "\n" in key:
            raise ValueError(f"pdns setting {key!r} cannot contain a newline")
        lines.append(f"{key}={text}")
    return "\n".join(lines) + "\n"


def pipe_settings(
    script: str | os.PathLike[str],
    abi: int = 5,
    timeout_ms: int = 2000,
    command: str | os.PathLike[str] = LUA2PIPE,
    args: Sequence[str] = (),
) -> dict[str, Any]:
    """``launch=pipe`` running ``<command> <abs script> [args...]`` (lua2pipe by default).

    pdns splits pipe-command on single spaces and execs it without a shell or PATH, so both paths
    must be absolute and nothing may contain a space.
    """
    command = Path(command).resolve()
    script = Path(script).resolve()
    words = [str(command), str(script), *args]
    for word in words:
        if not word or any(c.isspace() for c in word):
            raise ValueError(f"pipe-command words cannot be empty or contain white space: {word!r}")
    return {
        "launch": "pipe",
        "pipe-command": " ".join(words),
        "pipe-abi-version": abi,
        "pipe-timeout": timeout_ms,
    }


def remote_settings(
    script: str | os.PathLike[str],
    timeout_ms: int = 2000,
    args: Sequence[str] = (),
    dnssec: bool = True,
) -> dict[str, Any]:
    """``launch=remote`` with the pipe connector running ``lua2pipe <abs script> [args...]``.

    pdns splits the connection string on commas, then ``command`` on single spaces (no shell,
    no PATH): no word may contain a comma or white space. ``dnssec`` is remote-dnssec, without
    which pdns never asks for keys or NSEC names and ignores rows' ``auth``.
    """
    words = [str(LUA2PIPE), str(Path(script).resolve()), *args]
    for word in words:
        if not word or "," in word or any(c.isspace() for c in word):
            raise ValueError(f"remote command words cannot be empty or hold a comma or white space: {word!r}")
    return {
        "launch": "remote",
        "remote-connection-string": f"pipe:command={' '.join(words)},timeout={timeout_ms}",
        "remote-dnssec": dnssec,
    }


def native_settings(script: str | os.PathLike[str]) -> dict[str, Any]:
    """``launch=lua2`` running the script inside pdns (the reference lua2pipe must match)."""
    return {"launch": "lua2", "lua2-filename": str(Path(script).resolve()), "lua2-api": 2}


# --------------------------------------------------------------------------------------------------
# Availability and tools


def lua2pipe_missing() -> str | None:
    """Why lua2pipe cannot run yet (a reason string), or None when its files are all there."""
    needed = [LUA2PIPE, REPO / "lua2pipe.py", REPO / "lua" / "environment.lua", REPO / "lua" / "dispatch.lua"]
    missing = [str(p.relative_to(REPO)) for p in needed if not p.exists()]
    return f"lua2pipe is not complete yet (missing {', '.join(missing)})" if missing else None


def _module_present(backend: str) -> bool:
    return any(Path(d, f"lib{backend}backend.so").exists() for d in MODULE_DIRS)


def pdns_available(*backends: str) -> bool:
    """True when pdns_server exists (and, if named, the backend modules, e.g. "pipe", "lua2")."""
    if not PDNS_SERVER or not os.access(PDNS_SERVER, os.X_OK):
        return False
    return all(_module_present(b) for b in backends)


def pdnsutil(
    config_dir: str | os.PathLike[str], *args: str, timeout: float = 30.0, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run ``pdnsutil --config-dir=DIR ARGS...`` and capture its output (text).

    Example: ``pdnsutil(server.config_dir, "backend-cmd", "pipe", "stats")``. pdnsutil starts its
    own instances of every launched backend (new coprocesses, new Lua states): backend-cmd never
    reaches the running server's. It writes ``== CMD`` to stderr and the raw result to stdout.
    """
    if not PDNSUTIL:
        raise PdnsError("pdnsutil is not installed")
    return subprocess.run(
        [PDNSUTIL, f"--config-dir={config_dir}", *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def free_port(address: str = "127.0.0.1") -> int:
    """A port that is free for both UDP and TCP on address right now (pdns binds both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((address, 0))
            port = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((address, port))
                except OSError:
                    continue
                return port
    raise PdnsError(f"no free port on {address}")


def _process_group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in process group pgid, from /proc (Linux)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path("/proc", entry, "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry))
    return members


# --------------------------------------------------------------------------------------------------
# The server


class PdnsServer:
    """One pdns_server in the foreground, with its own config dir, port and log file.

    ``settings`` are pdns settings layered over :data:`BASE_SETTINGS` (a ``launch`` is needed).
    The keyword arguments cover what most callers vary; anything else goes in ``settings``.
    Use as a context manager (start on enter; stop and delete the config dir on exit), or call
    :meth:`start`, :meth:`stop` and :meth:`cleanup` yourself.

    ``log``: None captures stdout and stderr (pdns's log and the coprocesses' stderr) in
    ``<config dir>/pdns.log`` (see :meth:`log_text`); pass a file object (e.g. ``sys.stderr``)
    to send it there instead.
    """

    def __init__(
        self,
        settings: Mapping[str, Any],
        *,
        address: str = "127.0.0.1",
        port: int | None = None,
        distributor_threads: int = 1,
        loglevel: int = DEFAULT_LOGLEVEL,
        user: str | None = None,
        log: Any = None,
        config_dir: str | os.PathLike[str] | None = None,
        startup_timeout: float = STARTUP_TIMEOUT,
    ) -> None:
        if not address.startswith("127."):
            raise ValueError(f"PdnsServer listens on loopback (127.0.0.0/8) only, not {address}")
        self.settings = dict(settings)
        self.address = address
        self.fixed_port = port
        self.port = port or 0
        self.distributor_threads = distributor_threads
        self.loglevel = loglevel
        if user is not None and os.geteuid() != 0:
            if pwd.getpwnam(user).pw_uid != os.geteuid():
                raise ValueError(f"only root can run pdns as {user!r}; leave user=None")
            user = None  # already that user; pdns's initgroups would fail without root
        self.user = user
        self.startup_timeout = startup_timeout
        self._log_sink = log
        self._own_dir = config_dir is None
        self.config_dir = Path(config_dir) if config_dir else Path(tempfile.mkdtemp(prefix="pdns-test-"))
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.config_path = self.config_dir / "pdns.conf"
        # pdns refuses to start when the control socket's path is too long for a UNIX socket
        # (108 bytes), which a caller's directory (pytest's tmp_path) easily is.
        self._own_socket_dir = len(str(self.config_dir / "pdns.controlsocket")) >= 100
        self.socket_dir = Path(tempfile.mkdtemp(prefix="pdns-")) if self._own_socket_dir else self.config_dir
        self.log_path = self.config_dir / "pdns.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._final_log: str | None = None

    # -- kinds ----------------------------------------------------------------------------------

    @classmethod
    def pipe(
        cls,
        script: str | os.PathLike[str],
        abi: int = 5,
        extra: Mapping[str, Any] | None = None,
        *,
        timeout_ms: int = 2000,
        command: str | os.PathLike[str] = LUA2PIPE,
        args: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> PdnsServer:
        """launch=pipe with lua2pipe (or ``command``) serving script.

        ``args`` are appended to pipe-command. For lua2pipe they default to
        ``--loglevel <loglevel>``, so the script's pdnslog() calls are filtered at the same level
        as pdns's own log (and as native lua2 filters them); the coprocess cannot see pdns.conf.
        """
        if args is None:
            args = (
                ["--loglevel", str(kwargs.get("loglevel", DEFAULT_LOGLEVEL))] if command == LUA2PIPE else []
            )
        return cls({**pipe_settings(script, abi, timeout_ms, command, args), **(extra or {})}, **kwargs)

    @classmethod
    def remote(
        cls,
        script: str | os.PathLike[str],
        extra: Mapping[str, Any] | None = None,
        *,
        timeout_ms: int = 2000,
        args: Sequence[str] | None = None,
        dnssec: bool = True,
        **kwargs: Any,
    ) -> PdnsServer:
        """launch=remote (pipe connector) with lua2pipe serving script; ``args`` as for pipe."""
        if args is None:
            args = ["--loglevel", str(kwargs.get("loglevel", DEFAULT_LOGLEVEL))]
        return cls({**remote_settings(script, timeout_ms, args, dnssec), **(extra or {})}, **kwargs)

    @classmethod
    def native(
        cls, script: str | os.PathLike[str], extra: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> PdnsServer:
        """launch=lua2: the script runs inside pdns."""
        return cls({**native_settings(script), **(extra or {})}, **kwargs)

    # -- configuration --------------------------------------------------------------------------

    def config_settings(self) -> dict[str, Any]:
        """Every setting written to pdns.conf (base, then ours, then the caller's)."""
        ours: dict[str, Any] = {
            "local-address": self.address,
            "local-port": self.port,
            "distributor-threads": self.distributor_threads,
            "loglevel": self.loglevel,
        }
        if self.user is not None:
            # setgid takes a group, and a user's name is not always a group's ("nobody" is in
            # "nogroup" on Debian; pdns 4.7.3 aborts with SIGABRT on an unknown group): use the
            # user's primary group id.
            ours["setuid"] = self.user
            ours["setgid"] = pwd.getpwnam(self.user).pw_gid
        merged = {**BASE_SETTINGS, **ours, **self.settings}
        if not merged.get("launch"):
            raise ValueError("pdns settings need a launch= (use PdnsServer.pipe/native or pass one)")
        return merged

    def write_config(self) -> Path:
        self.config_path.write_text(build_config(self.config_settings()))
        return self.config_path

    def command(self) -> list[str]:
        if not PDNS_SERVER:
            raise PdnsError("pdns_server is not installed (Debian: apt-get install pdns-server)")
        return [
            PDNS_SERVER,
            f"--config-dir={self.config_dir}",
            "--daemon=no",
            "--guardian=no",
            "--disable-syslog",
            "--write-pid=no",
            f"--socket-dir={self.socket_dir}",
        ]

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> PdnsServer:
        """Write pdns.conf, start pdns_server and wait until it answers a query."""
        if self.process is not None:
            raise PdnsError("already started")
        if self.user is not None and os.geteuid() == 0:
            # pdns reads pdns.conf and creates its control socket here as root, then drops
            # privileges; its coprocesses start later, as the user, with this as their cwd.
            self.config_dir.chmod(0o755)
            self.socket_dir.chmod(0o755)
        attempts = 1 if self.fixed_port else 3
        for attempt in range(attempts):
            if not self.fixed_port:
                self.port = free_port(self.address)
            self.write_config()
            self._spawn()
            try:
                self._wait_ready()
                return self
            except PdnsError:
                bind_race = "Unable to bind" in self.log_text() or "in use" in self.log_text()
                self.stop()
                if not (bind_race and attempt + 1 < attempts):
                    raise
                self.process = None
        raise AssertionError("unreachable")

    def _spawn(self) -> None:
        if self._log_sink is None:
            self._log_file = open(self.log_path, "wb")  # noqa: SIM115 (closed in stop())
            out: Any = self._log_file
        else:
            out = self._log_sink
        # A new session: pdns and its coprocesses form one process group we can clean up, and a
        # Ctrl-C in the terminal reaches only us (the caller decides how to stop pdns).
        self.process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=self.config_dir,
            start_new_session=True,
        )

    def _wait_ready(self) -> None:
        """Poll a CHAOS query (answered by pdns itself, after its backends are built) until answered."""
        assert self.process is not None
        deadline = time.monotonic() + self.startup_timeout
        probe = dns.message.make_query("version.bind", "TXT", "CH")
        while True:
            code = self.process.poll()
            if code is not None:
                raise PdnsError(f"pdns_server exited with code {code} during startup\n{self.log_tail()}")
            try:
                dns.query.udp(probe, self.address, port=self.port, timeout=0.1)
                return
            except (dns.exception.DNSException, OSError):
                # not up yet; a stray reply on a reused port is a BadResponse, not an answer
                pass
            if time.monotonic() > deadline:
                raise PdnsError(
                    f"pdns_server did not answer on {self.address}:{self.port} within "
                    f"{self.startup_timeout:g}s\n{self.log_tail()}"
                )
            time.sleep(0.02)

    def stop(self) -> int | None:
        """SIGTERM pdns (SIGKILL after STOP_TIMEOUT), kill leftover coprocesses, reap.

        Returns pdns's exit status (4.7.3 dies of the SIGTERM itself: -15).
        """
        process = self.process
        if process is None:
            return None
        pid = process.pid
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not self._wait_exit(pid, STOP_TIMEOUT):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                self._wait_exit(pid, STOP_TIMEOUT)
            # pdns is now a zombie we have not reaped, so its pid (= the process group id) cannot be
            # reused: signalling the group reaches only pdns's own leftovers (coprocesses).
            deadline = time.monotonic() + 1.0
            while _process_group_members(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
            if _process_group_members(pid):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                deadline = time.monotonic() + 1.0
                while _process_group_members(pid) and time.monotonic() < deadline:
                    time.sleep(0.01)
        code = process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        return code

    @staticmethod
    def _wait_exit(pid: int, timeout: float) -> bool:
        """Wait for pid to exit without reaping it (it stays a zombie until Popen.wait)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return True
            if info is not None:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def cleanup(self) -> None:
        """Stop, keep the log text in memory (log_text still works) and delete the config dir."""
        self.stop()
        if self._own_socket_dir:
            shutil.rmtree(self.socket_dir, ignore_errors=True)
        if self._own_dir and self.config_dir.exists():
            self._final_log = self.log_text()
            shutil.rmtree(self.config_dir, ignore_errors=True)

    def __enter__(self) -> PdnsServer:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"<PdnsServer {self.settings.get('launch')} {self.address}:{self.port} {self.config_dir}>"

    # -- logs -----------------------------------------------------------------------------------

    def log_text(self) -> str:
        """Everything pdns (and its coprocesses, on stderr) logged so far."""
        if self._final_log is not None:
            return self._final_log
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_text()
        if not text and self._log_sink is not None:
            return "(log went to the caller's stream)"
        tail = text.splitlines()[-lines:]
        return "---- pdns log tail ----\n" + "\n".join(tail)

    def wait_for_log(self, needle: str, timeout: float = 5.0) -> bool:
        """Poll the log until it contains needle (pdns logs asynchronously to the answers)."""
        deadline = time.monotonic() + timeout
        while needle not in self.log_text():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    # -- clients --------------------------------------------------------------------------------

    def query(
        self,
        name: str,
        rdtype: str | int = "A",
        tcp: bool = False,
        source: str | None = None,
        ecs: str | None = None,
        *,
        rdclass: str = "IN",
        timeout: float = 3.0,
        flags: Iterable[str] = ("RD",),
    ) -> dns.message.Message:
        """Ask the server one question; returns the response.

        source: client address (any 127.x.y.z works on Linux loopback without configuration).
        ecs: an EDNS Client Subnet like "198.51.100.0/24" (needs edns-subnet-processing=yes,
        which BASE_SETTINGS sets); it reaches the script as ctx.real_source_address.
        """
        options = [dns.edns.ECSOption.from_text(ecs)] if ecs else []
        message = dns.message.make_query(
            name, rdtype, rdclass, use_edns=0 if ecs else None, options=options or None
        )
        message.flags = 0
        for flag in flags:
            message.flags |= dns.flags.from_text(flag)
        if tcp:
            return dns.query.tcp(message, self.address, port=self.port, timeout=timeout, source=source)
        return dns.query.udp(message, self.address, port=self.port, timeout=timeout, source=source)

    def axfr(self, zone: str, *, timeout: float = 5.0, source: str | None = None) -> list[dns.rrset.RRset]:
        """AXFR zone over TCP; returns the RRsets in the order received (SOA first and last)."""
        rrsets: list[dns.rrset.RRset] = []
        for message in dns.query.xfr(
            self.address,
            zone,
            port=self.port,
            timeout=timeout,
            lifetime=timeout,
            relativize=False,
            source=source,
        ):
            rrsets.extend(message.answer)
        return rrsets

    def pdnsutil(self, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """pdnsutil with this server's config dir (see the module-level :func:`pdnsutil`)."""
        return pdnsutil(self.config_dir, *args, **kwargs)


# ---------------------------------------------------------------------------------------------
# What a test needs, for the conftest.py files of tests/ and conformance/ (one rule for both).

MARKERS = (
    "pdns(*backends): needs a real pdns_server (and these backend modules); "
    "skipped when missing, failed when CI=true",
    "lua2pipe: needs the complete lua2pipe coprocess; skipped when missing, failed when CI=true",
)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_or_fail_if_missing(item: Any) -> None:
    """Skips a test whose ``pdns``/``lua2pipe`` needs are not met, or fails it under CI=true:
    CI installs everything, so a missing piece there is a broken build, not a reason to skip."""
    import pytest

    reason = None
    for marker in item.iter_markers("pdns"):
        if not pdns_available(*marker.args):
            wanted = " with the " + ", ".join(marker.args) + " backend(s)" if marker.args else ""
            reason = f"pdns_server{wanted} is not installed (make setup installs it as root)"
    if reason is None and item.get_closest_marker("lua2pipe") is not None:
        reason = lua2pipe_missing()
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)
