"""lua2pipe: run PowerDNS lua2 backend scripts out of process, through the pdns pipe backend.

pdns starts ``lua2pipe SCRIPT [options]`` as its pipe-backend coprocess (``launch=pipe``) and
talks the pipe protocol (ABI 1 to 5) over stdin and stdout. lua2pipe loads the lua2 script once
into one Lua state with the environment native ``launch=lua2`` gives it, answers ``Q`` with
``dns_lookup``, ``AXFR`` with ``dns_list`` and ``CMD`` (``pdnsutil backend-cmd``) with the other
hooks. The same script, unchanged, gives the same DNS answers as under ``launch=lua2``.

This module is what pdns runs. Sections, in order: settings and errors; logging; the Lua
state (environment, script, hook dispatcher); answers; the coprocess loop; the serving loop in
Lua (LuaJIT); operating it (reload triggers, metrics); the remote backend's protocol; CMD; the
command line. The Lua half lives in ``lua/environment.lua`` (the AuthLua4 environment),
``lua/content.lua`` (its record content reader), ``lua/dispatch.lua`` (the hook dispatcher: one
crossing into Lua per question), ``lua/serve.lua`` (LuaJIT's serving loop: none) and
``lua/remote.lua`` (remote mode's lookup and list replies), installed as ``_lua2pipe/lua``. The
operator's tools (the check, query, axfr, cmd, replay and metrics subcommands, --record, key
tags, the metrics file) are the private package ``_lua2pipe``, imported only when used.
"""

from __future__ import annotations

import errno
import os
import sys
import threading
import time
from collections import deque

# Startup is on pdns's clock (pipe-timeout covers HELO): modules the coprocess does not need
# before its first answer (pathlib, typing, signal, dnspython, structlog) are imported where used.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping, Sequence
    from contextlib import AbstractContextManager
    from typing import Any

    from _lua2pipe.record import Recorder

__all__ = ["Coprocess", "Lua2PipeError", "ProtocolError", "Script", "ScriptError", "main"]

VERSION = "0.1.0"

# ---------------------------------------------------------------------------------------------
# Settings and errors

#: ``--lua`` choices and the lupa module each one loads. pdns's Debian build links LuaJIT 2.1.
LUA_RUNTIMES = {
    "luajit": "lupa.luajit21",
    "5.1": "lupa.lua51",
    "5.2": "lupa.lua52",
    "5.3": "lupa.lua53",
    "5.4": "lupa.lua54",
}

#: The longest protocol line read; pdns's longest question is a CMD line.
MAX_LINE = 65536

#: Bytes asked of each read(): pdns sends one short line at a time, and a small buffer is
#: allocated faster than a large one (0.3 us a question).
READ_SIZE = 4096

#: Loading a script for longer than this is logged (pdns's default pipe-timeout is 2 s).
SLOW_LOAD_SECONDS = 1.0

#: pdns's default pipe-timeout: how long it waits for each answer line (pipebackend.cc).
PDNS_PIPE_TIMEOUT_MS = 2000

#: The pipe ABI versions lua2pipe speaks (pipe-abi-version).
ABI_VERSIONS = range(1, 6)

#: pdns's syslog levels, as ``pdns.loglevels`` names them.
LOG_LEVELS = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")


#: The Lua half (environment.lua, content.lua, dispatch.lua, remote.lua): package data of
#: _lua2pipe, which is always installed beside this module. In a checkout _lua2pipe/lua is a link
#: to the top-level lua/.
LUA_DIR = os.path.join(os.path.dirname(os.path.realpath(__file__)), "_lua2pipe", "lua")

#: How a Python process runs lua2pipe with ``-c`` (the ``lua2pipe`` launcher says the same):
#: imported by its own name, so the _lua2pipe package's ``import lua2pipe`` finds this module.
RUN_BY_NAME = "import sys, lua2pipe; sys.exit(lua2pipe.main())"


class Lua2PipeError(Exception):
    """Base class of lua2pipe's errors."""


class ScriptError(Lua2PipeError):
    """The lua2 script could not be loaded: a syntax error, an error at top level or in
    ``dns_init``, or a hook missing or of the wrong kind. The message names file and line."""


class ProtocolError(Lua2PipeError):
    """A line from pdns that is not a well-formed question for the negotiated ABI."""


# ---------------------------------------------------------------------------------------------
# Logging: structlog to stderr (pdns's log), one event per line. structlog is imported at the
# first event, not at startup: pdns's pipe-timeout runs from the moment it starts lua2pipe.


def _escape_controls(text: str) -> str:
    """Makes control characters visible, so a query cannot forge a log line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _call(work: Callable[[], Any]) -> Any:
    return work()


class Log:
    """The process's logger: ``key=value`` lines by default, JSON lines with ``json=True``.

    ``level`` is pdns's ``loglevel``: events above it are not written, as in pdns.
    """

    def __init__(self, level: int = 4, json: bool = False) -> None:
        self.level = level
        self.json = json
        self._logger: Any = None
        #: Runs lua2pipe's own lazy imports (structlog at the first event, cryptography at CMD
        #: keys) off the --max-query-ms clock of the question in hand: a serving
        #: :meth:`Coprocess.off_the_clock`, set by the coprocess; elsewhere there is no clock.
        self.off_the_clock: Callable[[Callable[[], Any]], Any] = _call

    def _configure(self) -> Any:
        import structlog

        def clean(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
            for key, value in event.items():
                if isinstance(value, bytes):
                    value = value.decode("utf-8", "backslashreplace")
                if isinstance(value, str):
                    event[key] = _escape_controls(value)
            return event

        renderer = (
            structlog.processors.JSONRenderer()
            if self.json
            else structlog.processors.LogfmtRenderer(key_order=["level", "event"], drop_missing=True)
        )
        return structlog.wrap_logger(
            structlog.PrintLogger(sys.stderr),
            processors=[clean, structlog.processors.TimeStamper(fmt="iso"), renderer],
            context_class=dict,
        )

    def __call__(self, level: int, event: str, *, force: bool = False, **fields: Any) -> None:
        """Writes one event at pdns syslog ``level`` (0 emergency ... 7 debug); ``force``
        writes it whatever the level (query logging)."""
        if level > self.level and not force:
            return
        if self._logger is None:
            self._logger = self.off_the_clock(self._configure)
        name = LOG_LEVELS[min(max(level, 0), 7)]
        self._logger.msg(event, level=name, program="lua2pipe", **fields)


# ---------------------------------------------------------------------------------------------
# The Lua state: one runtime, the AuthLua4 environment, the script, and the hook dispatcher.


def _deny_attribute(_obj: Any, _name: Any, _is_setting: bool) -> Any:
    # Lua holds the Python callbacks of the host table; without this filter a script could walk
    # a callback's attributes (__globals__ ...) back into Python.
    raise AttributeError("Python attributes are not reachable from Lua")


class Script:
    """One lua2 script loaded into its own Lua state, ready to answer.

    Loading runs the script, then native lua2's post-load step: the hooks are captured,
    ``dns_init`` runs, and a missing ``dns_lookup`` (or ``dns_dnssec`` without the hooks it
    needs) is a :class:`ScriptError`.
    """

    def __init__(
        self, path: str, *, lua: str = "luajit", log: Log | None = None, max_memory_mb: int | None = None
    ) -> None:
        import importlib

        self.path = path
        self.runtime_name = lua
        self.log = log or Log()
        lupa = importlib.import_module(LUA_RUNTIMES[lua])
        self.lua = lupa.LuaRuntime(
            encoding=None,
            unpack_returned_tuples=True,
            register_eval=False,
            register_builtins=False,
            attribute_filter=_deny_attribute,
            max_memory=max_memory_mb * 1024 * 1024 if max_memory_mb else None,
        )
        self.LuaError = lupa.LuaError
        self.max_memory_mb = max_memory_mb
        self.version = self.lua.eval("jit and jit.version or _VERSION").decode()
        lua_globals = self.lua.globals()
        lua_globals.python = None
        self.lua.execute("package.loaded.python = nil")  # require("python") would give it back
        self._load_chunk = self.lua.eval(
            "function(source, name)"
            " local chunk, err = (loadstring or load)(source, name)"
            " if not chunk then error(err, 0) end"
            " return chunk end"
        )
        self._run_chunk = self.lua.eval(
            "function(chunk) local ok, err = pcall(chunk) if not ok then error(tostring(err), 0) end end"
        )
        environment = self._chunk("environment.lua")(self._chunk("content.lua"))
        host = self.lua.table_from(
            {
                b"log": self._lua_log,
                b"resolve": self._lua_resolve,
                b"parse_content": self._lua_parse_content,
                b"random_seed": int.from_bytes(os.urandom(4), "little"),
            }
        )
        environment.install(host, lua_globals)
        before_script = self.lua.eval(
            "function(G) local copy = {} for k, v in pairs(G) do copy[k] = v end return copy end"
        )(lua_globals)
        # Before the script runs, so the dispatcher holds the standard library as it was: a script
        # may assign over table, string or load without breaking lua2pipe.
        self.dispatch = self._chunk("dispatch.lua")(environment, lua_globals, before_script)
        # LuaJIT's serving loop (lua/serve.lua, LuaLoopCoprocess), loaded before the script so
        # its FFI declarations come first; the PUC runtimes have no FFI and keep Python's loop.
        self.lua_loop: Callable[..., Any] | None = (
            self._chunk("serve.lua")(self.dispatch) if lua == "luajit" else None
        )
        environment.guard_finalizers(lua_globals, self._lua_finalizer_failed)
        try:
            with open(path, "rb") as script_file:
                # what was read, for the reload watcher (dev, inode, mtime, size) and the metrics
                status = os.fstat(script_file.fileno())
                source = script_file.read()
        except OSError as exc:
            raise ScriptError(f"cannot read script {path}: {exc.strerror}") from None
        self.file_id = (status.st_dev, status.st_ino, status.st_mtime_ns, status.st_size)
        self.mtime = status.st_mtime
        chunk_name = b"@" + os.fsencode(path)
        try:
            self._run_chunk(self._load_chunk(source, chunk_name))
        except self.LuaError as exc:
            raise ScriptError(_lua_message(exc)) from None
        if max_memory_mb:  # keep room for what lupa allocates outside protected calls (dispatch.lua)
            self.dispatch.set_memory_limit(max_memory_mb * 1024 - max(1024, max_memory_mb * 64))
        try:
            hooks, dnssec = self.dispatch.capture(chunk_name)
        except self.LuaError as exc:
            raise ScriptError(_lua_message(exc)) from None
        self.hooks: list[str] = hooks.decode().split()
        self.dnssec: bool = bool(dnssec)
        if self.dnssec and "dns_get_domain_keys" not in self.hooks:
            self.log(4, "dns_get_domain_keys missing - cannot do live signing", script=path)

    def _chunk(self, name: str) -> Any:
        with open(os.path.join(LUA_DIR, name), "rb") as chunk_file:
            return self._load_chunk(chunk_file.read(), b"=" + name.encode())

    def set_abi(self, abi: int) -> None:
        """Tells the dispatcher which answer layout pdns asked for in HELO."""
        self.dispatch.set_abi(abi)

    def deinit(self) -> None:
        """Runs ``dns_deinit``; a failure is logged."""
        why = self.dispatch.deinit()
        if why:
            self.log(3, "dns_deinit failed", error=why.decode("utf-8", "backslashreplace"))

    # Callbacks the environment calls (host table of environment.lua).

    def _lua_log(self, level: Any, message: bytes) -> None:
        text = message.decode("utf-8", "backslashreplace")
        if level is None:  # print(): shown whatever the loglevel, as native's stdout is
            self.log(6, text, force=True, source="print")
        else:
            self.log(int(level), text, source="pdnslog")

    def _lua_finalizer_failed(self, message: bytes) -> None:
        self.log(3, "error in __gc metamethod", script=self.path, error=message)

    def _lua_resolve(self, qname: bytes, qtype: int) -> Any:
        import dns.rdatatype
        import dns.resolver

        try:
            rdtype = dns.rdatatype.RdataType.make(int(qtype))
            answer = dns.resolver.resolve(qname.decode(), rdtype, raise_on_no_answer=False)
        except Exception as exc:  # the script sees an empty result, the log sees why
            self.log(4, "resolve failed", qname=qname, qtype=int(qtype), error=str(exc))
            return self.lua.table_from([])
        rows = [
            self.lua.table_from(
                {
                    b"name": rrset.name.to_text().encode(),
                    b"type": rrset.rdtype,
                    b"ttl": rrset.ttl,
                    b"content": rdata.to_text().encode(),
                }
            )
            for rrset in answer.response.answer
            for rdata in rrset
        ]
        return self.lua.table_from(rows)

    def _lua_parse_content(self, code: int, content: bytes) -> bytes:
        try:
            return parse_content(int(code), content.decode("utf-8", "surrogateescape")).encode()
        except ValueError as exc:
            raise ValueError(f"Parsing record content (try 'pdnsutil check-zone'): {exc}") from None


def parse_content(code: int, content: str) -> str:
    """A record content in normalised zone form, parsed with dnspython as pdns parses it (every
    name absolute, with or without its final dot); raises ValueError saying what is wrong."""
    import dns.exception
    import dns.name
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

    try:
        rdtype = dns.rdatatype.RdataType.make(code)
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN, rdtype, content, origin=dns.name.root, relativize=False
        )
        return rdata.to_text()
    except (dns.exception.DNSException, ValueError, UnicodeError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None


def load_script(path: str, log: Log, **options: Any) -> tuple[Script | None, str]:
    """``(Script(path, log=log, **options), "")``, or ``(None, why)`` after logging why when
    it does not load: a coprocess keeps answering, each question naming the reason."""
    try:
        return Script(path, log=log, **options), ""
    except ScriptError as exc:
        log(3, "script failed to load", script=path, error=str(exc))
        return None, str(exc)


def _lua_message(exc: Exception) -> str:
    """The Lua error's message, without the traceback lupa appends (it walks lua2pipe's own
    Lua files, not the script's; the message itself names the script's file and line), cut to
    MAX_REASON_BYTES: a script that fails to load with error(string.rep(...)) reaches the log and
    every answer through here, not through dispatch.lua's error handler."""
    message = exc.args[0] if exc.args else str(exc)
    if not isinstance(message, bytes):
        message = str(message).encode("utf-8", "surrogateescape")
    message = cut_reason(message.split(b"\nstack traceback:", 1)[0], MAX_REASON_BYTES)
    return message.decode("utf-8", "backslashreplace")


