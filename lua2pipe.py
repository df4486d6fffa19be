"""lua2pipe: run PowerDNS lua2 backend scripts out of process, through the pdns pipe backend.

pdns starts ``lua2pipe SCRIPT [options]`` as its pipe-backend coprocess (``launch=pipe``) and
talks the pipe protocol (ABI 1 to 5) over stdin and stdout. lua2pipe loads the lua2 script once
into one Lua state with the environment native ``launch=lua2`` gives it, answers ``Q`` with
``dns_lookup``, ``AXFR`` with ``dns_list`` and ``CMD`` (``pdnsutil backend-cmd``) with the other
hooks. The same script, unchanged, gives the same DNS answers as under ``launch=lua2``.

Sections, in order: settings and errors; logging; the Lua state (environment, script, hook
dispatcher); answers; the coprocess loop; CMD; the command line. The Lua half lives in
``lua/environment.lua`` (the AuthLua4 environment) and ``lua/dispatch.lua`` (the hook
dispatcher: one crossing into Lua per question).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

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

#: Fields of a ``Q`` line for each pipe ABI: ABI 2 adds the local address, ABI 3 the real remote.
Q_FIELDS = {1: 6, 2: 7, 3: 8, 4: 8, 5: 8}

#: pdns's syslog levels, as ``pdns.loglevels`` names them.
LOG_LEVELS = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")


def _lua_dir() -> Path:
    """Where the Lua half is: beside this file in a checkout, under share/ when installed."""
    here = Path(__file__).resolve().parent / "lua"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "lua2pipe"


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


class Log:
    """The process's logger: ``key=value`` lines by default, JSON lines with ``json=True``.

    ``level`` is pdns's ``loglevel``: events above it are not written, as in pdns.
    """

    def __init__(self, level: int = 4, json: bool = False, stream: Any = None) -> None:
        self.level = level
        self.json = json
        self.stream = stream
        self._logger: Any = None

    def _configure(self) -> Any:
        import structlog

        def clean(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
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
            structlog.PrintLogger(self.stream or sys.stderr),
            processors=[clean, structlog.processors.TimeStamper(fmt="iso"), renderer],
            context_class=dict,
        )

    def __call__(self, level: int, event: str, *, force: bool = False, **fields: Any) -> None:
        """Writes one event at pdns syslog ``level`` (0 emergency ... 7 debug); ``force``
        writes it whatever the level (query logging)."""
        if level > self.level and not force:
            return
        if self._logger is None:
            self._logger = self._configure()
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

    def __init__(self, path: str, *, lua: str = "luajit", log: Log | None = None,
                 max_memory_mb: int | None = None) -> None:
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
        self.version = self.lua.eval("jit and jit.version or _VERSION").decode()
        lua_globals = self.lua.globals()
        lua_globals.python = None
        self._load_chunk = self.lua.eval(
            "function(source, name)"
            " local chunk, err = (loadstring or load)(source, name)"
            " if not chunk then error(err, 0) end"
            " return chunk end"
        )
        self._run_chunk = self.lua.eval(
            "function(chunk) local ok, err = pcall(chunk)"
            " if not ok then error(tostring(err), 0) end end"
        )
        lua_dir = _lua_dir()
        environment = self._chunk(lua_dir / "environment.lua")()
        host = self.lua.table_from({
            b"log": self._lua_log,
            b"resolve": self._lua_resolve,
            b"parse_content": self._lua_parse_content,
            b"random_seed": int.from_bytes(os.urandom(4), "little"),
        })
        environment.install(host, lua_globals)
        try:
            source = Path(path).read_bytes()
        except OSError as exc:
            raise ScriptError(f"cannot read script {path}: {exc.strerror}") from None
        chunk_name = b"@" + os.fsencode(path)
        before_script = self.lua.eval("function(G) local copy = {} for k, v in pairs(G) do copy[k] = v end"
                                      " return copy end")(lua_globals)
        try:
            self._run_chunk(self._load_chunk(source, chunk_name))
        except self.LuaError as exc:
            raise ScriptError(_lua_message(exc)) from None
        self.dispatch = self._chunk(lua_dir / "dispatch.lua")(environment, lua_globals, before_script)
        try:
            hooks, dnssec = self.dispatch.capture(chunk_name)
        except self.LuaError as exc:
            raise ScriptError(_lua_message(exc)) from None
        self.hooks: list[str] = hooks.decode().split()
        self.dnssec: bool = bool(dnssec)
        if self.dnssec and "dns_get_domain_keys" not in self.hooks:
            self.log(4, "dns_get_domain_keys missing - cannot do live signing", script=path)

    def _chunk(self, path: Path) -> Any:
        return self._load_chunk(path.read_bytes(), b"=" + path.name.encode())

    def set_abi(self, abi: int) -> None:
        """Tells the dispatcher which answer layout pdns asked for in HELO."""
        self.dispatch.set_abi(abi)

    def deinit(self) -> str | None:
        """Runs ``dns_deinit``; returns the error message if it failed."""
        why = self.dispatch.deinit()
        return why.decode("utf-8", "backslashreplace") if why else None

    # Callbacks the environment calls (host table of environment.lua).

    def _lua_log(self, level: Any, message: bytes) -> None:
        self.log(int(level), message.decode("utf-8", "backslashreplace"), source="script")

    def _lua_resolve(self, qname: bytes, qtype: int) -> Any:
        import dns.resolver

        try:
            answer = dns.resolver.resolve(qname.decode(), int(qtype), raise_on_no_answer=False)
        except Exception as exc:  # the script sees an empty result, the log sees why
            self.log(4, "resolve failed", qname=qname, qtype=int(qtype), error=str(exc))
            return self.lua.table_from([])
        rows = [
            self.lua.table_from({
                b"name": rrset.name.to_text().encode(),
                b"type": rrset.rdtype,
                b"ttl": rrset.ttl,
                b"content": rdata.to_text().encode(),
            })
            for rrset in answer.response.answer
            for rdata in rrset
        ]
        return self.lua.table_from(rows)

    def _lua_parse_content(self, code: int, content: bytes) -> bytes:
        import dns.exception
        import dns.rdata

        try:
            rdata = dns.rdata.from_text(1, int(code), content.decode("utf-8", "surrogateescape"))
        except (dns.exception.DNSException, ValueError) as exc:
            raise ValueError(
                f"Parsing record content (try 'pdnsutil check-zone'): {exc}"
            ) from None
        return rdata.to_text().encode()


def _lua_message(exc: Exception) -> str:
    message = exc.args[0] if exc.args else str(exc)
    if isinstance(message, bytes):
        message = message.decode("utf-8", "backslashreplace")
    return str(message)


# ---------------------------------------------------------------------------------------------
# Answers. Every answer ends in END, or in FAIL after a LOG line that says why; FAIL is never
# followed by END except after a zone-walk SOA question (type SOA, id -1), where pdns's getSOA
# drains one more line (spec 1.7).


def log_line(reason: str | bytes) -> bytes:
    """A ``LOG`` answer line: one line, control bytes escaped, never empty (pdns desyncs on a
    bare LOG)."""
    if isinstance(reason, str):
        reason = reason.encode("utf-8", "backslashreplace")
    if not reason.isascii() or any(b < 32 or b == 127 for b in reason):
        reason = "".join(
            chr(b) if 32 <= b < 127 else f"\\x{b:02x}" for b in reason
        ).encode()
    return b"LOG\t" + (reason or b"error") + b"\n"


def fail_answer(reason: str | bytes, zone_walk: bool = False) -> bytes:
    """``LOG`` + ``FAIL`` (+ ``END`` for a zone-walk SOA question)."""
    return log_line(reason) + (b"FAIL\nEND\n" if zone_walk else b"FAIL\n")


# ---------------------------------------------------------------------------------------------
# The coprocess loop. pdns asks one question at a time and waits for its answer, bounded by
# pipe-timeout; a watchdog thread answers for a hook that runs past --max-query-ms and then
# replaces the process image (same pid, same pipes) to get a fresh Lua state.


def _parse_id(field: bytes) -> int:
    if field.isdigit() or (field[:1] == b"-" and field[1:].isdigit()):
        value = int(field)
        if -(2**31) <= value < 2**31:
            return value
    raise ProtocolError(f"zone id {field.decode('ascii', 'backslashreplace')!r} is not a 32-bit integer")


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
        return self.buffer[self.position:]

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
                raise ProtocolError(f"line longer than {MAX_LINE} bytes")
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.buffer, self.position = b"", 0
                return buffer[start:] or None
            buffer = buffer[start:] + chunk
            end = buffer.find(b"\n", searched - start)
            start = 0
            self.buffer, self.position = buffer, 0
        self.position = end + 1
        return buffer[start:end]

    def _skip_line(self) -> None:
        while True:
            chunk = os.read(self.fd, 65536)
            end = chunk.find(b"\n")
            if not chunk or end >= 0:
                self.buffer, self.position = chunk[end + 1:] if chunk else b"", 0
                return


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
    """Serves the pipe protocol for one :class:`Script` (or a load error) on two descriptors.

    ``script`` is the loaded script, or the :class:`ScriptError` that prevented loading: then
    HELO answers FAIL and every question answers LOG + FAIL naming the error, so pdns's log
    says why instead of timing out. ``resume_abi`` continues a session after a restart (no HELO).
    """

    def __init__(self, script: Script | ScriptError, input_fd: int, output_fd: int, *,
                 log: Log | None = None, query_logging: bool = False, max_query_ms: int = 0,
                 restart_argv: list[str] | None = None, resume_abi: int = 0,
                 pending: bytes = b"") -> None:
        self.script = script
        self.reader = LineReader(input_fd, pending)
        self.output_fd = output_fd
        self.log = log or Log()
        self.query_logging = query_logging
        self.abi = resume_abi
        self.questions = 0
        self.failures = 0
        self.latencies: deque[float] = deque(maxlen=10000)
        self.started = time.monotonic()
        self.commands = Commands(self)
        # Shared with the watchdog: the question in hand and when it started (0.0: none), and
        # the lock that makes "answer it" happen once, by the loop or by the watchdog.
        self.in_hand = b""
        self.busy_since = 0.0
        self.answer_lock = threading.Lock()
        self.watchdog = Watchdog(self, max_query_ms / 1000, restart_argv)

    def write(self, data: bytes) -> None:
        _write_all(self.output_fd, data)

    # -- the loop

    def serve(self) -> int:
        """Answers questions until EOF. Returns the process exit code."""
        if not self.abi and not self._handshake():
            return 1
        self.watchdog.start()
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
                self.write(fail_answer(str(exc)))
                continue
            if line is None:
                break
            self.in_hand = line
            started = self.busy_since = clock()
            text = answer(line)
            with lock:
                self.busy_since = 0.0
                _write_all(output_fd, text)
            record_latency(clock() - started)
        if isinstance(self.script, Script):
            why = self.script.deinit()
            if why:
                self.log(3, "dns_deinit failed", error=why)
        return 0

    def _handshake(self) -> bool:
        try:
            line = self.reader.readline()
        except ProtocolError:
            line = b""
        if line is None:
            return False
        fields = line.split(b"\t")
        abi = int(fields[1]) if len(fields) == 2 and fields[0] == b"HELO" and fields[1].isdigit() else 0
        if abi not in Q_FIELDS:
            self.log(3, "expected HELO with a pipe ABI from 1 to 5", line=line)
            self.write(b"FAIL\n")
            # pdns's documented contract: read one more line, then wait to be terminated.
            with contextlib.suppress(ProtocolError):
                while self.reader.readline() is not None:
                    pass
            return False
        self.abi = abi
        if isinstance(self.script, ScriptError):
            self.write(b"FAIL\n")
            return True  # keep answering, each question naming the load error
        self.script.set_abi(abi)
        self.write(self.banner())
        return True

    def banner(self) -> bytes:
        script = self.script
        version = script.version if isinstance(script, Script) else "script not loaded"
        return f"OK\tlua2pipe {VERSION} ({version}) serving {script.path}\n".encode(
            "utf-8", "backslashreplace")

    def answer(self, line: bytes) -> bytes:
        """The complete answer text to one protocol line."""
        fields = line.split(b"\t")
        tag = fields[0]
        try:
            if not line.isascii():
                try:
                    line.decode("utf-8")
                except UnicodeDecodeError:
                    raise ProtocolError("line is not valid UTF-8") from None
            if tag == b"Q":
                return self._lookup(fields)
            if tag == b"AXFR":
                return self._list(fields)
            if tag == b"CMD" and self.abi >= 5:
                return self.commands.run(line[4:])
            if not line:
                raise ProtocolError("empty line")
            raise ProtocolError(f"unknown question {tag.decode('ascii', 'backslashreplace')!r}"
                                + (" (CMD needs pipe-abi-version=5)" if tag == b"CMD" else ""))
        except ProtocolError as exc:
            self.failures += 1
            return fail_answer(f"malformed question: {exc}")

    def _lookup(self, fields: list[bytes]) -> bytes:
        abi = self.abi
        if len(fields) != Q_FIELDS[abi]:
            raise ProtocolError(f"Q at pipe ABI {abi} has {Q_FIELDS[abi]} fields, this one {len(fields)}")
        if fields[2] != b"IN":
            raise ProtocolError(f"qclass {fields[2].decode('ascii', 'backslashreplace')!r} is not IN")
        zone_id = _parse_id(fields[4])
        self.questions += 1
        if isinstance(self.script, ScriptError):
            self.failures += 1
            return fail_answer(f"script not loaded: {self.script}", fields[3] == b"SOA" and zone_id == -1)
        answer = self.script.dispatch.lookup(
            fields[1], fields[3], zone_id, fields[5],
            fields[6] if abi >= 2 else None, fields[7] if abi >= 3 else None,
        )
        if self.query_logging:
            self._log_question("lookup", fields[1], fields[3], zone_id, answer)
        if type(answer) is bytes:
            return answer
        self.failures += 1
        return fail_answer(answer[1], fields[3] == b"SOA" and zone_id == -1)

    def _list(self, fields: list[bytes]) -> bytes:
        expected = 3 if self.abi >= 4 else 2
        if len(fields) != expected:
            raise ProtocolError(f"AXFR at pipe ABI {self.abi} has {expected} fields, this one {len(fields)}")
        zone_id = _parse_id(fields[1])
        self.questions += 1
        if isinstance(self.script, ScriptError):
            self.failures += 1
            return fail_answer(f"script not loaded: {self.script}")
        zone = fields[2] if self.abi >= 4 else None
        answer = self.script.dispatch.list(zone_id, zone)
        if self.query_logging:
            self._log_question("list", zone or b"", b"AXFR", zone_id, answer)
        if type(answer) is bytes:
            return answer
        self.failures += 1
        return fail_answer(answer[1])

    def _log_question(self, hook: str, qname: bytes, qtype: bytes, zone_id: int, answer: Any) -> None:
        if type(answer) is bytes:
            self.log(6, f"[lua2] {hook}", force=True, qname=qname, qtype=qtype, domain_id=zone_id,
                     result=answer.decode("utf-8", "backslashreplace").rstrip("\n").split("\n"))
        else:
            self.log(6, f"[lua2] {hook} failed", force=True, qname=qname, qtype=qtype, domain_id=zone_id,
                     error=answer[1])


def _write_all(fd: int, data: bytes) -> None:
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

    POLL_SECONDS = 0.02

    def __init__(self, coprocess: Coprocess, limit_seconds: float, restart_argv: list[str] | None) -> None:
        self.coprocess = coprocess
        self.limit = limit_seconds
        self.restart_argv = restart_argv
        self.thread = threading.Thread(target=self._run, name="lua2pipe-watchdog", daemon=True)

    def start(self) -> None:
        if threading.current_thread() is threading.main_thread():
            # SIGTERM must reach this thread's sigtimedwait even while the main thread runs Lua.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        self.thread.start()

    def _run(self) -> None:
        coprocess = self.coprocess
        while True:
            if signal.sigtimedwait({signal.SIGTERM}, self.POLL_SECONDS) is not None:
                coprocess.log(6, "SIGTERM: exiting")
                os._exit(0)
            started = coprocess.busy_since
            if not self.limit or not started or time.monotonic() - started < self.limit:
                continue
            with coprocess.answer_lock:
                if coprocess.busy_since != started:
                    continue  # answered meanwhile
                self._answer_for_runaway()

    def _answer_for_runaway(self) -> None:
        coprocess = self.coprocess
        limit_ms = round(self.limit * 1000)
        reason = f"hook still running after {limit_ms} ms (--max-query-ms): stopped, Lua state restarted"
        coprocess.log(3, "runaway hook", limit_ms=limit_ms, action="restarting with a fresh Lua state")
        fields = coprocess.in_hand.split(b"\t")
        zone_walk = len(fields) > 4 and fields[0] == b"Q" and fields[3] == b"SOA" and fields[4] == b"-1"
        try:
            _write_all(coprocess.output_fd, fail_answer(reason, zone_walk))
        except OSError:
            os._exit(0)
        if not self.restart_argv:
            os._exit(1)
        pending = os.memfd_create("lua2pipe-pending", 0)
        os.write(pending, coprocess.reader.pending)
        os.lseek(pending, 0, os.SEEK_SET)
        os.dup2(coprocess.reader.fd, 0)
        os.dup2(coprocess.output_fd, 1)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        os.execv(self.restart_argv[0], [*self.restart_argv, "--resume", f"{coprocess.abi}:{pending}"])


# ---------------------------------------------------------------------------------------------
# CMD: ``pdnsutil backend-cmd pipe 'COMMAND ARGS'`` (pipe ABI 5). The answer is lines, then END.
# A built-in command name wins; any other first word is native lua2's backend-cmd: a function
# the script defined, called with the rest of the text.


class Commands:
    """The CMD surface of one coprocess."""

    def __init__(self, coprocess: Coprocess) -> None:
        self.coprocess = coprocess
        self.builtins: dict[str, tuple[Callable[[str], str], str]] = {
            "help": (self.help, "help: list the commands"),
            "version": (self.version, "version: lua2pipe, Lua runtime and script"),
        }

    def run(self, text: bytes) -> bytes:
        """The whole CMD answer to ``text`` (what followed ``CMD<TAB>``)."""
        try:
            command = text.decode("utf-8")
        except UnicodeDecodeError:
            return _cmd_answer("error: command is not valid UTF-8")
        word, _, argument = command.partition(" ") if " " in command else command.partition("\t")
        if word in self.builtins:
            return _cmd_answer(self.builtins[word][0](argument))
        script = self.coprocess.script
        if isinstance(script, ScriptError):
            return _cmd_answer(f"error: script not loaded: {script}")
        result = script.dispatch.call_script_function(word.encode(), argument.encode())
        if type(result) is bytes:
            return _cmd_answer(result.decode("utf-8", "backslashreplace"))
        return _cmd_answer(result[1].decode("utf-8", "backslashreplace"))

    def help(self, _argument: str) -> str:
        lines = [usage for _, usage in self.builtins.values()]
        lines.append("NAME ARGS: call the script's function NAME with ARGS as one string (as native lua2)")
        return "\n".join(lines)

    def version(self, _argument: str) -> str:
        script = self.coprocess.script
        if isinstance(script, ScriptError):
            return f"lua2pipe {VERSION}, script not loaded"
        return f"lua2pipe {VERSION} {script.version} {script.path}"


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

    parser = argparse.ArgumentParser(
        prog="lua2pipe",
        usage=f"lua2pipe SCRIPT [options]\n       lua2pipe {{{','.join(SUBCOMMANDS)}}} ...",
        description="PowerDNS pipe-backend coprocess running a lua2 backend script. "
        "pdns.conf: launch=pipe, pipe-command=/abs/path/lua2pipe /abs/path/zone.lua, "
        "pipe-abi-version=5, zone-cache-refresh-interval=0. "
        "Subcommands for a shell: " + "; ".join(f"{name}: {doc}" for name, (_, doc) in SUBCOMMANDS.items()),
        epilog="Debugging from a shell: "
        "printf 'HELO\\t5\\nQ\\twww.example.org\\tIN\\tANY\\t-1\\t192.0.2.1\\t192.0.2.53\\t0.0.0.0/0\\n' "
        "| lua2pipe zone.lua",
    )
    parser.add_argument("script", help="the lua2 script (the file lua2-filename would name)")
    add_script_options(parser)
    parser.add_argument("--query-logging", action="store_true",
                        help="log every hook call and its result (as lua2-query-logging=yes)")
    parser.add_argument("--max-query-ms", type=int, default=1000, metavar="MS",
                        help="answer LOG + FAIL for a hook still running after MS milliseconds and "
                        "restart with a fresh Lua state (default 1000, below pdns's pipe-timeout of "
                        "2000; 0 disables)")
    parser.add_argument("--version", action="version", version=f"lua2pipe {VERSION}")
    parser.add_argument("--resume", help=argparse.SUPPRESS)  # ABI:FD, set by the watchdog
    return parser


def add_script_options(parser: Any) -> None:
    """The options every mode shares: how the script is loaded and how lua2pipe logs."""
    parser.add_argument("--lua", choices=sorted(LUA_RUNTIMES), default="luajit",
                        help="Lua runtime (default: luajit, LuaJIT 2.1 as pdns links it)")
    parser.add_argument("--loglevel", type=int, default=4, choices=range(8), metavar="0-7",
                        help="highest syslog level written, as pdns's loglevel (default 4: warnings)")
    parser.add_argument("--log-format", choices=("kv", "json"), default="kv",
                        help="log lines as key=value (default) or JSON")
    parser.add_argument("--max-memory", type=int, metavar="MB",
                        help="cap the Lua heap at MB megabytes; a hook exceeding it fails its "
                        "question (default: no cap)")


def log_from_args(args: Any) -> Log:
    return Log(level=args.loglevel, json=args.log_format == "json")


def serve_main(argv: list[str]) -> int:
    """``lua2pipe SCRIPT [options]``: the coprocess."""
    args = _coprocess_parser().parse_args(argv)
    log = log_from_args(args)
    if args.resume:
        abi, pending_fd = (int(part) for part in args.resume.split(":"))
        with os.fdopen(pending_fd, "rb") as pending_file:
            pending = pending_file.read()
    else:
        abi, pending = 0, b""
    protocol_in, protocol_out = private_protocol_streams()
    script: Script | ScriptError
    try:
        script = Script(args.script, lua=args.lua, log=log, max_memory_mb=args.max_memory)
        if abi:
            script.set_abi(abi)
    except ScriptError as exc:
        log(3, "script failed to load", script=args.script, error=str(exc))
        script = exc
    interpreter = [sys.executable, "-I"] if sys.flags.isolated else [sys.executable]
    resume_index = argv.index("--resume") if args.resume else len(argv)
    coprocess = Coprocess(
        script, protocol_in, protocol_out, log=log, query_logging=args.query_logging,
        max_query_ms=args.max_query_ms, resume_abi=abi, pending=pending,
        restart_argv=[*interpreter, os.path.abspath(__file__), *argv[:resume_index]],
    )
    try:
        return coprocess.serve()
    except BrokenPipeError:
        return 0  # pdns went away


#: ``lua2pipe NAME ...``: the handler (given the remaining arguments) and a one-line summary.
SUBCOMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lua2pipe`` executable."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]][0](argv[1:])
    return serve_main(argv)


if __name__ == "__main__":
    sys.exit(main())