#: The longest error message kept, as dispatch.lua's MAX_REASON_BYTES.
MAX_REASON_BYTES = 4096

#: The longest reason a LOG line carries: one cut at MAX_REASON_BYTES fits with the prefix it
#: gets ("script not loaded: ", a hook and row), so only a reason from elsewhere is cut again.
MAX_LOG_REASON_BYTES = 2 * MAX_REASON_BYTES


def cut_reason(reason: bytes, limit: int) -> bytes:
    """``reason``, or its first ``limit`` bytes and its length: a slice, before anything walks
    a message of megabytes (a 25 MB one took seconds to escape byte by byte)."""
    if len(reason) <= limit:
        return reason
    return b"%s... (%d bytes in all)" % (reason[:limit], len(reason))


# ---------------------------------------------------------------------------------------------
# Answers. Every answer ends in END, or in FAIL after a LOG line that says why; FAIL is never
# followed by END except after a zone-walk SOA question (type SOA, id -1), where pdns's getSOA
# drains one more line (pdns/dnsbackend.cc DNSBackend::getSOA: after an exception from get(), it
# calls get() again to empty the backend).


def log_line(reason: str | bytes) -> bytes:
    """A ``LOG`` answer line: one line, control bytes escaped, never empty (pdns desyncs on a
    bare LOG), the reason cut at MAX_LOG_REASON_BYTES."""
    if isinstance(reason, str):
        reason = reason.encode("utf-8", "backslashreplace")
    reason = cut_reason(reason, MAX_LOG_REASON_BYTES)
    if not reason.isascii() or any(b < 32 or b == 127 for b in reason):
        reason = "".join(chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in reason).encode()
    return b"LOG\t" + (reason or b"error") + b"\n"


def helo_abi(fields: list[bytes]) -> int:
    """The pipe ABI a ``HELO`` line's fields ask for; 0 for anything else (a version of more
    than three digits included: int() refuses thousands of them)."""
    version = fields[1] if len(fields) == 2 and fields[0] == b"HELO" else b""
    return int(version) if version.isdigit() and len(version) <= 3 else 0


def is_zone_walk(fields: list[bytes]) -> bool:
    """Whether a question line's fields are a zone-walk SOA question (``Q name IN SOA -1 ...``),
    the one question whose FAIL pdns follows by reading one more line. dispatch.lua applies the
    same rule to the questions it parses; a line it cannot parse fails without END."""
    return len(fields) > 4 and fields[0] == b"Q" and fields[3] == b"SOA" and fields[4] == b"-1"


def fail_answer(reason: str | bytes, zone_walk: bool = False) -> bytes:
    """``LOG`` + ``FAIL`` (+ ``END`` for a zone-walk SOA question)."""
    return log_line(reason) + (b"FAIL\nEND\n" if zone_walk else b"FAIL\n")


# ---------------------------------------------------------------------------------------------
# The coprocess loop. pdns asks one question at a time and waits for its answer, bounded by
# pipe-timeout; a watchdog thread answers for a hook that runs past --max-query-ms and then
# replaces the process image (same pid, same pipes) to get a fresh Lua state. On LuaJIT the loop
# itself runs in Lua (next section); this one serves the rest.


class LineReader:
    """Protocol lines from a file descriptor.

    Unlike a buffered file, it keeps what was read but not yet answered visible (``pending``),
    so a restart after a runaway hook hands those bytes to the new process image.
    """

    def __init__(self, fd: int, pending: bytes = b"") -> None:
        self.fd = fd
        self.buffer = pending
        self.position = 0

    @property
    def pending(self) -> bytes:
        return self.buffer[self.position :]

    def readline(self) -> bytes | None:
        """The next line without its newline (the last one may lack it); None at EOF.

        Raises ProtocolError for a line over MAX_LINE bytes, after skipping the rest of it.
        """
        buffer, start = self.buffer, self.position
        end = buffer.find(b"\n", start)
        while end < 0:
            searched = len(buffer)
            if searched - start > MAX_LINE:
                self._skip_line()
                raise _line_too_long()
            chunk = os.read(self.fd, READ_SIZE)
            if not chunk:  # EOF: what is left is the last line, without its newline
                self.buffer, self.position = b"", 0
                return buffer[start:] or None
            buffer = buffer[start:] + chunk
            end = buffer.find(b"\n", searched - start)
            start = 0
            self.buffer, self.position = buffer, 0
        self.position = end + 1
        if end - start > MAX_LINE:
            raise _line_too_long()
        return buffer[start:end]

    def _skip_line(self) -> None:
        while True:
            chunk = os.read(self.fd, READ_SIZE)
            end = chunk.find(b"\n")
            if not chunk or end >= 0:
                self.buffer, self.position = chunk[end + 1 :] if chunk else b"", 0
                return


def _line_too_long() -> ProtocolError:
    return ProtocolError(f"line longer than {MAX_LINE} bytes")


def private_protocol_streams() -> tuple[int, int]:
    """Takes the protocol's stdin and stdout for lua2pipe alone.

    Returns private duplicates of fds 0 and 1, then points fd 0 at /dev/null and fd 1 at stderr,
    so nothing a script does (print, io.write, io.read, a C module) can reach the protocol.
    """
    protocol_in = os.dup(0)
    protocol_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return protocol_in, protocol_out


class Coprocess:
    """Serves the pipe protocol for one :class:`Script` on two descriptors.

    ``script`` is None when the script did not load, and ``load_error`` says why: then HELO
    answers FAIL and every question answers LOG + FAIL naming the error, so pdns's log says why
    instead of timing out. ``script_path`` and ``script_options`` (keyword arguments of
    :class:`Script`) are how CMD ``reload`` loads it again, even after a failed start.
    ``resume_abi`` continues a session after a restart (no HELO).
    """

    def __init__(
        self,
        script: Script | None,
        input_fd: int,
        output_fd: int,
        *,
        load_error: str = "",
        log: Log | None = None,
        query_logging: bool = False,
        max_query_ms: int = 0,
        restart_argv: list[str] | None = None,
        resume_abi: int = 0,
        pending: bytes = b"",
        script_path: str | None = None,
        script_options: dict[str, Any] | None = None,
        watch: bool = False,
        metrics_dir: str | None = None,
        resumed: bool = False,
    ) -> None:
        # AXFR answers are streamed to output_fd only while serve() runs: answer() called on its
        # own (tests, benchmarks) returns whole answers and writes nothing.
        self.serving = False
        self.use_script(script, load_error)
        self.reader = LineReader(input_fd, pending)
        self.output_fd = output_fd
        self.log = log or Log()
        self.query_logging = query_logging
        self.abi = resume_abi
        self.questions = 0  # Q and AXFR lines (remote: lookup and list requests)
        self.failures = 0
        self.lists = 0  # of those questions, AXFR (remote: list)
        self.tally: dict[str, int] = {}  # rare events, by name (Operations: the metrics)
        self.latencies: deque[float] = deque(maxlen=10000)
        self.started = time.monotonic()
        self.commands = Commands(self, script_options, script_path)
        # Set by another thread when there is work between two questions (Operations).
        self.chores = False
        self.operations = Operations(self, watch=watch, metrics_dir=metrics_dir, resumed=resumed)
        # Shared with the watchdog: the question in hand and when it started (0.0: none), and
        # the lock that makes "answer it" happen once, by the loop or by the watchdog.
        self.in_hand = b""
        self.busy_since = 0.0
        self.answer_lock: AbstractContextManager[object] = threading.Lock()
        self.serving_thread = 0  # the ident of the thread that runs serve(): the clock is its own
        self.log.off_the_clock = self.off_the_clock
        # Set once stdin reached EOF and dns_deinit runs: past the limit the watchdog then exits,
        # as there is no question to answer and nobody to answer it to.
        self.closing = False
        self.watchdog = Watchdog(self, max_query_ms / 1000, restart_argv)

    def use_script(self, script: Script | None, load_error: str = "") -> None:
        """Serves ``script`` from the next question on (startup, CMD reload, a fresh Lua state);
        None serves the failure to load it, ``load_error``."""
        self.script = script
        self.load_error = load_error
        self.lua_answer: Callable[[bytes], Any] | None = None
        if script is not None:
            dispatch = script.dispatch
            self.lua_answer = dispatch.answer_capped if script.max_memory_mb else dispatch.answer
            dispatch.set_stream(self.stream_rows if self.serving else None)

    def write(self, data: bytes) -> None:
        write_all(self.output_fd, data)

    def off_the_clock(self, work: Callable[[], Any]) -> Any:
        """Runs ``work``, an import lua2pipe makes the first time a question needs it, without
        counting it against the question's --max-query-ms. Importing and configuring structlog
        (a hook's first print or pdnslog) and importing cryptography (CMD keys) took 0.1-0.5 s
        of wall-clock time each on the 2-CPU test machine under a load average of 9, and cut
        well-behaved hooks as runaways. Importing them at start-up instead would put them on
        pdns's clock: it waits pipe-timeout for HELO's answer (pipebackend.cc CoWrapper::launch)
        and starts many coprocesses at once. Only the serving thread's own imports stop its
        clock: a reload's dns_init printing on the loader thread does not stop a hook's."""
        if threading.get_ident() != self.serving_thread:
            return work()
        with self.answer_lock:  # not between the watchdog's check and its answer
            started = self.busy_since
            self.busy_since = 0.0
        paused = time.monotonic()
        try:
            return work()
        finally:
            if started:
                self.busy_since = started + time.monotonic() - paused

    def stream_rows(self, rows: bytes | int, length: int) -> None:
        """lua/dispatch.lua's writer (M.set_stream): the rows of an AXFR answer rendered so far,
        as text, or on LuaJIT ``length`` bytes of its answer buffer at address ``rows``, read
        here so that Lua makes no string of them."""
        if isinstance(rows, bytes):
            self.stream(rows)
            return
        import ctypes  # first used here (Python's loop) or by the Lua loop: 2 ms, kept off start-up

        self.stream(ctypes.string_at(rows, length))

    def stream(self, part: bytes) -> None:
        """Writes the rows of an AXFR answer rendered so far (lua/dispatch.lua streams them, see
        STREAM_ROWS), under the answer lock, as the rest of the answer is written: a runaway
        answer from the watchdog comes between parts, never inside one. Each part restarts the
        --max-query-ms clock, which so bounds the hook and the rendering of each part (a row whose
        metamethod never returns is cut), not the time pdns takes to read a large zone."""
        with self.answer_lock:
            write_all(self.output_fd, part)
            self.busy_since = time.monotonic()
        if self.query_logging:
            self._log_question(self.in_hand, result=part.decode("utf-8", "backslashreplace").splitlines())

    def count(self, event: str) -> None:
        """One more of a rare event (a command, a runaway cut, a memory-cap failure ...)."""
        self.tally[event] = self.tally.get(event, 0) + 1

    def count_memory_failure(self, why: str | bytes) -> None:
        """Counts a failure that --max-memory caused: a hook that ran out of the cap, or live
        data over it."""
        text = why.decode("utf-8", "replace") if isinstance(why, bytes) else why
        if "not enough memory" in text or "over --max-memory" in text:
            self.count("memory_cap_failures")

    def count_cut(self) -> None:
        """Counts the question the watchdog answered for a runaway hook: the loop never will."""
        self.failures += 1
        self.count("runaway_cuts")
        kind = self.kind_of(self.in_hand)
        if kind in ("lookup", "list"):
            self.questions += 1
            self.lists += kind == "list"
        elif kind == "command":
            self.count("commands")

    def kind_of(self, line: bytes) -> str:
        """What a protocol line asks: lookup, list, command or other."""
        return {b"Q": "lookup", b"AXFR": "list", b"CMD": "command"}.get(line.split(b"\t", 1)[0], "other")

    @property
    def resume_mode(self) -> str:
        """What ``--resume`` hands the re-executed process: the pipe ABI (no second HELO)."""
        return str(self.abi)

    def unread_input(self) -> bytes:
        """What was read from pdns and not answered yet: a restart hands it to the new image."""
        return self.reader.pending

    def runaway_answer(self, reason: str) -> bytes:
        """The watchdog's answer to the question in hand when its hook ran too long."""
        # pdns's directBackendCmd (pipebackend.cc) reads a CMD answer until END whatever it
        # holds: a runaway CMD answers like every failed command, "error: REASON" then END.
        if self.in_hand.startswith(b"CMD\t") and self.abi >= 5:
            return _cmd_answer(f"error: {reason}")
        return fail_answer(reason, is_zone_walk(self.in_hand.split(b"\t")))

    def send_runaway_answer(self, reason: str) -> None:
        """Writes :meth:`runaway_answer` to pdns (from the watchdog's thread)."""
        write_all(self.output_fd, self.runaway_answer(reason))

    # -- the loop

    def serve(self) -> int:
        """Answers questions until EOF, then runs dns_deinit. Returns the process exit code."""
        self.serving = True
        self.serving_thread = threading.get_ident()
        if self.script is not None:
            self.script.dispatch.set_stream(self.stream_rows)
        self.watchdog.start()  # before HELO too: a failed handshake also ends in dns_deinit
        if not self._begin():
            self._deinit()
            return 1
        self.serve_lines()
        self._deinit()
        return 0

    def serve_lines(self) -> None:
        """Answers every line after the handshake, until EOF: Python's loop."""
        readline = self.reader.readline
        answer = self.answer
        output_fd = self.output_fd
        lock = self.answer_lock
        clock = time.monotonic
        record_latency = self.latencies.append
        while True:
            try:
                line = readline()
            except ProtocolError as exc:
                self.failures += 1
                self.write(self.unreadable_answer(str(exc)))
                continue
            if line is None:
                return
            if self.chores:  # a reload to swap in, Lua memory to read (Operations)
                self.operations.between_questions()
            self.in_hand = line
            started = self.busy_since = clock()
            text = answer(line)
            with lock:
                self.busy_since = 0.0
                write_all(output_fd, text)
            record_latency(clock() - started)

    def _deinit(self) -> None:
        """Runs dns_deinit, bounded by --max-query-ms like every hook: a dns_deinit that never
        returned used to leave the process spinning after pdns was gone (parent pid 1)."""
        if self.script is not None:
            self.closing = True
            self.busy_since = time.monotonic()
            self.script.deinit()
            self.busy_since = 0.0

    def _begin(self) -> bool:
        """Whether the session can start: HELO answered, or a resumed session (no HELO)."""
        return bool(self.abi) or self._handshake()

    @staticmethod
    def unreadable_answer(reason: str) -> bytes:
        """The answer to a line that could not be read (over MAX_LINE)."""
        return fail_answer(reason)

    def _handshake(self) -> bool:
        try:
            line = self.reader.readline()
        except ProtocolError:
            line = b""
        if line is None:
            return False
        abi = helo_abi(line.split(b"\t"))
        if abi not in ABI_VERSIONS:
            self.log(3, "expected HELO with a pipe ABI from 1 to 5", line=line)
            self.write(b"FAIL\n")
            # pdns's documented contract: read one more line, then wait to be terminated.
            try:
                while self.reader.readline() is not None:
                    pass
            except ProtocolError:
                pass
            return False
        self.abi = abi
        if self.script is None:
            self.write(b"FAIL\n")
            return True  # keep answering, each question naming the load error
        self.script.set_abi(abi)
        self.write(self.banner(self.script))
        return True

    @staticmethod
    def banner(script: Script) -> bytes:
        return f"OK\tlua2pipe {VERSION} ({script.version}) serving {script.path}\n".encode(
            "utf-8", "backslashreplace"
        )

    def answer(self, line: bytes) -> bytes:
        """The complete answer text to one protocol line.

        Q and AXFR lines go to the Lua dispatcher whole (one crossing); it answers, or says why
        the question fails, or hands the line back (False) for Python to answer.
        """
        if not line.isascii() and line[:4] != b"CMD\t":  # CMD answers its own errors, then END
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                self.failures += 1
                return fail_answer("malformed question: line is not valid UTF-8")
        lua_answer = self.lua_answer
        if lua_answer is None:  # the script did not load
            return self._answer_in_python(line)
        try:
            answer = lua_answer(line)
        except Exception as exc:  # raised while reading the result (__tostring, __pairs), or memory
            return self._lua_failure(line, exc)
        if answer is False:
            return self._answer_in_python(line)
        if answer.__class__ is bytes:
            self.questions += 1  # Q and AXFR lines; CMD is not a question
            if line[0] == 65:  # "A": AXFR
                self.lists += 1
            if self.query_logging:
                self._log_question(line, result=answer.decode("utf-8", "backslashreplace").splitlines())
            return answer
        zone_walk, restart = len(answer) > 2 and answer[2], len(answer) > 3 and bool(answer[3])
        return self.failed(line, answer[1], zone_walk, restart)

    def failed(self, line: bytes, why: bytes, zone_walk: Any, restart: bool) -> bytes:
        """LOG + FAIL for a question the dispatcher failed: ``why``, and whether it was a zone
        walk, as the dispatcher returns them. ``restart``: its Lua heap stays over --max-memory,
        the next question gets a fresh state."""
        self.questions += 1
        if line[0] == 65:
            self.lists += 1
        self.failures += 1
        self.count_memory_failure(why)
        if self.query_logging:
            self._log_question(line, error=why)
        if restart:
            self._fresh_state()
        return fail_answer(why, bool(zone_walk))

    def _lua_failure(self, line: bytes, exc: Exception) -> bytes:
        """LOG + FAIL for an error that escaped the dispatcher's own checks: a hostile value whose
        metamethods raise while the result is read, or the Lua heap over --max-memory."""
        self.questions += 1
        self.failures += 1
        fields = line.split(b"\t")
        hook = "dns_lookup" if fields[0] == b"Q" else "dns_list"
        self.lists += hook == "dns_list"
        if isinstance(exc, MemoryError):
            self.count("memory_cap_failures")
        why = "not enough memory (--max-memory)" if isinstance(exc, MemoryError) else _lua_message(exc)
        if isinstance(exc, MemoryError):  # dispatch.answer_capped could not even collect
            why += ": restarting with a fresh Lua state"
            self._fresh_state()
        return fail_answer(f"{hook} result could not be read: {why}", is_zone_walk(fields))

    def _fresh_state(self) -> None:
        """Replaces a Lua state whose heap stays over --max-memory with a freshly loaded one
        (dns_deinit is not run in the full state)."""
        old = self.script
        assert old is not None  # only a loaded script's Lua state fills up
        self.count("restarts_memory")
        self.log(
            3, "Lua heap full", max_memory_mb=old.max_memory_mb, action="restarting with a fresh Lua state"
        )
        new, load_error = load_script(
            old.path, self.log, lua=old.runtime_name, max_memory_mb=old.max_memory_mb
        )
        if new is not None:
            new.set_abi(self.abi)
        self.use_script(new, load_error)

    def _log_question(self, line: bytes, **outcome: Any) -> None:
        """--query-logging: the hook called, its arguments, and the answer or the failure."""
        fields = line.decode("utf-8", "backslashreplace").split("\t")
        if fields[0] == "Q" and len(fields) > 4:
            hook, arguments = "lookup", {"qtype": fields[3], "qname": fields[1], "domain_id": fields[4]}
        else:
            zone, domain_id = (fields[2] if len(fields) > 2 else ""), (fields[1] if len(fields) > 1 else "")
            hook, arguments = "list", {"zone": zone, "domain_id": domain_id}
        event = f"[lua2] {hook}" if "result" in outcome else f"[lua2] {hook} failed"
        self.log(6, event, force=True, **arguments, **outcome)

    def _answer_in_python(self, line: bytes) -> bytes:
        fields = line.split(b"\t")
        tag = fields[0]
        if tag == b"CMD" and self.abi >= 5:
            self.count("commands")
            return self.commands.run(line[4:])
        self.failures += 1
        if tag in (b"Q", b"AXFR") and self.script is None:
            self.questions += 1
            return fail_answer(f"script not loaded: {self.load_error}", is_zone_walk(fields))
        if not line:
            return fail_answer("malformed question: empty line")
        hint = " (CMD needs pipe-abi-version=5)" if tag == b"CMD" else ""
        tag_text = tag.decode("utf-8", "backslashreplace")
        return fail_answer(f"malformed question: unknown question {tag_text!r}{hint}")


def write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)
    while written < len(data):
        data = data[written:]
        written = os.write(fd, data)


class Watchdog:
    """Keeps pdns's clock: answers for a hook that overruns, and handles SIGTERM.

    It polls (the loop only stores a start time per question, so the hot path pays nothing for
    it) and waits for SIGTERM in the same call. LuaJIT runs no debug hooks inside compiled
    loops and lupa releases the GIL while Lua runs, so a thread is what can act on a runaway
    ``while true do end``: it answers LOG + FAIL in time, then re-executes lua2pipe over the same
    pipes, handing over the ABI and any unread input, for a fresh Lua state.
    """

    #: How often it looks: a runaway is answered at most this late after --max-query-ms, and an
    #: idle coprocess wakes 20 times a second (about 0.05% of a CPU).
    POLL_SECONDS = 0.05

    def __init__(self, coprocess: Coprocess, limit_seconds: float, restart_argv: list[str] | None) -> None:
        self.coprocess = coprocess
        self.limit = limit_seconds
        self.restart_argv = restart_argv
        self.thread = threading.Thread(target=self._run, name="lua2pipe-watchdog", daemon=True)

    def start(self) -> None:
        import signal

        if threading.current_thread() is threading.main_thread():
            # SIGTERM (and SIGHUP, a reload) must reach this thread's sigtimedwait even while the
            # main thread runs Lua.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGHUP})
        self.thread.start()

    def _run(self) -> None:
        import signal

        coprocess = self.coprocess
        operations = coprocess.operations
        while True:
            received = signal.sigtimedwait({signal.SIGTERM, signal.SIGHUP}, self.POLL_SECONDS)
            if received is not None and received.si_signo == signal.SIGHUP:
                operations.request_reload("SIGHUP")
            elif received is not None:
                log_without_blocking(coprocess.log, 6, "SIGTERM: exiting")
                operations.close()
                os._exit(0)
            operations.tick()
            started = coprocess.busy_since
            if not self.limit or not started or time.monotonic() - started < self.limit:
                continue
            with coprocess.answer_lock:
                if coprocess.busy_since != started:
                    continue  # answered meanwhile
                if coprocess.closing:
                    limit_ms = round(self.limit * 1000)
                    log_without_blocking(
                        coprocess.log,
                        3,
                        "dns_deinit still running: exiting",
                        grace=EXIT_LOG_GRACE_SECONDS,
                        limit_ms=limit_ms,
                    )
                    operations.close()
                    os._exit(1)
                self._answer_for_runaway()

    def _answer_for_runaway(self) -> None:
        import signal

        coprocess = self.coprocess
        limit_ms = round(self.limit * 1000)
        reason = f"hook still running after {limit_ms} ms (--max-query-ms): stopped, Lua state restarted"
        try:
            coprocess.send_runaway_answer(reason)
        except OSError:
            coprocess.operations.close()
            os._exit(0)
        log_without_blocking(
            coprocess.log, 3, "runaway hook", limit_ms=limit_ms, action="restarting with a fresh Lua state"
        )
        if not self.restart_argv:
            coprocess.operations.close()
            os._exit(1)
        coprocess.operations.before_restart()
        pending = os.memfd_create("lua2pipe-pending", 0)
        os.write(pending, coprocess.unread_input())
        os.lseek(pending, 0, os.SEEK_SET)
        os.dup2(coprocess.reader.fd, 0)
        os.dup2(coprocess.output_fd, 1)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        try:
            os.execv(
                self.restart_argv[0], [*self.restart_argv, "--resume", f"{coprocess.resume_mode}:{pending}"]
            )
        except OSError as exc:  # the interpreter went away (an upgrade?): pdns starts a new coprocess
            log_without_blocking(coprocess.log, 2, "cannot restart after a runaway hook", error=str(exc))
            coprocess.operations.close()
            os._exit(1)


#: How long the watchdog waits for its own log line once pdns has its answer. stderr is pdns's
#: and may be a pipe nobody drains, where a write blocks for good: past this the line is given
#: up and the restart (or exit) goes on, so the next question is answered all the same.
LOG_GRACE_SECONDS = 0.5

#: The same wait when the process is about to exit with nobody waiting for an answer (stdin at
#: EOF: pdns is gone): the first event imports and configures structlog, which took over 0.5 s
#: of wall-clock time on the 2-CPU test machine under a load average of 8.
EXIT_LOG_GRACE_SECONDS = 5.0


def log_without_blocking(
    log: Log, level: int, event: str, *, grace: float = LOG_GRACE_SECONDS, **fields: Any
) -> None:
    """Logs from a thread of its own, waiting at most ``grace`` seconds for it: what the
    watchdog does next (re-execute, exit) must not hang on a stderr nobody reads."""
    writer = threading.Thread(
        target=log, args=(level, event), kwargs=fields, name="lua2pipe-log", daemon=True
    )
    writer.start()
    writer.join(grace)


def _stop_loading(log: Log, limit_ms: int, event: str) -> None:
    """The end of a load that outlived --max-query-ms (a fresh state's after a runaway hook, or
    remote mode's first): a dns_init or top level that never returns. pdns, waiting for the
    next answer, starts a new coprocess once this one exits. The limit is at least pdns's
    pipe-timeout, so pdns has given up on that answer already: the log line may take its time."""
    log_without_blocking(log, 3, event, grace=EXIT_LOG_GRACE_SECONDS, limit_ms=limit_ms)
    os._exit(1)


# ---------------------------------------------------------------------------------------------
# The serving loop in Lua, on LuaJIT (LuaLoopCoprocess, LuaLoopRemoteCoprocess, chosen at start).
# lua/serve.lua reads the protocol's input with read(2) into a buffer, splits the lines, answers
# the pipe's Q and AXFR (remote mode's lookups) through the dispatcher (lua/remote.lua) and
# writes each answer with one write(2), all without returning to Python; it comes back with the
# line in hand for everything else (CMD and remote's other requests, lines that are not ASCII,
# failed questions, chores between questions) and at EOF. Python stays the supervisor: start-up, HELO,
# the watchdog thread (lupa releases the GIL while Lua runs), CMD, restarts. What both sides use
# while the loop runs lives in LoopShared (_lua2pipe/loop_memory.py, imported once HELO is
# answered), plain memory that Python allocates and the Lua side reaches through the FFI at its
# address: the question's start time and the mutex the watchdog
# uses, the counters the metrics read, the chores flag, and the input buffer with its unread
# bytes, which a runaway restart hands to the new process image. It outlives the Lua state, so a
# reload or a fresh state keeps the unread input. The PUC runtimes (no FFI), --record and
# --query-logging keep Python's loop (Coprocess.serve_lines), as does a coprocess whose script
# did not load.


#: The input buffer: an unfinished line up to MAX_LINE bytes, and room for reads of 64 KiB
#: (pdns writes one question at a time; a replayed stream comes in large reads).
BUFFER_BYTES = MAX_LINE + 1 + 65536


class LoopCounters:
    """What :class:`_lua2pipe.loop_memory.LoopShared` holds, kept in Python until the Lua loop
    starts: that module (ctypes) is imported only once HELO is answered."""

    busy_since = 0.0
    questions = failures = lists = latency_count = 0.0
    chores = 0
    output_fd = -1
    line_length = -1  # no line of the Lua loop's in hand
    latencies: tuple[float, ...] = ()


class SharedField:
    """An attribute of :class:`Coprocess` that :class:`LuaLoopCoprocess` keeps in its ``shared``
    memory (LoopShared, whose counters are doubles and flags integers), read as ``kind``."""

    def __init__(self, kind: Callable[[Any], Any]) -> None:
        self.kind = kind
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, coprocess: LuaLoopCoprocess, owner: type | None = None) -> Any:
        return self.kind(getattr(coprocess.shared, self.name))

    def __set__(self, coprocess: LuaLoopCoprocess, value: Any) -> None:
        setattr(coprocess.shared, self.name, value)


class LuaLoopCoprocess(Coprocess):
    """A :class:`Coprocess` (same arguments) whose loop runs in Lua (``lua/serve.lua``).

    The question's start time, the counters, the chores flag and the question in hand live in
    its ``shared`` memory (:class:`SharedField`, ``in_hand``), so every method of
    :class:`Coprocess` and the watchdog sees what the Lua loop did, and the Lua loop sees what
    they set.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.shared: Any = LoopCounters()  # a LoopShared once serve_lines starts
        self.python_line = b""  # in_hand when Python took the line (the handshake, Python's loop)
        self.latency_samples: deque[float] = deque(maxlen=10000)
        self.latencies_folded = 0
        self.fold_lock = threading.Lock()
        super().__init__(*args, **kwargs)
        self.shared.output_fd = self.output_fd
        self.input_buffer: Any = None  # the Lua loop's (a ctypes array), while it reads

    # -- what the Lua loop shares

    busy_since = SharedField(float)
    questions = SharedField(int)
    failures = SharedField(int)
    lists = SharedField(int)
    chores = SharedField(bool)

    @property
    def in_hand(self) -> bytes:
        shared = self.shared
        if shared.line_length < 0:
            return self.python_line
        import ctypes  # imported by serve_lines already

        return ctypes.string_at(shared.buffer + shared.line_start, shared.line_length)

    @in_hand.setter
    def in_hand(self, line: bytes) -> None:
        self.python_line = line
        self.shared.line_length = -1

    @property
    def latencies(self) -> deque[float]:
        """The last 10,000 latencies, the Lua loop's folded in first (from either thread)."""
        shared, samples = self.shared, self.latency_samples
        with self.fold_lock:
            count = int(shared.latency_count)
            ring = shared.latencies
            for index in range(max(self.latencies_folded, count - len(ring)), count):
                samples.append(ring[index % len(ring)])
            self.latencies_folded = count
        return samples

    @latencies.setter
    def latencies(self, samples: deque[float]) -> None:
        self.latency_samples = samples

    # -- the loop

    def unread_input(self) -> bytes:
        shared = self.shared
        if self.input_buffer is None:
            return super().unread_input()
        import ctypes  # imported by serve_lines already

        return ctypes.string_at(shared.buffer + shared.start, shared.stop - shared.start)

    def serve_lines(self) -> None:
        """Runs lua/serve.lua until EOF, answering in Python the lines it hands back."""
        import ctypes

        from _lua2pipe.loop_memory import LoopShared, SharedMutex

        # HELO is answered (or a restart resumes): the shared memory takes over what Python kept.
        # The watchdog takes the answer lock only for a question in hand, and there is none now.
        counters, shared = self.shared, LoopShared()
        for name in ("busy_since", "questions", "failures", "lists", "chores", "output_fd"):
            setattr(shared, name, getattr(counters, name))
        shared.line_length = -1
        self.shared = shared
        self.answer_lock = SharedMutex(shared)
        pending = self.reader.pending  # what came with HELO, or the restart's
        self.input_buffer = ctypes.create_string_buffer(pending, BUFFER_BYTES)
        shared.buffer = ctypes.addressof(self.input_buffer)
        shared.capacity = BUFFER_BYTES
        shared.input_fd = self.reader.fd
        shared.start, shared.stop = 0, len(pending)
        too_long = self.unreadable_answer(str(_line_too_long()))
        address = ctypes.addressof(self.shared)
        while True:
            script = self.script
            if script is None or script.lua_loop is None:  # a fresh state that did not load
                self._serve_in_python()
                return
            try:
                outcome = script.lua_loop(address, self.lua_answer, too_long)
            except Exception as exc:  # raised while reading a result (__tostring ...), or memory
                started = self.busy_since or time.monotonic()
                self._send(self._lua_failure(self.in_hand, exc), started)
                continue
            status = outcome[0] if isinstance(outcome, tuple) else outcome
            if status == b"eof":
                return
            if status == b"error":
                if outcome[1] != errno.EINTR:  # Python's signal handlers run on the way back
                    raise OSError(outcome[1], os.strerror(outcome[1]))
                continue
            line = outcome[1]
            if status == b"line":
                if self.chores:
                    self.operations.between_questions()
                started = self.busy_since = time.monotonic()
                text = self.answer(line)
            else:  # b"failed": its question's clock started in Lua
                started = self.busy_since
                text = self.failed(line, outcome[2], outcome[3], bool(outcome[4]))
            self._send(text, started)

    def _send(self, text: bytes, started: float) -> None:
        """Writes the answer Python made, as Python's loop does."""
        with self.answer_lock:
            self.busy_since = 0.0
            write_all(self.output_fd, text)
        self.latencies.append(time.monotonic() - started)

    def _serve_in_python(self) -> None:
        self.reader = LineReader(self.reader.fd, self.unread_input())
        self.input_buffer = None
        super().serve_lines()


# ---------------------------------------------------------------------------------------------
# Operating the coprocesses pdns runs (README, "Operating it"): each reloads its script without
# a pdns restart and exports its numbers. pdns starts one coprocess per distributor thread plus
# others (TCP, AXFR, pdnsutil's own) and offers no way to address them (pdnsutil backend-cmd
# starts a fresh one, pdns_control has no backend-cmd). So each one watches its script, reloads
# on SIGHUP, and with --metrics-dir registers there (its metrics file), where CMD reload finds
# the others to signal. The serving loop pays one attribute check per question
# (Coprocess.chores); the rest runs on the watchdog thread, between its polls, or on a loader
# thread: a new Lua state is built while the old one keeps answering, and swapped in between two
# questions.

#: How often the watchdog stat()s the script for a change (device, inode, mtime, size).
WATCH_SECONDS = 1.0


class Operations:
    """Reload triggers and metrics of one :class:`Coprocess`.

    The watchdog thread calls :meth:`tick` every poll and :meth:`request_reload` on SIGHUP; a
    reload loads the script on a thread of its own (``dns_init`` included) and hands the new
    state to the loop, which swaps it in at :meth:`between_questions`. A load that fails is
    logged once, naming file and line, and the old script keeps serving.
    """

    def __init__(self, coprocess: Coprocess, *, watch: bool, metrics_dir: str | None, resumed: bool) -> None:
        self.coprocess = coprocess
        self.watch = watch
        self.metrics_dir = metrics_dir
        script = coprocess.script
        self.path = script.path if script is not None else coprocess.commands.script_path
        self.seen = script.file_id if script is not None else self._stat()
        self.next_watch = time.monotonic() + WATCH_SECONDS
        self.loader: threading.Thread | None = None
        self.again = ""  # a trigger that came while the loader ran: load once more
        self.loaded: tuple[Script, str, float] | None = None  # for the loop: script, trigger, ms
        self.memory_wanted = False
        self.lua_memory_kb: float | None = None  # read by the loop, between questions
        self.metrics: Any = None  # _lua2pipe.metrics.MetricsFile, from the first tick
        if metrics_dir and resumed:  # the counters of this pid's previous image, read at once
            self._open_metrics(resumed=True)

    def _stat(self) -> tuple[int, int, int, int] | None:
        try:
            status = os.stat(self.path) if self.path else None
        except OSError:
            return None  # replaced right now (an editor's rename), or gone: keep serving
        return status and (status.st_dev, status.st_ino, status.st_mtime_ns, status.st_size)

    def _open_metrics(self, resumed: bool = False) -> None:
        from _lua2pipe.metrics import MetricsFile

        assert self.metrics_dir
        try:
            self.metrics = MetricsFile(self.coprocess, self.metrics_dir, resumed=resumed)
        except OSError as exc:
            self.coprocess.log(3, "cannot write metrics", directory=self.metrics_dir, error=str(exc))
            self.metrics_dir = None

    # -- the watchdog thread

    def tick(self) -> None:
        """Every watchdog poll: the script's file once a second, the metrics file every few."""
        now = time.monotonic()
        if self.watch and now >= self.next_watch:
            self.next_watch = now + WATCH_SECONDS
            current = self._stat()
            if current is not None and current != self.seen:
                self.seen = current
                self.request_reload("script changed")
        if self.metrics_dir:
            if self.metrics is None:
                self._open_metrics()
            if self.metrics is not None:
                self.metrics.tick(now)

    def want_memory(self) -> None:
        """Asks the loop for the Lua heap's size: only the thread that runs Lua may ask Lua."""
        self.memory_wanted = True
        self.coprocess.chores = True

    def request_reload(self, trigger: str) -> None:
        """Loads the script again on a thread of its own; a second trigger while it loads
        loads once more after it."""
        if self.loader is not None and self.loader.is_alive():
            self.again = trigger
            return
        self.loader = threading.Thread(
            target=self._load, args=(trigger,), name="lua2pipe-reload", daemon=True
        )
        self.loader.start()

    def _load(self, trigger: str) -> None:
        coprocess = self.coprocess
        while trigger:
            path, options = coprocess.commands.reload_options()
            started = time.monotonic()
            try:
                new = Script(path, log=coprocess.log, **options)
            except ScriptError as exc:
                coprocess.count("reload_failures")
                coprocess.log(
                    3,
                    "reload failed",
                    script=path,
                    trigger=trigger,
                    error=str(exc),
                    action="still serving the previous script",
                    pid=os.getpid(),
                )
            else:
                self.loaded = (new, trigger, (time.monotonic() - started) * 1000)
                coprocess.chores = True
            trigger, self.again = self.again, ""

    def before_restart(self) -> None:
        """The watchdog's runaway restart (same pid, a new image): the numbers so far go to the
        metrics file, which the new image reads back (``--resume``)."""
        coprocess = self.coprocess
        coprocess.count_cut()
        coprocess.count("restarts_runaway")
        if self.metrics_dir and self.metrics is None:
            self._open_metrics()
        if self.metrics is not None:
            self.metrics.save()

    def close(self) -> None:
        """At exit: the metrics file goes (SIGKILL leaves it: readers check the pid's start time)."""
        if self.metrics is not None:
            self.metrics.remove()

    def signal_peers(self) -> str:
        """CMD reload's reach: SIGHUP to every other live coprocess registered in --metrics-dir
        that serves the same script. Returns what it did, as one line."""
        import signal

        from _lua2pipe.metrics import live_files

        path = self.path or ""
        if not self.metrics_dir:
            return "other coprocesses: not reachable without --metrics-dir (send them SIGHUP)"
        mine = os.path.realpath(path)
        signalled, refused = [], []
        for entry in live_files(self.metrics_dir):
            if entry.pid == os.getpid() or os.path.realpath(entry.script) != mine:
                continue
            try:
                os.kill(entry.pid, signal.SIGHUP)
                signalled.append(str(entry.pid))
            except OSError as exc:
                refused.append(f"{entry.pid} ({exc.strerror})")
        line = f"signalled {len(signalled)} other coprocesses serving {path}"
        line += f": {' '.join(signalled)}" if signalled else ""
        return line + (f"; not signalled: {', '.join(refused)}" if refused else "")

    # -- the serving loop, between two questions

    def between_questions(self) -> None:
        coprocess = self.coprocess
        coprocess.chores = False  # before reading the work: a request made meanwhile sets it again
        loaded, self.loaded = self.loaded, None
        if loaded is not None:
            new, trigger, load_ms = loaded
            old = coprocess.script
            if coprocess.abi:
                new.set_abi(coprocess.abi)
            coprocess.use_script(new)
            coprocess.commands.reloads += 1
            coprocess.log(
                6,
                "script reloaded",
                script=new.path,
                trigger=trigger,
                load_ms=round(load_ms, 1),
                pid=os.getpid(),
            )
            if old is not None:  # its dns_deinit, off the loop: the next question is waiting
                threading.Thread(target=old.deinit, name="lua2pipe-deinit", daemon=True).start()
            self.memory_wanted = True
        if self.memory_wanted:
            self.memory_wanted = False
            script = coprocess.script
            self.lua_memory_kb = float(script.dispatch.memory_kb()) if script is not None else None


# ---------------------------------------------------------------------------------------------
# The remote backend's protocol (``launch=remote``, pipe connector): the same executable and
# script, JSON lines instead of tab-separated ones. pdns 4.7.3 writes one request a line,
# ``{"method": M, "parameters": {...}}``, and reads one reply, ``{"result": R, "log": [...]}``
# (modules/remotebackend/remotebackend.cc, pipeconnector.cc). The first byte pdns sends decides
# the protocol (serve_main): ``{`` here, ``H`` of HELO for the pipe. Everything but the framing
# is shared with the pipe: the Lua state, dispatch.lua's hook calls and row checks (lookup and
# list render their reply in lua/remote.lua), the watchdog, CMD as ``directBackendCmd``,
# --max-memory and logging.
#
# Every line gets exactly one reply, and every reply has a ``result``: pdns's Connector::recv
# treats a missing or null result as a broken coprocess and kills it, and a coprocess that dies
# while pdns is not waiting for it is never replaced (pdns 4.7.3 pipeconnector.cc checkStatus):
# so lua2pipe never exits on its own, and restarts by re-executing in place (Watchdog).

#: ``--resume`` mode of a remote session (a pipe session resumes with its ABI).
REMOTE_RESUME = "remote"

#: Replies that make pdns raise a JsonException while it reads the result, without dropping the
#: coprocess: what native lua2 does when a hook raises (the question fails, the state is kept).
#: ``stringFromJson``/``intFromJson`` throw on a missing member and ``asString`` on an object
#: (pdns/json.cc), in RemoteBackend::getBeforeAndAfterNamesAbsolute, getDomainKeys,
#: parseDomainInfo (getDomainInfo, getAllDomains) and getAllDomainMetadata. A lookup fails with a
#: row whose content cannot parse (built in RemoteCoprocess._failure). Methods whose reply pdns
#: cannot be made to reject answer false.
_RAISING_RESULTS: dict[str, Any] = {
    "getBeforeAndAfterNamesAbsolute": {},
    "getDomainKeys": [{}],
    "getDomainInfo": {},
    "getAllDomains": [{}],
    "getAllDomainMetadata": {"lua2pipe-error": {}},
}

#: Methods lua2 has no hook for that only read: answered false quietly (native lua2 answers
#: them false too). Every other method without a hook is a write (set metadata, keys, TSIG,
#: transactions, records, secondary operation) and is answered false with a log line naming it.
_QUIET_FALSE_METHODS = frozenset(
    {"searchRecords", "getTSIGKey", "getTSIGKeys", "getUnfreshSlaveInfos", "searchComments"}
)

#: pdns's kinds as RemoteBackend::parseDomainInfo reads them: only lowercase master and slave;
#: anything else is native (producer and consumer cannot be said through the remote backend).
_REMOTE_KINDS = {"primary": "master", "secondary": "slave"}


class _BadRequest(Lua2PipeError):
    """A request whose method or parameters lua2pipe cannot use."""


def _parameter(parameters: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    """One parameter of the expected type; integers as json.cc's intFromJson reads them (a JSON
    number or a decimal string, never a boolean)."""
    value = parameters.get(name, default)
    if value is None:
        raise _BadRequest(f"parameter {name!r} is missing")
    if kind is int:
        digits = value.strip().removeprefix("-") if isinstance(value, str) else ""
        if (digits.isascii() and digits.isdecimal()) or (isinstance(value, float) and value.is_integer()):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**31) <= value < 2**32:
            raise _BadRequest(f"parameter {name!r} is {value!r}, not a 32-bit integer")
        return value
    if not isinstance(value, kind):
        raise _BadRequest(f"parameter {name!r} is {value!r}, not a {kind.__name__}")
    return value


def _reply(result: Any, log: list[str] | None = None) -> bytes:
    import json

    message = {"result": result, "log": log} if log else {"result": result}
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def _remote_info(info: dict[str, Any]) -> dict[str, Any]:
    """A domain info from dispatch.lua (CMD's form) as RemoteBackend::parseDomainInfo reads it."""
    return {
        "id": info["id"],
        "zone": info["zone"],
        "kind": _REMOTE_KINDS.get(info["kind"], "native"),
        "serial": info["serial"],
        "notified_serial": info["notified_serial"],
        "last_check": info["last_check"],
        "masters": info["masters"],
    }


def answer_initialize(
    input_fd: int, output_fd: int, pending: bytes, recorder: Recorder | None = None
) -> bytes:
    """Answers pdns's first request, ``initialize``, before the script loads; returns what was
    read and not answered. A late reply would be read as the answer to pdns's next request and
    shift every later answer by one (pdns 4.7.3 RemoteBackend::send raises without dropping the
    connector), so the script (and dns_init) loads after this reply, while pdns waits for the
    next one. With ``recorder`` (--record), the request and its reply reach the transcript
    just before the reply goes to pdns, as every later answer does."""
    import json

    reader = LineReader(input_fd, pending)
    try:
        line = reader.readline()
    except ProtocolError as exc:
        reply = _reply(False, [str(exc)])
        if recorder is not None:
            recorder.unreadable(exc)
            recorder.answer(reply)
        write_all(output_fd, reply)
        return reader.pending
    if line is None:
        return b""
    try:
        request = json.loads(line)
    except ValueError:
        request = None
    if not isinstance(request, dict) or request.get("method") != "initialize":
        return line + b"\n" + reader.pending  # the loop answers (and records) it
    reply = _reply(True)
    if recorder is not None:
        recorder.question(line)
        recorder.answer(reply)
    write_all(output_fd, reply)
    return reader.pending


class RemoteCoprocess(Coprocess):
    """Serves the remote backend's protocol for one :class:`Script` (or its load error).

    The pipe's :class:`Coprocess` with another framing: one JSON request a line, one JSON reply
    a line. Lookups and lists are answered by lua/remote.lua; the other methods call the hooks
    through dispatch.lua's ``cmd_*`` functions, which read the results as native lua2 does.
    """

    def __init__(self, script: Script | None, input_fd: int, output_fd: int, **options: Any) -> None:
        import json

        self._loads = json.loads
        super().__init__(script, input_fd, output_fd, **options)
        self.methods: dict[str, Callable[[dict[str, Any]], bytes]] = {
            "initialize": lambda _parameters: _reply(True),
            "lookup": self.lookup,
            "list": self.list_zone,
            "getAllDomains": self.get_all_domains,
            "getDomainInfo": self.get_domain_info,
            "getAllDomainMetadata": self.get_all_domain_metadata,
            "getDomainMetadata": self.get_domain_metadata,
            "getDomainKeys": self.get_domain_keys,
            "getBeforeAndAfterNamesAbsolute": self.get_before_and_after_names,
            "setNotified": self.set_notified,
            "getUpdatedMasters": self.get_updated_masters,
            "directBackendCmd": self.direct_backend_cmd,
        }

    @property
    def resume_mode(self) -> str:
        return REMOTE_RESUME

    def use_script(self, script: Script | None, load_error: str = "") -> None:
        super().use_script(script, load_error)
        # The script's readers, or None (with the hooks) while it failed to load: only
        # initialize and directBackendCmd are answered then.
        self.remote: Any = None
        self.dispatch: Any = None
        self.hooks: list[str] = []
        if script is not None:
            self.remote = script._chunk("remote.lua")(script.dispatch)
            self.dispatch = script.dispatch
            self.hooks = script.hooks
            self.lua_answer = self.remote.answer_capped if script.max_memory_mb else self.remote.answer

    # -- the loop (Coprocess.serve): no handshake, initialize was answered before the script loaded

    def _begin(self) -> bool:
        return True

    @staticmethod
    def unreadable_answer(reason: str) -> bytes:
        return _reply(False, [f"lua2pipe: {reason}"])

    def _request(self, line: bytes) -> tuple[str, dict[str, Any]]:
        """A request's method and parameters; raises _BadRequest."""
        try:
            request = self._loads(line)
        except (ValueError, RecursionError) as exc:
            raise _BadRequest(f"not a JSON request: {exc}") from None
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            raise _BadRequest("not a JSON object with a string 'method'")
        parameters = request.get("parameters", {})
        if not isinstance(parameters, dict):
            raise _BadRequest(f"{request['method']}: 'parameters' is not an object")
        return request["method"], parameters

    def answer(self, line: bytes) -> bytes:
        """The complete reply line to one request line.

        A lookup in the form pdns writes it goes to lua/remote.lua whole (one crossing, as the
        pipe's Q line): the JSON reader and the dispatch here cost three times the lookup itself
        (16 against 5 µs a lookup on the bench's zone.lua). Lua hands back (False) any other line,
        and every line under --query-logging, which logs the parsed parameters.
        """
        lua_answer = self.lua_answer
        if lua_answer is not None and not self.query_logging:
            try:
                reply = lua_answer(line)
            except Exception as exc:  # raised while the result was read (metamethods), or memory
                return self._lua_failure(line, exc)
            if reply.__class__ is bytes:
                self.questions += 1
                return reply
            if reply is not False:
                return self.failed(line, reply[1], reply[2], len(reply) > 3 and bool(reply[3]))
        return self._answer_request(line)

    def _lua_failure(self, line: bytes, exc: Exception) -> bytes:
        memory = isinstance(exc, MemoryError)  # remote.answer_capped could not even collect
        why = "not enough memory (--max-memory)" if memory else _lua_message(exc)
        if memory:
            why += ": restarting with a fresh Lua state"
        return self._lookup_failure(None, f"dns_lookup result could not be read: {why}", memory)

    def failed(self, line: bytes, why: bytes, qname: Any, restart: bool) -> bytes:
        """A failing row for a lookup lua/remote.lua failed: ``why`` and the lookup's qname, as
        it returns them."""
        return self._lookup_failure(qname, from_lua(why), restart)

    def _lookup_failure(self, qname: bytes | None, why: str, restart: bool) -> bytes:
        """The reply to a lookup whose hook failed, or whose result could not be read: SERVFAIL
        for that question only. ``restart`` replaces a Lua state whose heap stays full."""
        self.questions += 1
        self.failures += 1
        reply = self._failure("lookup", {"qname": from_lua(qname)}, why)
        if restart:
            self._fresh_state()
        return reply

    def _answer_request(self, line: bytes) -> bytes:
        """The reply to a request read as JSON: every method, and lookups Lua handed back."""
        try:
            method, parameters = self._request(line)
        except _BadRequest as exc:
            self.failures += 1
            self.log(4, "malformed remote request", error=str(exc), line=line[:200])
            return _reply(False, [f"lua2pipe: malformed request: {exc}"])
        handler = self.methods.get(method)
        if handler is None:
            if method not in _QUIET_FALSE_METHODS:
                self.log(4, "remote method not supported: lua2 has no hook for it", method=method)
            return _reply(False)
        if method not in ("lookup", "list"):
            self.count("commands" if method == "directBackendCmd" else "other_requests")
        if self.remote is None and method not in ("initialize", "directBackendCmd"):
            self.failures += 1
            return self._failure(method, parameters, f"script not loaded: {self.load_error}")
        try:
            reply = handler(parameters)
        except _BadRequest as exc:
            self.failures += 1
            why = str(exc).removeprefix("malformed request: ")
            return self._failure(method, {}, f"malformed request: {method}: {why}")
        except CommandNotFound as exc:
            reply = _reply(False, [str(exc)])
        except CommandError as exc:
            self.failures += 1
            reply = self._failure(method, parameters, str(exc))
        except Exception as exc:  # raised while Lua's result was read (metamethods), or memory
            self.failures += 1
            why = "not enough memory (--max-memory)" if isinstance(exc, MemoryError) else _lua_message(exc)
            reply = self._failure(method, parameters, why)
            if isinstance(exc, MemoryError):
                self._fresh_state()
        script = self.script
        if script is not None and script.max_memory_mb and self.dispatch.heap_full():
            # As the pipe's answer_capped after every answer: live data alone over the cap
            # cannot be recovered (the next string lupa pushes could abort LuaJIT), so this
            # request fails and the next one finds a fresh state.
            self.failures += 1
            live_kb = round(self.dispatch.memory_kb())
            reply = self._failure(
                method,
                parameters,
                f"Lua heap over --max-memory after a full collection ({live_kb} KB live): "
                "restarting with a fresh Lua state",
            )
            self._fresh_state()
        if self.query_logging:
            self.log(
                6, f"[lua2] {method}", force=True, parameters=parameters, reply=reply.decode(errors="replace")
            )
        return reply

    def _failure(self, method: str, parameters: dict[str, Any], why: str) -> bytes:
        """The reply for a request whose hook failed: one pdns rejects for that request only.
        ``parameters`` are the request's, or {} when they are malformed (then the failing
        lookup row's name is the root, which always parses)."""
        self.log(4, "remote request failed", method=method, error=why)
        self.count_memory_failure(why)
        if method == "lookup":
            qname = parameters.get("qname")
            row = {"qtype": "A", "qname": qname if isinstance(qname, str) else ".", "content": "", "ttl": 0}
            return _reply([row], [why])
        return _reply(_RAISING_RESULTS.get(method, False), [why])

    def kind_of(self, line: bytes) -> str:
        try:
            method = self._request(line)[0]
        except _BadRequest:
            return "other"
        return {"lookup": "lookup", "list": "list", "directBackendCmd": "command"}.get(method, "other")

    def runaway_answer(self, reason: str) -> bytes:
        try:
            method, parameters = self._request(self.in_hand)
        except _BadRequest:
            method, parameters = "", {}
        return self._failure(method, parameters, reason)

    # -- lookup and list: one crossing into lua/remote.lua

    def _rows(self, result: Any) -> bytes:
        self.questions += 1
        if result.__class__ is bytes:
            return result
        why = from_lua(result[1])
        raise (_BadRequest if why.startswith("malformed request: ") else CommandError)(why)

    def lookup(self, parameters: dict[str, Any]) -> bytes:
        return self._rows(
            self.remote.lookup(
                _parameter(parameters, "qtype", str).encode(),
                _parameter(parameters, "qname", str).encode(),
                _parameter(parameters, "zone-id", int, -1),
                _parameter(parameters, "remote", str, "0.0.0.0").encode(),
                _parameter(parameters, "local", str, "0.0.0.0").encode(),
                _parameter(parameters, "real-remote", str, "0.0.0.0/0").encode(),
            )
        )

    def list_zone(self, parameters: dict[str, Any]) -> bytes:
        zone = _parameter(parameters, "zonename", str).encode()
        domain_id = _parameter(parameters, "domain_id", int, -1)
        self.lists += 1
        return self._rows(self.remote.list(zone, domain_id))

    # -- the other hooks, through dispatch.lua's readers (as CMD reaches them)

    def _has(self, hook: str) -> bool:
        return hook in self.hooks

    def get_all_domains(self, _parameters: dict[str, Any]) -> bytes:
        if not self._has("dns_get_all_domains"):
            return _reply([])  # native lua2 lists nothing: the zone cache stays empty
        infos, warnings = _hook_result(self.dispatch.cmd_all_domains())
        return _reply([_remote_info(info) for info in infos or []], warnings)

    def get_updated_masters(self, _parameters: dict[str, Any]) -> bytes:
        # pdns notifies every zone this returns, on every communicator cycle (pdns 4.7.3
        # mastercommunicator.cc): so only primaries whose serial is not the notified one.
        if not self._has("dns_get_all_domains"):
            return _reply([])
        infos, warnings = _hook_result(self.dispatch.cmd_all_domains())
        updated = [
            _remote_info(info)
            for info in infos or []
            if info["kind"] == "primary" and info["serial"] != info["notified_serial"]
        ]
        return _reply(updated, warnings)

    def get_domain_info(self, parameters: dict[str, Any]) -> bytes:
        name = _parameter(parameters, "name", str)
        info, warnings = _hook_result(self.dispatch.cmd_domaininfo(name.encode()))
        return _reply(_remote_info(info), warnings)

    def get_all_domain_metadata(self, parameters: dict[str, Any]) -> bytes:
        name = _parameter(parameters, "name", str)
        if not self._has("dns_get_all_domain_metadata"):
            return _reply(False)  # no metadata
        pairs, warnings = _hook_result(self.dispatch.cmd_all_metadata(name.encode()))
        return _reply({kind: values for kind, values in pairs or []}, warnings)

    def get_domain_metadata(self, parameters: dict[str, Any]) -> bytes:
        name = _parameter(parameters, "name", str)
        kind = _parameter(parameters, "kind", str)
        if not self._has("dns_get_domain_metadata"):
            return _reply(False)
        values, warnings = _hook_result(self.dispatch.cmd_metadata(name.encode(), kind.encode()))
        return _reply(values or [], warnings)

    def get_domain_keys(self, parameters: dict[str, Any]) -> bytes:
        name = _parameter(parameters, "name", str)
        if not self._has("dns_get_domain_keys"):
            return _reply(False)  # no keys: the zone is served unsigned
        keys, warnings = _hook_result(self.dispatch.cmd_keys(name.encode()))
        # published must be a JSON boolean: pdns ignores 0 and "0" (json.cc boolFromJson)
        return _reply(
            [
                {
                    "id": key["id"],
                    "flags": key["flags"],
                    "active": bool(key["active"]),
                    "published": bool(key["published"]),
                    "content": key["content"],
                }
                for key in keys or []
            ],
            warnings,
        )

    def get_before_and_after_names(self, parameters: dict[str, Any]) -> bytes:
        # For NSEC pdns sends the name relative to the zone, lower-case, with a final dot ("."
        # for the apex) and appends the zone to before and after itself; for NSEC3 a hash as a
        # one-label name, and it uses unhashed as an absolute name (pdns 4.7.3
        # dnsbackend.cc getBeforeAndAfterNames, packethandler.cc). Native lua2 passes the same
        # DNSName to the hook and returns its names as they are: so does lua2pipe.
        hook = "dns_get_before_and_after_names_absolute"
        zone_id = _parameter(parameters, "id", int)
        qname = _parameter(parameters, "qname", str)
        if not self._has(hook):
            return _reply(False)
        result = self.dispatch.cmd_nsec(zone_id, qname.encode())
        names, reason = (result if isinstance(result, tuple) else (result, None))[:2]
        if names is None and not from_lua(reason).startswith(f"{hook} failed:"):
            # the result breaks the hook's contract: native lua2 logs it and answers false
            return _reply(False, [one_line(from_lua(reason))])
        names, warnings = _hook_result(result)
        return _reply({key: names[key] for key in ("unhashed", "before", "after")}, warnings)

    def set_notified(self, parameters: dict[str, Any]) -> bytes:
        zone_id = _parameter(parameters, "id", int)
        serial = _parameter(parameters, "serial", int)
        if self._has("dns_set_notified"):  # native lua2 skips the call silently without it
            _hook_result(self.dispatch.cmd_set_notified(zone_id, serial % 2**32))
        return _reply(True)

    def direct_backend_cmd(self, parameters: dict[str, Any]) -> bytes:
        # pdnsutil backend-cmd prints the result as it is: the same text as CMD's, without END
        query = _parameter(parameters, "query", str)
        return _reply(self.commands.execute(query.encode("utf-8", "surrogateescape"))[1])


class LuaLoopRemoteCoprocess(LuaLoopCoprocess, RemoteCoprocess):
    """A :class:`RemoteCoprocess` whose loop runs in Lua: :class:`LuaLoopCoprocess`'s loop
    around lua/remote.lua's lookups (every other request is handed back to Python)."""


# ---------------------------------------------------------------------------------------------
# CMD: ``pdnsutil backend-cmd pipe 'COMMAND ARGS'`` (pipe ABI 5). The answer is lines, then END.
# The first word names a built-in command (help lists them) or, as in native lua2's backend-cmd,
# a function the script defined, called with the rest of the text as one string. A script
# function wins over a built-in of the same name, so a script behaves as under launch=lua2;
# ``lua2pipe NAME ARGS`` always reaches the built-in. Output formats: README.md, "Operating it".
#
# Every answer is complete and ends in END: a failure is one line "error: REASON", a hook that
# answered false one line "not found: REASON", and warnings about the hook's result are lines
# "warning: ...". Items are one a line, as ``key=value`` fields; ``--json`` gives one line of
# JSON instead ({"result": ..., "warnings": [...]}).


class CommandError(Lua2PipeError):
    """A CMD that cannot be answered: unknown, malformed, or its hook failed (one-line reason)."""


class CommandNotFound(CommandError):
    """The hook answered false (or true): native lua2's "not found or not supported"."""


#: Field values are written bare when they are made of these characters only, else as JSON strings.
_BARE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_:/+,*@#")


def _field(value: Any) -> str:
    """One ``key=value`` value: bare when unambiguous, else a JSON string (quotes, escapes);
    ``-`` for None (no value)."""
    import json

    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(round(value, 3))
    text = str(value)
    if text and all(c in _BARE for c in text):
        return text
    return json.dumps(text, ensure_ascii=False)


def _fields(pairs: list[tuple[str, Any]]) -> str:
    return " ".join(f"{key}={_field(value)}" for key, value in pairs)


def one_line(text: str) -> str:
    """A reason as one line: control characters become spaces."""
    return "".join(c if c.isprintable() else " " for c in text).strip() or "unknown error"


def from_lua(value: Any) -> Any:
    """A normalised hook result (Lua tables of strings, numbers and booleans) as Python values:
    bytes become str, array tables lists, other tables dicts."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if type(value).__name__ == "_LuaTable":  # whichever lupa runtime module made it
        items = [(from_lua(k), from_lua(v)) for k, v in value.items()]
        if all(isinstance(k, int) for k, _ in items):
            return [v for _, v in sorted(items)]
        return dict(items)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _hook_result(result: Any) -> tuple[Any, list[str]]:
    """Unpacks what a ``cmd_*`` function of dispatch.lua returned (see there)."""
    if isinstance(result, tuple):
        first, second = result[0], result[1] if len(result) > 1 else None
    else:
        first, second = result, None
    if first is None or first is False:
        reason = one_line(from_lua(second) or "no reason given")
        raise (CommandNotFound if first is False else CommandError)(reason)
    warnings = from_lua(second) if second is not None else []
    return from_lua(first), [one_line(w) for w in warnings or []]


def _split_arguments(
    command: str,
    argument: str,
    names: Sequence[str],
    optional: Sequence[str] = (),
    flags: tuple[str, ...] = ("--json",),
) -> tuple[dict[str, str], set[str]]:
    """Splits a built-in's arguments on white space: ``names`` are required, ``optional`` may
    follow, ``flags`` may appear anywhere. Raises CommandError with the usage otherwise."""
    words = argument.split()
    given = {word for word in words if word in flags}
    words = [word for word in words if word not in flags]
    unknown = [word for word in words if word.startswith("--")]
    usage = " ".join([command, *names, *(f"[{n}]" for n in optional), *(f"[{f}]" for f in flags)])
    if unknown:
        raise CommandError(f"{command}: unknown option {unknown[0]} (usage: {usage})")
    if len(words) < len(names):
        raise CommandError(f"{command}: missing {names[len(words)]} (usage: {usage})")
    if len(words) > len(names) + len(optional):
        raise CommandError(
            f"{command}: unexpected argument {words[len(names) + len(optional)]!r} (usage: {usage})"
        )
    return dict(zip([*names, *optional], words, strict=False)), given


def _integer_argument(command: str, name: str, text: str, low: int, high: int) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise CommandError(f"{command}: {name} {text!r} is not an integer") from None
    if not low <= value <= high:
        raise CommandError(f"{command}: {name} {value} is out of range {low}..{high}")
    return value


def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of an ascending, non-empty list (fraction 0.5 = median)."""
    import math

    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


if TYPE_CHECKING:
    from typing import Protocol

    class CommandHost(Protocol):
        """What :class:`Commands` reports on and reloads: a :class:`Coprocess`, or outside one
        (``lua2pipe cmd``) ``_lua2pipe.shell.OfflineHost``."""

        script: Script | None
        load_error: str
        abi: int
        log: Log
        questions: int
        failures: int
        latencies: deque[float]  # seconds, most recent last
        started: float  # time.monotonic()

        def use_script(self, script: Script | None, load_error: str = "") -> None: ...


class Commands:
    """The CMD surface of one coprocess, or of any other :class:`CommandHost`.

    ``script_options`` are the keyword arguments ``reload`` passes to :class:`Script` (``lua``,
    ``max_memory_mb``) and ``script_path`` the script it loads; by default both are taken from
    the running script.
    """

    def __init__(
        self,
        coprocess: CommandHost,
        script_options: dict[str, Any] | None = None,
        script_path: str | None = None,
    ) -> None:
        self.coprocess = coprocess
        self.script_options = dict(script_options or {})
        self.script_path = script_path or (coprocess.script.path if coprocess.script else None)
        self.reloads = 0
        self.builtins: dict[str, tuple[Callable[[str], str], str]] = {
            "help": (self.help, "help: list the commands"),
            "version": (self.version, "version: lua2pipe, Lua runtime and script"),
            "stats": (
                self.stats,
                "stats [--json]: questions, failures, latency percentiles, "
                "uptime, Lua memory of this coprocess",
            ),
            "reload": (
                self.reload,
                "reload: load the script again (on failure keep the old one), then SIGHUP the "
                "other coprocesses of --metrics-dir serving it",
            ),
            "domaininfo": (
                self.domaininfo,
                "domaininfo ZONE [--json]: dns_get_domaininfo (or native's SOA fallback without it)",
            ),
            "domains": (self.domains, "domains [--json]: dns_get_all_domains, one zone a line"),
            "metadata": (
                self.metadata,
                "metadata ZONE [KIND] [--json]: dns_get_domain_metadata "
                "of KIND, or dns_get_all_domain_metadata; one KIND=value a line",
            ),
            "keys": (
                self.keys,
                "keys ZONE [--private] [--json]: dns_get_domain_keys, one key a "
                "line; --private adds the private key material",
            ),
            "nsec": (self.nsec, "nsec ID NAME [--json]: dns_get_before_and_after_names_absolute"),
            "set-notified": (self.set_notified, "set-notified ID SERIAL: dns_set_notified"),
        }

    # -- dispatch

    def run(self, text: bytes) -> bytes:
        """The whole CMD answer to ``text`` (what followed ``CMD<TAB>``)."""
        return _cmd_answer(self.execute(text)[1])

    def execute(self, text: bytes) -> tuple[int, str]:
        """Runs one command: (status, answer text without END). Status 0: done, 1: not found,
        2: error."""
        try:
            command = text.decode("utf-8")
        except UnicodeDecodeError:
            return 2, "error: command is not valid UTF-8"
        try:
            return 0, self._execute(command)
        except CommandNotFound as exc:
            return 1, f"not found: {one_line(str(exc))}"
        except CommandError as exc:
            return 2, f"error: {one_line(str(exc))}"
        except Exception as exc:  # a bug must not desync pdns: still one line and END
            self.coprocess.log(3, "CMD failed", command=command, error=repr(exc))
            return 2, f"error: {one_line(type(exc).__name__ + ': ' + str(exc))}"

    @staticmethod
    def _first_word(command: str) -> tuple[str, str]:
        """As native lua2: the text up to the first space or tab, and the rest after exactly one
        separator (the argument)."""
        separator = min((i for i in (command.find(" "), command.find("\t")) if i >= 0), default=-1)
        return (command, "") if separator < 0 else (command[:separator], command[separator + 1 :])

    def _execute(self, command: str) -> str:
        word, argument = self._first_word(command)
        if word == "lua2pipe":  # the built-in, even when the script defines a function so named
            name, rest = self._first_word(argument.strip())
            if name not in self.builtins:
                raise CommandError(f"lua2pipe {name!r} is not a built-in command (try help)")
            return self.builtins[name][0](rest)
        script = self.coprocess.script
        script_function = script is not None and bool(script.dispatch.is_script_function(word.encode()))
        if word in self.builtins and not script_function:
            return self.builtins[word][0](argument)
        if not word:
            raise CommandError("empty command (try help)")
        script = self._script()
        if not script_function:
            raise CommandError(
                f"unknown command {word!r}: neither a lua2pipe command nor a "
                "function the script defined (try help)"
            )
        result = script.dispatch.call_command(word.encode(), argument.encode())
        if type(result) is bytes:
            return result.decode("utf-8", "backslashreplace")
        raise CommandError(from_lua(result[1]))

    def _script(self) -> Script:
        script = self.coprocess.script
        if script is None:
            raise CommandError(f"script not loaded: {self.coprocess.load_error}")
        return script

    @staticmethod
    def _render(result: Any, warnings: list[str], json_form: bool, lines: list[str]) -> str:
        if json_form:
            import json

            return json.dumps({"result": result, "warnings": warnings}, ensure_ascii=False, sort_keys=True)
        return "\n".join([*lines, *(f"warning: {w}" for w in warnings)])

    # -- lua2pipe's own commands

    def help(self, _argument: str) -> str:
        script = self.coprocess.script
        functions = from_lua(script.dispatch.script_functions()).split() if script is not None else []
        lines = []
        for name, (_, usage) in self.builtins.items():
            shadowed = name in functions
            lines.append(
                usage + (f" (the script's {name}() comes first: use 'lua2pipe {name}')" if shadowed else "")
            )
        lines.append(
            "NAME ARGS: call the script's function NAME with ARGS as one string "
            "(as native lua2's backend-cmd)"
        )
        lines.append("script functions: " + (" ".join(functions) if functions else "(none)"))
        return "\n".join(lines)

    def version(self, _argument: str) -> str:
        script = self.coprocess.script
        if script is None:
            return f"lua2pipe {VERSION}, script not loaded"
        return f"lua2pipe {VERSION} {script.version} {script.path}"

    def stats(self, argument: str) -> str:
        _, flags = _split_arguments("stats", argument, [])
        host = self.coprocess
        samples = sorted(host.latencies)
        pairs: list[tuple[str, Any]] = [
            ("questions", host.questions),
            ("failures", host.failures),
            ("latency_samples", len(samples)),
        ]
        for label, fraction in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("max", 1.0)):
            pairs.append(
                (f"latency_{label}_ms", round(percentile(samples, fraction) * 1000, 3) if samples else None)
            )
        pairs.append(("uptime_seconds", round(time.monotonic() - host.started, 1)))
        script = host.script
        if script is not None:
            pairs.append(("lua_memory_kb", round(float(script.dispatch.memory_kb()), 1)))
            pairs.append(("lua", script.version))
            pairs.append(("script", script.path))
        else:
            pairs.append(("lua_memory_kb", None))
            pairs.append(("script_error", host.load_error))
        pairs.append(("reloads", self.reloads))
        result = dict(pairs)
        lines = [f"{key}={_field(value)}" for key, value in pairs]
        return self._render(result, [], "--json" in flags, lines)

    def reload_options(self) -> tuple[str, dict[str, Any]]:
        """The script's path and the keyword arguments of :class:`Script` that load it again."""
        old = self.coprocess.script
        path = old.path if old is not None else self.script_path
        if not path:
            raise CommandError("reload: the script's path is unknown")
        options = dict(self.script_options)
        if old is not None:
            options.setdefault("lua", old.runtime_name)
            if old.max_memory_mb:
                options.setdefault("max_memory_mb", old.max_memory_mb)
        return path, options

    def reload(self, argument: str) -> str:
        _split_arguments("reload", argument, [], flags=())
        host = self.coprocess
        old = host.script
        path, options = self.reload_options()
        started = time.monotonic()
        try:
            new = Script(path, log=host.log, **options)
        except ScriptError as exc:
            keeping = "the previous script" if old is not None else "nothing (no script loaded)"
            host.log(3, "reload failed", script=path, error=str(exc))
            raise CommandError(f"reload failed, still serving {keeping}: {exc}") from None
        load_ms = (time.monotonic() - started) * 1000
        if host.abi:
            new.set_abi(host.abi)
        host.use_script(new)
        self.script_path = path
        self.reloads += 1
        if old is not None:
            old.deinit()
        host.log(6, "script reloaded", script=path, trigger="CMD reload", load_ms=round(load_ms, 1))
        answer = f"reloaded {path} in {load_ms:.1f} ms; hooks: {' '.join(new.hooks)}"
        # pdnsutil backend-cmd reaches only its own fresh coprocess: the serving ones hear it from
        # here, once the script has proved it loads (outside a coprocess, lua2pipe cmd, nobody).
        operations: Operations | None = getattr(host, "operations", None)
        return answer if operations is None else f"{answer}\n{operations.signal_peers()}"

    # -- the hooks pdns never calls through the pipe

    @staticmethod
    def _info_pairs(info: dict[str, Any]) -> list[tuple[str, Any]]:
        return [
            ("id", info["id"]),
            ("kind", info["kind"]),
            ("serial", info["serial"]),
            ("notified_serial", info["notified_serial"]),
            ("last_check", info["last_check"]),
            ("account", info["account"]),
            ("masters", ",".join(info["masters"])),
            ("source", info["source"]),
        ]

    def _info_line(self, info: dict[str, Any]) -> str:
        return f"{_field(info['zone'])} {_fields(self._info_pairs(info))}"

    def _info_json(self, info: dict[str, Any]) -> dict[str, Any]:
        return {"zone": info["zone"], **dict(self._info_pairs(info)), "masters": info["masters"]}

    def domaininfo(self, argument: str) -> str:
        args, flags = _split_arguments("domaininfo", argument, ["ZONE"])
        info, warnings = _hook_result(self._script().dispatch.cmd_domaininfo(args["ZONE"].encode()))
        return self._render(self._info_json(info), warnings, "--json" in flags, [self._info_line(info)])

    def domains(self, argument: str) -> str:
        _, flags = _split_arguments("domains", argument, [])
        infos, warnings = _hook_result(self._script().dispatch.cmd_all_domains())
        infos = sorted(infos or [], key=lambda info: _canonical_key(info["zone"]))
        return self._render(
            [self._info_json(i) for i in infos],
            warnings,
            "--json" in flags,
            [self._info_line(i) for i in infos],
        )

    def metadata(self, argument: str) -> str:
        args, flags = _split_arguments("metadata", argument, ["ZONE"], ["KIND"])
        dispatch = self._script().dispatch
        if "KIND" in args:
            values, warnings = _hook_result(
                dispatch.cmd_metadata(args["ZONE"].encode(), args["KIND"].encode())
            )
            kinds = [(args["KIND"], values or [])]
        else:
            pairs, warnings = _hook_result(dispatch.cmd_all_metadata(args["ZONE"].encode()))
            kinds = [(kind, values or []) for kind, values in pairs or []]
        lines = [f"{kind}={_metadata_value(value)}" for kind, values in kinds for value in values]
        return self._render(dict(kinds), warnings, "--json" in flags, lines)

    def keys(self, argument: str) -> str:
        args, flags = _split_arguments("keys", argument, ["ZONE"], flags=("--json", "--private"))
        keys, warnings = _hook_result(self._script().dispatch.cmd_keys(args["ZONE"].encode()))
        # cryptography: only keys pays, and not on the question's clock
        content_digest, key_fingerprint = self.coprocess.log.off_the_clock(_keys_functions)

        private = "--private" in flags
        lines, result = [], []
        for key in keys or []:
            algorithm, tag = key_fingerprint(key["flags"], key["content"])
            described = {
                "id": key["id"],
                "flags": key["flags"],
                "active": key["active"],
                "published": key["published"],
                "algorithm": algorithm,
                "tag": tag,
                "sha256": content_digest(key["content"]),
            }
            lines.append(_fields(list(described.items())))
            if private:
                described["content"] = key["content"]
                lines.extend("  " + one_line(line) for line in key["content"].splitlines() if line.strip())
            result.append(described)
        return self._render(result, warnings, "--json" in flags, lines)

    def nsec(self, argument: str) -> str:
        args, flags = _split_arguments("nsec", argument, ["ID", "NAME"])
        zone_id = _integer_argument("nsec", "ID", args["ID"], -(2**31), 2**31 - 1)
        names, warnings = _hook_result(self._script().dispatch.cmd_nsec(zone_id, args["NAME"].encode()))
        ordered = [(key, names[key]) for key in ("unhashed", "before", "after")]
        return self._render(dict(ordered), warnings, "--json" in flags, [_fields(ordered)])

    def set_notified(self, argument: str) -> str:
        args, _ = _split_arguments("set-notified", argument, ["ID", "SERIAL"], flags=())
        zone_id = _integer_argument("set-notified", "ID", args["ID"], -(2**31), 2**31 - 1)
        serial = _integer_argument("set-notified", "SERIAL", args["SERIAL"], 0, 2**32 - 1)
        _hook_result(self._script().dispatch.cmd_set_notified(zone_id, serial))
        return f"ok: dns_set_notified({zone_id}, {serial}) called"


def _keys_functions() -> tuple[Callable[[str], str], Callable[[int, str], tuple[int | None, int | None]]]:
    from _lua2pipe.keys import content_digest, key_fingerprint

    return content_digest, key_fingerprint


def _canonical_key(zone: str) -> Any:
    """Sort key of a zone name in DNSSEC canonical order (dnspython's name order)."""
    import dns.name

    try:
        return (0, dns.name.from_text(zone))
    except Exception:
        return (1, zone)


def _metadata_value(value: str) -> str:
    """A metadata value as the rest of a line: as is, unless it has control characters or
    leading or trailing white space, or is empty or starts with a quote (then a JSON string)."""
    import json

    if value and value.isprintable() and value == value.strip() and not value.startswith('"'):
        return value
    return json.dumps(value, ensure_ascii=False)


def _cmd_answer(text: str) -> bytes:
    """CMD answer lines: pdns reads until a line that is exactly END and strips trailing white
    space, so a result line "END" is sent as " END"."""
    lines = [" END" if line.rstrip() == "END" else line for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    return "".join(line + "\n" for line in lines).encode("utf-8", "backslashreplace") + b"END\n"


# ---------------------------------------------------------------------------------------------
# The command line. ``lua2pipe SCRIPT [options]`` is the coprocess pdns runs; the subcommands
# (``lua2pipe COMMAND --help``) serve operators in a shell, with the same script loading.


def _coprocess_parser() -> Any:
    import argparse

    subcommands = "\n".join(f"  {name:8} {summary}" for name, (_, _, summary) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="lua2pipe",
        usage=f"lua2pipe SCRIPT [options]\n       lua2pipe {{{','.join(SUBCOMMANDS)}}} ...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="PowerDNS pipe-backend coprocess running a lua2 backend script.\n\n"
        "pdns.conf:\n"
        "  launch=pipe\n"
        "  pipe-command=/abs/path/lua2pipe /abs/path/zone.lua\n"
        "  pipe-abi-version=5\n"
        "  zone-cache-refresh-interval=0\n\n"
        f"Subcommands for a shell (lua2pipe COMMAND --help):\n{subcommands}",
        epilog="Debugging from a shell:\n"
        "  printf 'HELO\\t5\\nQ\\twww.example.org\\tIN\\tANY\\t-1\\t192.0.2.1\\t192.0.2.53\\t0.0.0.0/0\\n' "
        "|\n    lua2pipe zone.lua",
    )
    parser.add_argument("script", help="the lua2 script (the file lua2-filename would name)")
    add_script_options(parser)
    parser.add_argument(
        "--query-logging",
        action="store_true",
        help="log every hook call and its result (as lua2-query-logging=yes)",
    )
    parser.add_argument(
        "--max-query-ms",
        type=int,
        default=1000,
        metavar="MS",
        help="answer LOG + FAIL for a hook still running after MS milliseconds and "
        "restart with a fresh Lua state (default 1000, below pdns's pipe-timeout of "
        "2000; 0 disables)",
    )
    parser.add_argument(
        "--no-watch",
        action="store_true",
        help="do not reload when the script file changes (SIGHUP and CMD reload still do)",
    )
    parser.add_argument(
        "--metrics-dir",
        metavar="DIR",
        help="keep this coprocess's numbers in DIR/lua2pipe-PID-START.prom (Prometheus text, "
        "for node_exporter's textfile collector and lua2pipe metrics); CMD reload finds the "
        "other coprocesses there",
    )
    parser.add_argument("--version", action="version", version=f"lua2pipe {VERSION}")
    parser.add_argument("--resume", help=argparse.SUPPRESS)  # ABI:FD, set by the watchdog
    parser.add_argument(
        "--record",
        metavar="FILE",
        help="write the session to FILE as a transcript (conformance/README.md); "
        "%%p in FILE is the process id, and an existing FILE is never overwritten: "
        "the pid goes before its extension",
    )
    return parser


def add_script_options(parser: Any) -> None:
    """The options every mode shares: how the script is loaded and how lua2pipe logs."""
    parser.add_argument(
        "--lua",
        choices=sorted(LUA_RUNTIMES),
        default="luajit",
        help="Lua runtime (default: luajit, LuaJIT 2.1 as pdns links it)",
    )
    parser.add_argument(
        "--loglevel",
        type=int,
        default=4,
        choices=range(8),
        metavar="0-7",
        help="highest syslog level written, as pdns's loglevel (default 4: warnings)",
    )
    parser.add_argument(
        "--log-format", choices=("kv", "json"), default="kv", help="log lines as key=value (default) or JSON"
    )
    parser.add_argument(
        "--max-memory",
        type=int,
        metavar="MB",
        help="cap the Lua heap at MB megabytes; a hook exceeding it fails its question (default: no cap)",
    )


def log_from_args(args: Any) -> Log:
    return Log(level=args.loglevel, json=args.log_format == "json")


def serve_main(argv: list[str]) -> int:
    """``lua2pipe SCRIPT [options]``: the coprocess."""
    import signal

    # SIGHUP reloads (the watchdog waits for it): held pending from here, not fatal while loading.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    args = _coprocess_parser().parse_args(argv)
    log = log_from_args(args)
    if args.resume:
        mode, pending_fd = args.resume.split(":")
        remote = mode == REMOTE_RESUME
        abi = 0 if remote else int(mode)
        with os.fdopen(int(pending_fd), "rb") as pending_file:
            pending = pending_file.read()
    else:
        abi, pending = 0, b""
    protocol_in, protocol_out = private_protocol_streams()
    recorder = None
    if args.record:  # chosen once: a session that is not recorded never loads the recorder
        from _lua2pipe.record import open_recorder

        recorder = open_recorder(args.record, args.script, argv, log, resume=bool(args.resume))
    if not args.resume:
        # The first byte decides the protocol: "{" is the remote backend's initialize (answered
        # before the script loads), anything else the pipe's HELO.
        pending = os.read(protocol_in, 1)
        remote = pending == b"{"
        if remote:
            pending = answer_initialize(protocol_in, protocol_out, pending, recorder)
    # pdns waits pipe-timeout for HELO's answer, which waits for the script to load: say why in
    # the log when loading (top level, dns_init) is slow or never ends.
    slow_load = threading.Timer(
        SLOW_LOAD_SECONDS,
        log,
        (
            3,
            "script still loading",
        ),
        {
            "script": args.script,
            "after_ms": round(SLOW_LOAD_SECONDS * 1000),
            "consequence": "requests wait for it: pdns times out at the remote-connection-string timeout"
            if remote
            else "HELO is not answered until it finishes: pdns times out at pipe-timeout",
        },
    )
    slow_load.daemon = True
    slow_load.start()
    # A fresh state after a runaway hook (--resume) loads while pdns waits for its next answer:
    # dns_init and the top level are bounded there like a hook, but never below pdns's default
    # pipe-timeout, by which pdns has given up on that answer anyway. A load on a busy machine
    # (interpreter, Lua state, structlog at the script's first print) outlasts a short
    # --max-query-ms in wall-clock time: 200 ms was measured too short under a load average of 7.
    # So does remote mode's first load: pdns starts the coprocess for a request it writes right
    # after initialize's reply (PipeConnector::send_message calls launch), so it is waiting,
    # and an exit is a "Child closed pipe" it recovers from with a new coprocess. With
    # timeout=0 in the connection string nothing else would ever end that wait.
    load_limit_ms = max(args.max_query_ms, PDNS_PIPE_TIMEOUT_MS)
    stuck_event = "script still loading" + (" in a fresh state" if args.resume else "") + ": exiting"
    stuck_load = threading.Timer(load_limit_ms / 1000, _stop_loading, (log, load_limit_ms, stuck_event))
    stuck_load.daemon = True
    if (abi or remote) and args.max_query_ms:
        stuck_load.start()
    try:
        script, load_error = load_script(args.script, log, lua=args.lua, max_memory_mb=args.max_memory)
    finally:
        slow_load.cancel()
        stuck_load.cancel()
        # Gone before serving: each was started before the watchdog blocks SIGTERM, so while it
        # lives the kernel may hand SIGTERM to it, and the default action kills lua2pipe with
        # status -15 instead of the watchdog's clean exit.
        slow_load.join()
        if stuck_load.is_alive():
            stuck_load.join()
    if script is not None and abi:
        script.set_abi(abi)
    interpreter = [sys.executable, "-I"] if sys.flags.isolated else [sys.executable]
    # The watchdog's restart runs lua2pipe as it was started: as a file, or imported by name.
    program = [os.path.abspath(__file__)] if __spec__ is None else ["-c", RUN_BY_NAME]
    resume_index = argv.index("--resume") if args.resume else len(argv)
    settings: dict[str, Any] = {
        "load_error": load_error,
        "log": log,
        "query_logging": args.query_logging,
        "max_query_ms": args.max_query_ms,
        "resume_abi": abi,
        "pending": pending,
        "restart_argv": [*interpreter, *program, *argv[:resume_index]],
        "script_path": args.script,
        "script_options": {"lua": args.lua, "max_memory_mb": args.max_memory},
        "watch": not args.no_watch,
        "metrics_dir": args.metrics_dir,
        "resumed": bool(args.resume),
    }
    coprocess: Coprocess
    if recorder is not None:
        from _lua2pipe.record import RecordingCoprocess, RecordingRemoteCoprocess

        recording = RecordingRemoteCoprocess if remote else RecordingCoprocess
        coprocess = recording(recorder, script, protocol_in, protocol_out, **settings)
    elif script is not None and script.lua_loop is not None and not args.query_logging:
        lua_loop = LuaLoopRemoteCoprocess if remote else LuaLoopCoprocess
        coprocess = lua_loop(script, protocol_in, protocol_out, **settings)
    elif remote:
        coprocess = RemoteCoprocess(script, protocol_in, protocol_out, **settings)
    else:
        coprocess = Coprocess(script, protocol_in, protocol_out, **settings)
    try:
        return coprocess.serve()
    except BrokenPipeError:
        return 0  # pdns went away
    finally:
        coprocess.operations.close()


#: ``lua2pipe NAME ...``: the operator's subcommands, as (module, function, one-line summary).
#: The module is imported only when its subcommand runs, so the coprocess pdns starts never
#: loads them: startup is on pdns's clock.
SUBCOMMANDS = {
    "check": (
        "_lua2pipe.shell",
        "check_main",
        "load a script and report what works through pdns's pipe backend",
    ),
    "query": (
        "_lua2pipe.shell",
        "query_main",
        "call dns_lookup as pdns does and print the records as a zone file",
    ),
    "axfr": ("_lua2pipe.shell", "axfr_main", "call dns_list as pdns does for an AXFR and print the zone"),
    "cmd": ("_lua2pipe.shell", "cmd_main", "run a CMD (pdnsutil backend-cmd pipe) command without pdns"),
    "replay": (
        "_lua2pipe.replay",
        "replay_main",
        "run protocol transcripts through lua2pipe and diff the answers",
    ),
    "metrics": (
        "_lua2pipe.metrics",
        "metrics_main",
        "sum the numbers of every live coprocess in a --metrics-dir (a table, or --json)",
    ),
}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lua2pipe`` executable."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        import importlib

        module, function, _ = SUBCOMMANDS[argv[0]]
        run: Callable[[list[str]], int] = getattr(importlib.import_module(module), function)
        return run(argv[1:])
    return serve_main(argv)


if __name__ == "__main__":
    # Run as a file or with -m, this module is __main__. The _lua2pipe package imports it as
    # ``lua2pipe``: register it under that name too, so that import finds this module instead
    # of executing a second copy with its own classes (Coprocess, ScriptError, ...).
    sys.modules.setdefault("lua2pipe", sys.modules[__name__])
    sys.exit(main())
