"""lua2pipe: run PowerDNS lua2 backend scripts out of process, through the pdns pipe backend.

pdns starts ``lua2pipe SCRIPT [options]`` as its pipe-backend coprocess (``launch=pipe``) and
talks the pipe protocol (ABI 1 to 5) over stdin and stdout. lua2pipe loads the lua2 script once
into one Lua state with the environment native ``launch=lua2`` gives it, answers ``Q`` with
``dns_lookup``, ``AXFR`` with ``dns_list`` and ``CMD`` (``pdnsutil backend-cmd``) with the other
hooks. The same script, unchanged, gives the same DNS answers as under ``launch=lua2``.

Sections, in order: settings and errors; logging; the Lua state (environment, script, hook
dispatcher); answers; the coprocess loop; the remote backend's protocol; CMD; transcripts
(replay, --record); the command line. The Lua half lives in ``lua/environment.lua`` (the
AuthLua4 environment), ``lua/dispatch.lua`` (the hook dispatcher: one crossing into Lua per
question) and ``lua/remote.lua`` (remote mode's lookup and list replies).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque

# Startup is on pdns's clock (pipe-timeout covers HELO): modules the coprocess does not need
# before its first answer (pathlib, typing, signal, dnspython, structlog) are imported where used.
TYPE_CHECKING = False
if TYPE_CHECKING:
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

#: Bytes asked of each read(): pdns sends one short line at a time, and a small buffer is
#: allocated faster than a large one (0.3 us a question).
READ_SIZE = 4096

#: Loading a script for longer than this is logged (pdns's default pipe-timeout is 2 s).
SLOW_LOAD_SECONDS = 1.0

#: The pipe ABI versions lua2pipe speaks (pipe-abi-version).
ABI_VERSIONS = range(1, 6)

#: pdns's syslog levels, as ``pdns.loglevels`` names them.
LOG_LEVELS = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")


def _lua_dir() -> str:
    """Where the Lua half is: beside this file in a checkout; when pip-installed, in
    PREFIX/share/lua2pipe for the PREFIX/lib/pythonX.Y/site-packages holding this file."""
    here = os.path.dirname(os.path.realpath(__file__))
    for candidate in (
        os.path.join(here, "lua"),
        os.path.join(here, os.pardir, os.pardir, os.pardir, "share", "lua2pipe"),
        os.path.join(sys.prefix, "share", "lua2pipe"),
    ):
        if os.path.isfile(os.path.join(candidate, "dispatch.lua")):
            return candidate
    raise Lua2PipeError(f"lua2pipe's Lua files (environment.lua, dispatch.lua) are not beside {here}")


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

    def __init__(self, level: int = 4, json: bool = False) -> None:
        self.level = level
        self.json = json
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
        lua_dir = _lua_dir()
        environment = self._chunk(lua_dir, "environment.lua")()
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
        self.dispatch = self._chunk(lua_dir, "dispatch.lua")(environment, lua_globals, before_script)
        try:
            with open(path, "rb") as script_file:
                source = script_file.read()
        except OSError as exc:
            raise ScriptError(f"cannot read script {path}: {exc.strerror}") from None
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

    def _chunk(self, directory: str, name: str) -> Any:
        with open(os.path.join(directory, name), "rb") as chunk_file:
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

    def _lua_resolve(self, qname: bytes, qtype: int) -> Any:
        import dns.resolver

        try:
            answer = dns.resolver.resolve(qname.decode(), int(qtype), raise_on_no_answer=False)
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

    try:
        return dns.rdata.from_text(1, code, content, origin=dns.name.root, relativize=False).to_text()
    except (dns.exception.DNSException, ValueError, UnicodeError) as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None


def _lua_message(exc: Exception) -> str:
    """The Lua error's message, without the traceback lupa appends (it walks lua2pipe's own
    Lua files, not the script's; the message itself names the script's file and line)."""
    message = exc.args[0] if exc.args else str(exc)
    if isinstance(message, bytes):
        message = message.decode("utf-8", "backslashreplace")
    return str(message).split("\nstack traceback:", 1)[0]


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
# replaces the process image (same pid, same pipes) to get a fresh Lua state.


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
    """Serves the pipe protocol for one :class:`Script` (or a load error) on two descriptors.

    ``script`` is the loaded script, or the :class:`ScriptError` that prevented loading: then
    HELO answers FAIL and every question answers LOG + FAIL naming the error, so pdns's log
    says why instead of timing out. ``script_path`` and ``script_options`` (keyword arguments of
    :class:`Script`) are how CMD ``reload`` loads it again, even after a failed start.
    ``resume_abi`` continues a session after a restart (no HELO).
    """

    def __init__(
        self,
        script: Script | ScriptError,
        input_fd: int,
        output_fd: int,
        *,
        log: Log | None = None,
        query_logging: bool = False,
        max_query_ms: int = 0,
        restart_argv: list[str] | None = None,
        resume_abi: int = 0,
        pending: bytes = b"",
        recorder: Recorder | None = None,
        script_path: str | None = None,
        script_options: dict[str, Any] | None = None,
    ) -> None:
        self.use_script(script)
        self.reader = LineReader(input_fd, pending)
        self.output_fd = output_fd
        self.log = log or Log()
        self.query_logging = query_logging
        self.abi = resume_abi
        self.questions = 0
        self.failures = 0
        self.latencies: deque[float] = deque(maxlen=10000)
        self.started = time.monotonic()
        self.commands = Commands(self, script_options, script_path)
        # Shared with the watchdog: the question in hand and when it started (0.0: none), and
        # the lock that makes "answer it" happen once, by the loop or by the watchdog.
        self.in_hand = b""
        self.busy_since = 0.0
        self.answer_lock = threading.Lock()
        self.watchdog = Watchdog(self, max_query_ms / 1000, restart_argv)
        if recorder is not None:
            recorder.attach(self)  # binds recording read/answer/write functions (--record)

    def use_script(self, script: Script | ScriptError) -> None:
        """Serves ``script`` from the next question on (startup, CMD reload)."""
        self.script = script
        self.lua_answer = (
            (script.dispatch.answer_capped if script.max_memory_mb else script.dispatch.answer)
            if isinstance(script, Script)
            else None
        )

    def write(self, data: bytes) -> None:
        _write_all(self.output_fd, data)

    @property
    def resume_mode(self) -> str:
        """What ``--resume`` hands the re-executed process: the pipe ABI (no second HELO)."""
        return str(self.abi)

    def runaway_answer(self, reason: str) -> bytes:
        """The watchdog's answer to the question in hand when its hook ran too long."""
        return fail_answer(reason, is_zone_walk(self.in_hand.split(b"\t")))

    # -- the loop

    def serve(self) -> int:
        """Answers questions until EOF, then runs dns_deinit. Returns the process exit code."""
        if not self.abi and not self._handshake():
            self._deinit()
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
        self._deinit()
        return 0

    def _deinit(self) -> None:
        if isinstance(self.script, Script):
            self.script.deinit()

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
        if isinstance(self.script, ScriptError):
            self.write(b"FAIL\n")
            return True  # keep answering, each question naming the load error
        self.script.set_abi(abi)
        self.write(self.banner())
        return True

    def banner(self) -> bytes:
        script = self.script
        assert isinstance(script, Script)  # a load error answers HELO with FAIL
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
        try:
            answer = self.lua_answer(line) if self.lua_answer else False
        except Exception as exc:  # raised while reading the result (__tostring, __pairs), or memory
            return self._lua_failure(line, exc)
        if answer is False:
            return self._answer_in_python(line)
        self.questions += 1  # Q and AXFR lines; CMD is not a question
        if answer.__class__ is bytes:
            if self.query_logging:
                self._log_question(line, result=answer.decode("utf-8", "backslashreplace").splitlines())
            return answer
        self.failures += 1
        if self.query_logging:
            self._log_question(line, error=answer[1])
        if len(answer) > 3 and answer[3]:
            self._fresh_state()
        return fail_answer(answer[1], len(answer) > 2 and bool(answer[2]))

    def _lua_failure(self, line: bytes, exc: Exception) -> bytes:
        """LOG + FAIL for an error that escaped the dispatcher's own checks: a hostile value whose
        metamethods raise while the result is read, or the Lua heap over --max-memory."""
        self.questions += 1
        self.failures += 1
        fields = line.split(b"\t")
        hook = "dns_lookup" if fields[0] == b"Q" else "dns_list"
        why = "not enough memory (--max-memory)" if isinstance(exc, MemoryError) else _lua_message(exc)
        if isinstance(exc, MemoryError):  # dispatch.answer_capped could not even collect
            why += ": restarting with a fresh Lua state"
            self._fresh_state()
        return fail_answer(f"{hook} result could not be read: {why}", is_zone_walk(fields))

    def _fresh_state(self) -> None:
        """Replaces a Lua state whose heap stays over --max-memory with a freshly loaded one
        (dns_deinit is not run in the full state)."""
        old = self.script
        self.log(
            3, "Lua heap full", max_memory_mb=old.max_memory_mb, action="restarting with a fresh Lua state"
        )
        try:
            new: Script | ScriptError = Script(
                old.path, lua=old.runtime_name, log=self.log, max_memory_mb=old.max_memory_mb
            )
            new.set_abi(self.abi)
        except ScriptError as exc:
            self.log(3, "script failed to load", script=old.path, error=str(exc))
            new = exc
        self.use_script(new)

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
            return self.commands.run(line[4:])
        self.failures += 1
        if tag in (b"Q", b"AXFR") and isinstance(self.script, ScriptError):
            self.questions += 1
            return fail_answer(f"script not loaded: {self.script}", is_zone_walk(fields))
        if not line:
            return fail_answer("malformed question: empty line")
        hint = " (CMD needs pipe-abi-version=5)" if tag == b"CMD" else ""
        tag_text = tag.decode("utf-8", "backslashreplace")
        return fail_answer(f"malformed question: unknown question {tag_text!r}{hint}")


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
            # SIGTERM must reach this thread's sigtimedwait even while the main thread runs Lua.
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        self.thread.start()

    def _run(self) -> None:
        import signal

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
        import signal

        coprocess = self.coprocess
        limit_ms = round(self.limit * 1000)
        reason = f"hook still running after {limit_ms} ms (--max-query-ms): stopped, Lua state restarted"
        coprocess.log(3, "runaway hook", limit_ms=limit_ms, action="restarting with a fresh Lua state")
        try:
            _write_all(coprocess.output_fd, coprocess.runaway_answer(reason))
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
        try:
            os.execv(
                self.restart_argv[0], [*self.restart_argv, "--resume", f"{coprocess.resume_mode}:{pending}"]
            )
        except OSError as exc:  # the interpreter went away (an upgrade?): pdns starts a new coprocess
            coprocess.log(2, "cannot restart after a runaway hook", error=str(exc))
            os._exit(1)


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


def answer_initialize(input_fd: int, output_fd: int, pending: bytes) -> bytes:
    """Answers pdns's first request, ``initialize``, before the script loads; returns what was
    read and not answered. A late reply would be read as the answer to pdns's next request and
    shift every later answer by one (pdns 4.7.3 RemoteBackend::send raises without dropping the
    connector), so the script (and dns_init) loads after this reply, while pdns waits for the
    next one."""
    import json

    reader = LineReader(input_fd, pending)
    try:
        line = reader.readline()
    except ProtocolError as exc:
        _write_all(output_fd, _reply(False, [str(exc)]))
        return reader.pending
    if line is None:
        return b""
    try:
        request = json.loads(line)
    except ValueError:
        request = None
    if not isinstance(request, dict) or request.get("method") != "initialize":
        return line + b"\n" + reader.pending  # the loop answers it
    _write_all(output_fd, _reply(True))
    return reader.pending


class RemoteCoprocess(Coprocess):
    """Serves the remote backend's protocol for one :class:`Script` (or its load error).

    The pipe's :class:`Coprocess` with another framing: one JSON request a line, one JSON reply
    a line. Lookups and lists are answered by lua/remote.lua; the other methods call the hooks
    through dispatch.lua's ``cmd_*`` functions, which read the results as native lua2 does.
    """

    def __init__(self, script: Script | ScriptError, input_fd: int, output_fd: int, **options: Any) -> None:
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

    def use_script(self, script: Script | ScriptError) -> None:
        super().use_script(script)
        self.remote = (
            script._chunk(_lua_dir(), "remote.lua")(script.dispatch) if isinstance(script, Script) else None
        )

    # -- the loop

    def serve(self) -> int:
        """Answers requests until EOF (pdns's shutdown), then runs dns_deinit."""
        self.watchdog.start()
        readline = self.reader.readline
        lock = self.answer_lock
        clock = time.monotonic
        while True:
            try:
                line = readline()
            except ProtocolError as exc:
                self.failures += 1
                self.write(_reply(False, [f"lua2pipe: {exc}"]))
                continue
            if line is None:
                break
            self.in_hand = line
            started = self.busy_since = clock()
            text = self.answer(line)
            with lock:
                self.busy_since = 0.0
                _write_all(self.output_fd, text)
            self.latencies.append(clock() - started)
        self._deinit()
        return 0

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
        """The complete reply line to one request line."""
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
        if self.remote is None and method not in ("initialize", "directBackendCmd"):
            self.failures += 1
            return self._failure(method, parameters, f"script not loaded: {self.script}")
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
        if method == "lookup":
            qname = parameters.get("qname")
            row = {"qtype": "A", "qname": qname if isinstance(qname, str) else ".", "content": "", "ttl": 0}
            return _reply([row], [why])
        return _reply(_RAISING_RESULTS.get(method, False), [why])

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
        why = _from_lua(result[1])
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
        return self._rows(
            self.remote.list(
                _parameter(parameters, "zonename", str).encode(), _parameter(parameters, "domain_id", int, -1)
            )
        )

    # -- the other hooks, through dispatch.lua's readers (as CMD reaches them)

    def _has(self, hook: str) -> bool:
        return hook in self.script.hooks

    def get_all_domains(self, _parameters: dict[str, Any]) -> bytes:
        if not self._has("dns_get_all_domains"):
            return _reply([])  # native lua2 lists nothing: the zone cache stays empty
        infos, warnings = _hook_result(self.script.dispatch.cmd_all_domains())
        return _reply([_remote_info(info) for info in infos or []], warnings)

    def get_updated_masters(self, _parameters: dict[str, Any]) -> bytes:
        # pdns notifies every zone this returns, on every communicator cycle (pdns 4.7.3
        # mastercommunicator.cc): so only primaries whose serial is not the notified one.
        if not self._has("dns_get_all_domains"):
            return _reply([])
        infos, warnings = _hook_result(self.script.dispatch.cmd_all_domains())
        updated = [
            _remote_info(info)
            for info in infos or []
            if info["kind"] == "primary" and info["serial"] != info["notified_serial"]
        ]
        return _reply(updated, warnings)

    def get_domain_info(self, parameters: dict[str, Any]) -> bytes:
        name = _parameter(parameters, "name", str)
        info, warnings = _hook_result(self.script.dispatch.cmd_domaininfo(name.encode()))
        return _reply(_remote_info(info), warnings)

    def get_all_domain_metadata(self, parameters: dict[str, Any]) -> bytes:
        name = _parameter(parameters, "name", str)
        if not self._has("dns_get_all_domain_metadata"):
            return _reply(False)  # no metadata
        pairs, warnings = _hook_result(self.script.dispatch.cmd_all_metadata(name.encode()))
        return _reply({kind: values for kind, values in pairs or []}, warnings)

    def get_domain_metadata(self, parameters: dict[str, Any]) -> bytes:
        name = _parameter(parameters, "name", str)
        kind = _parameter(parameters, "kind", str)
        if not self._has("dns_get_domain_metadata"):
            return _reply(False)
        values, warnings = _hook_result(self.script.dispatch.cmd_metadata(name.encode(), kind.encode()))
        return _reply(values or [], warnings)

    def get_domain_keys(self, parameters: dict[str, Any]) -> bytes:
        name = _parameter(parameters, "name", str)
        if not self._has("dns_get_domain_keys"):
            return _reply(False)  # no keys: the zone is served unsigned
        keys, warnings = _hook_result(self.script.dispatch.cmd_keys(name.encode()))
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
        result = self.script.dispatch.cmd_nsec(zone_id, qname.encode())
        names, reason = (result if isinstance(result, tuple) else (result, None))[:2]
        if names is None and not _from_lua(reason).startswith(f"{hook} failed:"):
            # the result breaks the hook's contract: native lua2 logs it and answers false
            return _reply(False, [_one_line(_from_lua(reason))])
        names, warnings = _hook_result(result)
        return _reply({key: names[key] for key in ("unhashed", "before", "after")}, warnings)

    def set_notified(self, parameters: dict[str, Any]) -> bytes:
        zone_id = _parameter(parameters, "id", int)
        serial = _parameter(parameters, "serial", int)
        if self._has("dns_set_notified"):  # native lua2 skips the call silently without it
            _hook_result(self.script.dispatch.cmd_set_notified(zone_id, serial % 2**32))
        return _reply(True)

    def direct_backend_cmd(self, parameters: dict[str, Any]) -> bytes:
        # pdnsutil backend-cmd prints the result as it is: the same text as CMD's, without END
        query = _parameter(parameters, "query", str)
        return _reply(self.commands.execute(query.encode("utf-8", "surrogateescape"))[1])


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


def _one_line(text: str) -> str:
    """A reason as one line: control characters become spaces."""
    return "".join(c if c.isprintable() else " " for c in text).strip() or "unknown error"


def _from_lua(value: Any) -> Any:
    """A normalised hook result (Lua tables of strings, numbers and booleans) as Python values:
    bytes become str, array tables lists, other tables dicts."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if type(value).__name__ == "_LuaTable":  # whichever lupa runtime module made it
        items = [(_from_lua(k), _from_lua(v)) for k, v in value.items()]
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
        reason = _one_line(_from_lua(second) or "no reason given")
        raise (CommandNotFound if first is False else CommandError)(reason)
    warnings = _from_lua(second) if second is not None else []
    return _from_lua(first), [_one_line(w) for w in warnings or []]


def _split_arguments(
    command: str,
    argument: str,
    names: list[str],
    optional: list[str] = (),
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


class OfflineHost:
    """What :class:`Commands` reports on outside a coprocess (``lua2pipe cmd``): the script,
    and no questions served."""

    def __init__(self, script: Script | ScriptError, log: Log | None = None) -> None:
        self.script = script
        self.log = log or Log()
        self.abi = 5
        self.questions = 0
        self.failures = 0
        self.latencies: deque[float] = deque()
        self.started = time.monotonic()

    def use_script(self, script: Script | ScriptError) -> None:
        """As :meth:`Coprocess.use_script` (CMD reload)."""
        self.script = script


class Commands:
    """The CMD surface of one coprocess (or of an :class:`OfflineHost`).

    ``coprocess`` provides ``script``, ``abi``, ``log``, ``questions``, ``failures``,
    ``latencies`` (seconds, most recent last) and ``started`` (``time.monotonic()``).
    ``script_options`` are the keyword arguments ``reload`` passes to :class:`Script` (``lua``,
    ``max_memory_mb``) and ``script_path`` the script it loads; by default both are taken from
    the running script.
    """

    def __init__(
        self, coprocess: Any, script_options: dict[str, Any] | None = None, script_path: str | None = None
    ) -> None:
        self.coprocess = coprocess
        self.script_options = dict(script_options or {})
        self.script_path: str | None = script_path or getattr(coprocess.script, "path", None)
        self.reloads = 0
        self.builtins: dict[str, tuple[Callable[[str], str], str]] = {
            "help": (self.help, "help: list the commands"),
            "version": (self.version, "version: lua2pipe, Lua runtime and script"),
            "stats": (
                self.stats,
                "stats [--json]: questions, failures, latency percentiles, "
                "uptime, Lua memory of this coprocess",
            ),
            "reload": (self.reload, "reload: load the script again; on failure keep the old one"),
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
            return 1, f"not found: {_one_line(str(exc))}"
        except CommandError as exc:
            return 2, f"error: {_one_line(str(exc))}"
        except Exception as exc:  # a bug must not desync pdns: still one line and END
            self.coprocess.log(3, "CMD failed", command=command, error=repr(exc))
            return 2, f"error: {_one_line(type(exc).__name__ + ': ' + str(exc))}"

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
        script_function = isinstance(script, Script) and bool(
            script.dispatch.is_script_function(word.encode())
        )
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
        raise CommandError(_from_lua(result[1]))

    def _script(self) -> Script:
        script = self.coprocess.script
        if isinstance(script, ScriptError):
            raise CommandError(f"script not loaded: {script}")
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
        functions = (
            _from_lua(script.dispatch.script_functions()).split() if isinstance(script, Script) else []
        )
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
        if isinstance(script, ScriptError):
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
        if isinstance(script, Script):
            pairs.append(("lua_memory_kb", round(float(script.dispatch.memory_kb()), 1)))
            pairs.append(("lua", script.version))
            pairs.append(("script", script.path))
        else:
            pairs.append(("lua_memory_kb", None))
            pairs.append(("script_error", str(script)))
        pairs.append(("reloads", self.reloads))
        result = dict(pairs)
        lines = [f"{key}={_field(value)}" for key, value in pairs]
        return self._render(result, [], "--json" in flags, lines)

    def reload(self, argument: str) -> str:
        _split_arguments("reload", argument, [], flags=())
        host = self.coprocess
        old = host.script
        path = getattr(old, "path", None) or self.script_path
        if not path:
            raise CommandError("reload: the script's path is unknown")
        options = dict(self.script_options)
        if isinstance(old, Script):
            options.setdefault("lua", old.runtime_name)
            if getattr(old, "max_memory_mb", None):
                options.setdefault("max_memory_mb", old.max_memory_mb)
        started = time.monotonic()
        try:
            new = Script(path, log=host.log, **options)
        except ScriptError as exc:
            keeping = "the previous script" if isinstance(old, Script) else "nothing (no script loaded)"
            host.log(3, "reload failed", script=path, error=str(exc))
            raise CommandError(f"reload failed, still serving {keeping}: {exc}") from None
        load_ms = (time.monotonic() - started) * 1000
        if host.abi:
            new.set_abi(host.abi)
        host.use_script(new)
        self.script_path = path
        self.reloads += 1
        if isinstance(old, Script):
            old.deinit()
        host.log(6, "script reloaded", script=path, load_ms=round(load_ms, 1))
        return f"reloaded {path} in {load_ms:.1f} ms; hooks: {' '.join(new.hooks)}"

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
                lines.extend("  " + _one_line(line) for line in key["content"].splitlines() if line.strip())
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


# Key fingerprints. ``keys`` identifies a key by its DNSSEC key tag (what ``pdnsutil show-zone``
# and DS records show), computed with dnspython from the DNSKEY that the private key implies:
# RSA keys carry their public half; ECDSA P-256/P-384, Ed25519 and Ed448 public keys are derived
# here in pure Python (no ``cryptography`` package needed; only the CMD path pays for it). For
# other algorithms the tag is "-"; every key also gets ``sha256``, the first 16 hex digits of the
# SHA-256 of its content, which never reveals the key.

_P256 = (
    2**256 - 2**224 + 2**192 + 2**96 - 1,
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
    32,
)
_P384 = (
    2**384 - 2**128 - 2**96 + 2**32 - 1,
    0xAA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7,
    0x3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F,
    48,
)


def _ecdsa_public(private: int, curve: tuple[int, int, int, int]) -> bytes:
    p, gx, gy, size = curve

    def add(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
        if a is None:
            return b
        if b is None:
            return a
        if a[0] == b[0] and (a[1] + b[1]) % p == 0:
            return None
        if a == b:
            slope = (3 * a[0] * a[0] - 3) * pow(2 * a[1], -1, p) % p  # curve a = -3
        else:
            slope = (b[1] - a[1]) * pow(b[0] - a[0], -1, p) % p
        x = (slope * slope - a[0] - b[0]) % p
        return x, (slope * (a[0] - x) - a[1]) % p

    result, addend = None, (gx, gy)
    while private:
        if private & 1:
            result = add(result, addend)
        addend = add(addend, addend)
        private >>= 1
    if result is None:
        raise ValueError("private key is zero")
    return result[0].to_bytes(size, "big") + result[1].to_bytes(size, "big")


#: RFC 8032's Edwards curves: (p, a, d, base point x, y, key size in bytes).
_ED25519 = (
    2**255 - 19,
    -1,
    37095705934669439343138083508754565189542113879843219016388785533085940283555,
    15112221349535400772501151409588531511454012693041857206046113283949847762202,
    46316835694926478169428394003475163141307993866256225615783033603165251855960,
    32,
)
_ED448 = (
    2**448 - 2**224 - 1,
    1,
    -39081,
    224580040295924300187604334099896036246789641632564134246125461686950415467406032909029192869357953282578032075146446173674602635247710,
    298819210078481492676017930443930673437544040154080242095928241372331506189835876003536878655418784733982303233503462500531545062832660,
    57,
)


def _eddsa_public(seed: bytes, curve: tuple[int, int, int, int, int, int]) -> bytes:
    """The public key of an Ed25519 or Ed448 private key (RFC 8032 sections 5.1.5 and 5.2.5)."""
    import hashlib

    p, a, d, bx, by, size = curve
    if curve is _ED25519:
        digest = hashlib.sha512(seed).digest()[:32]
        scalar = int.from_bytes(digest, "little") & ((1 << 254) - 8) | (1 << 254)
    else:
        digest = hashlib.shake_256(seed).digest(114)[:57]
        scalar = int.from_bytes(digest, "little") & ((1 << 447) - 4) | (1 << 447)

    def add(u: tuple[int, int], v: tuple[int, int]) -> tuple[int, int]:
        t = d * u[0] * v[0] * u[1] * v[1] % p
        x = (u[0] * v[1] + v[0] * u[1]) * pow(1 + t, -1, p) % p
        y = (u[1] * v[1] - a * u[0] * v[0]) * pow(1 - t, -1, p) % p
        return x, y

    result, addend = (0, 1), (bx, by)
    while scalar:
        if scalar & 1:
            result = add(result, addend)
        addend = add(addend, addend)
        scalar >>= 1
    return (result[1] | (result[0] & 1) << (8 * size - 1)).to_bytes(size, "little")


def _private_key_fields(content: str) -> dict[str, str]:
    fields = {}
    for line in content.splitlines():
        name, separator, value = line.partition(":")
        if separator:
            fields[name.strip().lower()] = value.strip()
    return fields


def dnskey_public_key(algorithm: int, fields: dict[str, str]) -> bytes | None:
    """The DNSKEY public key field for a private key in BIND's Private-key-format (as pdns
    stores keys), or None when the algorithm is not supported here."""
    import base64

    def field(name: str) -> bytes:
        return base64.b64decode(fields[name], validate=False)

    if algorithm in (5, 7, 8, 10):
        exponent, modulus = field("publicexponent"), field("modulus")
        length = bytes([len(exponent)]) if len(exponent) < 256 else b"\0" + len(exponent).to_bytes(2, "big")
        return length + exponent + modulus
    if algorithm in (13, 14):
        return _ecdsa_public(int.from_bytes(field("privatekey"), "big"), _P256 if algorithm == 13 else _P384)
    if algorithm in (15, 16):
        return _eddsa_public(field("privatekey"), _ED25519 if algorithm == 15 else _ED448)
    return None


def key_fingerprint(flags: int, content: str) -> tuple[int | None, int | None]:
    """(algorithm, key tag) of a key's content; None for what cannot be read."""
    fields = _private_key_fields(content)
    try:
        algorithm: int | None = int(fields.get("algorithm", "").split()[0])
    except (ValueError, IndexError):
        return None, None
    try:
        public = dnskey_public_key(algorithm, fields)
    except (KeyError, ValueError):
        return algorithm, None
    if public is None:
        return algorithm, None
    import dns.dnssec
    import dns.rdataclass
    import dns.rdatatype
    import dns.rdtypes.ANY.DNSKEY

    dnskey = dns.rdtypes.ANY.DNSKEY.DNSKEY(
        dns.rdataclass.IN, dns.rdatatype.DNSKEY, flags & 0xFFFF, 3, algorithm, public
    )
    return algorithm, dns.dnssec.key_id(dnskey)


def content_digest(content: str) -> str:
    import hashlib

    return hashlib.sha256(content.encode("utf-8", "surrogateescape")).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# Transcripts: one protocol session as a text file a person can write and read (the format is
# in conformance/README.md). ``lua2pipe replay FILE...`` feeds each to a real lua2pipe process
# and diffs the answers; ``lua2pipe SCRIPT --record FILE`` writes the session pdns drives as one.

#: How a recording writes the HELO banner, so a replay passes whatever the version.
RECORDED_BANNER = "<~ OK\\tlua2pipe .*"


class TranscriptError(Lua2PipeError):
    """A transcript that does not follow the format; the message names file and line."""


def transcript_unescape(text: str) -> bytes:
    r"""The bytes a ``>`` or ``<`` line stands for: ``\t`` is a tab, ``\\`` one backslash,
    ``\xHH`` the byte HH, and any other backslash is itself (so ``a\032b`` stays as written).
    (``<~`` and ``stderr~`` patterns are regular expressions as written, with their own
    ``\t``, ``\\`` and ``\xHH``.)"""
    data = text.encode("utf-8")
    if b"\\" not in data:
        return data
    import re

    def one(match: Any) -> bytes:
        escape = match.group(1)
        if escape == b"t":
            return b"\t"
        if escape == b"\\":
            return b"\\"
        return bytes([int(escape[1:], 16)])

    return re.sub(rb"\\(t|\\|x[0-9A-Fa-f]{2})", one, data)


def transcript_escape(data: bytes) -> str:
    r"""The transcript text of one protocol line, the inverse of :func:`transcript_unescape`.

    Tabs, control characters, bytes that are not UTF-8 and leading or trailing spaces are
    written as escapes. Backslashes stay as they are (pdns's ``a\032b``) unless they could be
    misread: a run of two or more (pdns's ``\\``) or one before an escape or a ``t``/``x`` is
    doubled.
    """
    text = data.decode("utf-8", "surrogateescape")
    if "\\" not in text and text.strip(" ") == text:
        if text.isprintable():
            return text
        tabs = text.replace("\t", "\\t")  # the usual protocol line (--record's hot path)
        if tabs.isprintable():
            return tabs
    length = len(text)
    lead = length - len(text.lstrip(" "))
    end = lead + len(text.strip(" "))  # spaces before lead or from end on are written \x20

    def escaped(index: int) -> bool:
        char = text[index]
        return (char == " " and not lead <= index < end) or not char.isprintable()

    out = []
    index = 0
    while index < length:
        char = text[index]
        if char == "\\":
            run_end = index
            while run_end < length and text[run_end] == "\\":
                run_end += 1
            run = run_end - index
            double = run > 1 or (run_end < length and (text[run_end] in "tx" or escaped(run_end)))
            out.append("\\" * (2 * run if double else run))
            index = run_end
            continue
        if char == " " and not lead <= index < end:
            out.append("\\x20")
        elif char == "\t":
            out.append("\\t")
        elif "\udc80" <= char <= "\udcff":
            out.append(f"\\x{ord(char) - 0xDC00:02x}")
        elif not char.isprintable():
            out.append("".join(f"\\x{byte:02x}" for byte in char.encode("utf-8")))
        else:
            out.append(char)
        index += 1
    return "".join(out)


class Transcript:
    """One parsed transcript: the script and options, the session's events and what else is
    expected (exit code, stderr patterns, a known failure)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import re
        import shlex
        from pathlib import Path

        self.path = Path(path)
        self.script = ""
        self.options: list[str] = []
        self.exit = 0
        self.xfail: str | None = None
        self.stderr: list[tuple[str, Any]] = []
        #: ``(">", line)``, ``("<", line)`` or ``("<~", compiled pattern)``, in file order.
        self.events: list[tuple[str, Any]] = []
        try:
            lines = self.path.read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError) as exc:
            raise TranscriptError(f"{self.path}: {exc}") from None
        for number, raw in enumerate(lines, 1):
            line = raw.rstrip(" \t\r")
            if not line or line.startswith("#"):
                continue
            marker, _, rest = line.partition(" ")
            try:
                if "\t" in rest and marker in (">", "<", "<~", "stderr~"):
                    raise ValueError("a tab character: write it as \\t")
                if marker in (">", "<"):
                    self.events.append((marker, transcript_unescape(rest)))
                elif marker == "<~":  # a regular expression as written: it has \t, \\, \xHH
                    self.events.append(("<~", re.compile(rest.encode("utf-8"), re.DOTALL)))
                elif marker == "stderr~":
                    self.stderr.append((rest, re.compile(rest.encode("utf-8"), re.MULTILINE)))
                elif line.startswith("script:"):
                    if self.script:
                        raise ValueError("a second script: line")
                    self.script = line[len("script:") :].strip()
                elif line.startswith("options:"):
                    self.options = shlex.split(line[len("options:") :])
                elif line.startswith("exit:"):
                    self.exit = int(line[len("exit:") :])
                elif line.startswith("xfail:"):
                    self.xfail = line[len("xfail:") :].strip() or "known failure"
                else:
                    raise ValueError(
                        "expected '> ', '< ', '<~ ', 'stderr~ ', a header "
                        "(script:, options:, exit:, xfail:), '#' or a blank line"
                    )
            except (ValueError, re.error) as exc:
                raise TranscriptError(f"{self.path}:{number}: {exc}: {raw!r}") from None
        if not self.script:
            raise TranscriptError(f"{self.path}: no 'script:' line")

    @property
    def questions(self) -> list[bytes]:
        return [value for kind, value in self.events if kind == ">"]

    @property
    def expected(self) -> list[tuple[str, Any]]:
        return [(kind, value) for kind, value in self.events if kind != ">"]


def _expected_matches(expected: tuple[str, Any], line: bytes) -> bool:
    kind, value = expected
    return value == line if kind == "<" else value.fullmatch(line) is not None


def _frame_sizes(questions: list[bytes], answers: list[bytes]) -> list[int]:
    """How many answer lines belong to each question, read the way pdns reads them: one line
    for HELO, up to END for CMD (at ABI 5), else up to END or FAIL, plus the END that follows
    FAIL for a zone-walk SOA question. The last question takes any lines left over."""
    sizes: list[int] = []
    position, abi = 0, 0
    for question in questions:
        fields = question.split(b"\t")
        start = position
        if fields[0] == b"HELO":
            position = min(position + 1, len(answers))
            abi = helo_abi(fields)
        else:
            ends = (b"END",) if fields[0] == b"CMD" and abi >= 5 else (b"END", b"FAIL")
            while position < len(answers):
                position += 1
                if answers[position - 1] in ends:
                    break
            if (
                is_zone_walk(fields)
                and answers[position - 1 : position] == [b"FAIL"]
                and answers[position : position + 1] == [b"END"]
            ):
                position += 1
        sizes.append(position - start)
    if sizes:
        sizes[-1] += len(answers) - position
    elif answers:
        sizes.append(len(answers))
    return sizes


def _render_session(questions: list[bytes], answers: list[str], sizes: list[int]) -> list[str]:
    lines, position = [], 0
    for index, size in enumerate(sizes):
        if index < len(questions):
            lines.append(f"> {transcript_escape(questions[index])}".rstrip(" "))
        lines.extend(answers[position : position + size])
        position += size
    return lines


def _render_expected(expected: tuple[str, Any]) -> str:
    kind, value = expected
    if kind == "<":
        return f"< {transcript_escape(value)}".rstrip(" ")
    return "<~ " + value.pattern.decode("utf-8", "backslashreplace")


def _framing_key(expected: tuple[str, Any]) -> bytes:
    kind, value = expected
    if kind == "<":
        return value
    return next((word for word in (b"END", b"FAIL") if value.fullmatch(word)), b"")


def answer_diff(questions: list[bytes], expected: list[tuple[str, Any]], answers: list[bytes]) -> str:
    """A unified diff of the expected and actual session, each answer under its question (both
    sides framed the same way, so only real differences show). An actual line that its
    expected pattern matches is shown as the pattern."""
    import difflib

    expected_text = [_render_expected(e) for e in expected]
    actual_text = [
        expected_text[i]
        if i < len(expected) and _expected_matches(expected[i], line)
        else f"< {transcript_escape(line)}".rstrip(" ")
        for i, line in enumerate(answers)
    ]
    before = _render_session(
        questions, expected_text, _frame_sizes(questions, [_framing_key(e) for e in expected])
    )
    after = _render_session(questions, actual_text, _frame_sizes(questions, answers))
    return "\n".join(difflib.unified_diff(before, after, "expected", "actual", lineterm="", n=3))


class ReplayResult:
    """The outcome of replaying one transcript; ``report`` says what differed."""

    def __init__(
        self,
        path: Path,
        passed: bool,
        report: str = "",
        xfail: str | None = None,
        output: bytes = b"",
    ) -> None:
        self.path = path
        self.passed = passed
        self.report = report
        self.xfail = xfail
        self.output = output


def replay_transcript(
    path: str | os.PathLike[str], *, command: list[str] | None = None, timeout: float = 60.0
) -> ReplayResult:
    """Runs one transcript through a lua2pipe process and compares its answers.

    The process is ``command`` (default: this Python running this file) with the script and
    options appended, started in the transcript's directory, so the script path reaches it as
    written. It gets every ``>`` line, then EOF. Its whole output is compared with every
    ``<``/``<~`` line as one sequence; then the exit code and the ``stderr~`` patterns.
    """
    import subprocess
    from pathlib import Path

    path = Path(path)
    try:
        transcript = Transcript(path)
    except TranscriptError as exc:
        return ReplayResult(path, False, f"malformed transcript: {exc}")
    argv = [*(command or [sys.executable, os.path.abspath(__file__)]), transcript.script, *transcript.options]
    questions = transcript.questions
    problems = []
    try:
        process = subprocess.run(
            argv,
            input=b"".join(q + b"\n" for q in questions),
            capture_output=True,
            cwd=path.parent,
            timeout=timeout,
            check=False,
        )
        output, stderr, status = process.stdout, process.stderr, process.returncode
    except subprocess.TimeoutExpired as exc:
        output, stderr, status = exc.stdout or b"", exc.stderr or b"", None
        problems.append(f"lua2pipe did not exit within {timeout:g} s of EOF; killed")
    except OSError as exc:
        return ReplayResult(path, False, f"cannot run {argv[0]}: {exc}", transcript.xfail)
    answers = output.split(b"\n")
    if answers[-1] == b"":
        answers.pop()
    else:
        problems.append("the last output line has no newline")
    expected = transcript.expected
    if len(answers) != len(expected) or not all(
        _expected_matches(e, a) for e, a in zip(expected, answers, strict=False)
    ):
        problems.append(
            "answers differ (- expected, + actual; a tab shows as \\t):\n"
            + answer_diff(questions, expected, answers)
        )
    if status is not None and status != transcript.exit:
        problems.append(f"exit code {status}, expected {transcript.exit}")
    for text, pattern in transcript.stderr:
        if not pattern.search(stderr):
            problems.append(f"stderr has nothing matching {text}")
    report = ""
    if problems:
        tail = stderr.decode("utf-8", "backslashreplace").rstrip("\n").split("\n")[-15:]
        report = "\n".join(
            [
                f"{path}: FAILED",
                *problems,
                "lua2pipe's stderr (last lines):" if any(tail) else "lua2pipe's stderr: empty",
                *(f"  {line}" for line in tail if any(tail)),
            ]
        )
    return ReplayResult(path, not problems, report, transcript.xfail, output)


def transcript_xfail(path: str | os.PathLike[str]) -> str | None:
    """The ``xfail:`` reason of a transcript, or None (also for a malformed one)."""
    try:
        return Transcript(path).xfail
    except TranscriptError:
        return None


def replay_main(argv: list[str]) -> int:
    """``lua2pipe replay FILE...``: replays transcripts, prints a diff for each failure."""
    import argparse
    import shlex
    from pathlib import Path

    parser = argparse.ArgumentParser(
        prog="lua2pipe replay",
        description="Replay protocol transcripts (conformance/README.md) through lua2pipe and "
        "compare its answers. Exit code 1 if any failed.",
    )
    parser.add_argument(
        "files", nargs="+", metavar="FILE", help="a transcript, or a directory of them (*.txt)"
    )
    parser.add_argument(
        "--command",
        metavar="CMD",
        help="the coprocess to run instead of this lua2pipe (split like a shell "
        "would); the transcript's script and options are appended",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long a session may take after EOF (default 60)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="name every transcript")
    args = parser.parse_args(argv)
    paths: list[Path] = []
    for name in args.files:
        path = Path(name)
        paths.extend(sorted(path.glob("*.txt")) if path.is_dir() else [path])
    command = shlex.split(args.command) if args.command else None
    passed = failed = xfailed = 0
    for path in paths:
        result = replay_transcript(path, command=command, timeout=args.timeout)
        if result.passed and not result.xfail:
            passed += 1
            if args.verbose:
                print(f"ok      {path}")
        elif result.passed:
            failed += 1
            print(f"XPASS   {path}: passes but is marked xfail ({result.xfail}); remove the mark")
        elif result.xfail:
            xfailed += 1
            print(f"xfail   {path}: {result.xfail}")
        else:
            failed += 1
            print(result.report, end="\n\n")
    summary = f"{len(paths)} transcripts, {passed} passed, {failed} failed"
    print(summary + (f", {xfailed} xfailed" if xfailed else ""))
    return 1 if failed else 0


class Recorder:
    """Writes the session a :class:`Coprocess` serves as a transcript, answer by answer.

    :meth:`attach` replaces the coprocess's line reader, answer, write and serve functions with
    recording ones, so a coprocess without a recorder runs the plain functions and pays nothing.
    Each answer reaches the file with its questions in one unbuffered write, just before it
    goes to pdns: a SIGKILL loses at most the answer in hand.

    The file is created at the first answer (the HELO banner), so a coprocess killed before it
    answers anything leaves no file. Its name is ``pattern`` with ``%p`` replaced by the process
    id (``%%`` is ``%``); it is never overwritten or shared: pdns runs several coprocesses with
    the same command, so when the name is taken, ``.PID`` (then ``.PID-N``) goes before its
    extension. A restart by the watchdog (same pid, ``--resume``) continues the same file.
    """

    #: Set in the environment while recording, so a restart (same pid) finds the file.
    ENVIRONMENT = "LUA2PIPE_RECORDING"

    def __init__(
        self, pattern: str, script: str, options: list[str], log: Log, *, resume: bool = False
    ) -> None:
        self.pattern = pattern
        self.script = script
        self.options = options
        self.log = log
        self.path: str | None = None
        self.fd = -1
        self._sink: Callable[[str], None] = self._create
        if resume and os.environ.get(self.ENVIRONMENT):
            self.path = os.environ[self.ENVIRONMENT]
            try:
                self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            except OSError as exc:
                self._give_up(exc)
            else:
                self._sink = self._write
                self._write(
                    "# lua2pipe restarted here (same process, fresh Lua state): the "
                    "watchdog answered the question in hand (--max-query-ms)\n"
                )

    def _candidates(self) -> list[str]:
        import re

        pid = str(os.getpid())
        base = re.sub(r"%[%p]", lambda m: pid if m.group() == "%p" else "%", self.pattern)
        stem, extension = os.path.splitext(base)
        return [base, f"{stem}.{pid}{extension}", *(f"{stem}.{pid}-{n}{extension}" for n in range(2, 100))]

    def _create(self, text: str) -> None:
        import shlex

        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        try:
            for path in self._candidates():
                try:
                    self.fd = os.open(path, flags, 0o644)
                except FileExistsError:
                    continue
                self.path = path
                break
            else:
                raise FileExistsError(f"{self.pattern}: every name for this process is taken")
        except OSError as exc:
            self._give_up(exc)
            return
        os.environ[self.ENVIRONMENT] = self.path
        self.log(6, "recording the session", file=self.path)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        header = [
            f"# Recorded by lua2pipe {VERSION} (pid {os.getpid()}) at {stamp}.",
            f"script: {os.path.abspath(self.script)}",
        ]
        if self.options:
            header.append(f"options: {shlex.join(self.options)}")
        self._sink = self._write
        self._write("\n".join(header) + "\n" + text)

    def _write(self, text: str) -> None:
        try:
            _write_all(self.fd, text.encode("utf-8", "surrogateescape"))
        except OSError as exc:  # a full disk must not stop the answers
            self._give_up(exc)

    def _give_up(self, exc: OSError) -> None:
        self.log(
            3, "cannot record the session; recording stopped", file=self.path or self.pattern, error=str(exc)
        )
        self._sink = lambda _text: None

    def attach(self, coprocess: Coprocess) -> None:
        """Binds the recording functions on ``coprocess`` (called by its constructor)."""
        pending: list[str] = []  # questions read, written with their answer
        escape = transcript_escape
        read_line = coprocess.reader.readline
        plain_answer = coprocess.answer
        plain_write = coprocess.write
        plain_serve = coprocess.serve

        def record(answer: bytes, banner: bool = False) -> None:
            lines = answer.split(b"\n")
            if lines[-1] == b"":
                lines.pop()
            text = [*pending]
            pending.clear()
            for line in lines:
                if banner and line.startswith(b"OK\tlua2pipe "):
                    text.append(RECORDED_BANNER + "\n")
                else:
                    text.append(f"< {escape(line)}\n" if line else "<\n")
            self._sink("".join(text))

        def recording_readline() -> bytes | None:
            try:
                line = read_line()
            except ProtocolError as exc:
                pending.append(f"# ({exc}: not recorded)\n")
                raise
            if line is not None:
                pending.append(f"> {escape(line)}\n" if line else ">\n")
            return line

        def recording_answer(line: bytes) -> bytes:
            text = plain_answer(line)
            record(text)
            return text

        def recording_write(data: bytes) -> None:
            record(data, banner=True)
            plain_write(data)

        def recording_serve() -> int:
            status = plain_serve()
            if status and self.path is not None:
                self._sink(f"exit: {status}\n")
            return status

        coprocess.reader.readline = recording_readline  # type: ignore[method-assign]
        coprocess.answer = recording_answer  # type: ignore[method-assign]
        coprocess.write = recording_write  # type: ignore[method-assign]
        coprocess.serve = recording_serve  # type: ignore[method-assign]


def open_recorder(pattern: str, script: str, argv: list[str], log: Log, *, resume: bool = False) -> Recorder:
    """The recorder for ``--record``: the header names the script (absolute path) and the
    command line's other options (without ``--record`` and ``--resume``)."""
    options, skip, script_seen = [], False, False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if (
            len(name) > 2
            and name.startswith("--")
            and ("--record".startswith(name) or "--resume".startswith(name))
        ):
            skip = "=" not in arg
            continue
        if arg == script and not script_seen:
            script_seen = True
            continue
        options.append(arg)
    return Recorder(pattern, script, options, log, resume=resume)


# ---------------------------------------------------------------------------------------------
# The command line. ``lua2pipe SCRIPT [options]`` is the coprocess pdns runs; the subcommands
# (``lua2pipe COMMAND --help``) serve operators in a shell, with the same script loading.


def _coprocess_parser() -> Any:
    import argparse

    subcommands = "\n".join(f"  {name:8} {doc}" for name, (_, doc) in SUBCOMMANDS.items())
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
    if not args.resume:
        # The first byte decides the protocol: "{" is the remote backend's initialize (answered
        # before the script loads), anything else the pipe's HELO.
        pending = os.read(protocol_in, 1)
        remote = pending == b"{"
        if remote:
            pending = answer_initialize(protocol_in, protocol_out, pending)
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
    script: Script | ScriptError
    try:
        script = Script(args.script, lua=args.lua, log=log, max_memory_mb=args.max_memory)
        if abi:
            script.set_abi(abi)
    except ScriptError as exc:
        log(3, "script failed to load", script=args.script, error=str(exc))
        script = exc
    finally:
        slow_load.cancel()
    interpreter = [sys.executable, "-I"] if sys.flags.isolated else [sys.executable]
    program = ["-m", "lua2pipe"] if __spec__ is not None else [os.path.abspath(__file__)]
    resume_index = argv.index("--resume") if args.resume else len(argv)
    if args.record and remote:
        log(4, "--record does not record remote-mode sessions yet", record=args.record)
    recorder = (
        open_recorder(args.record, args.script, argv, log, resume=bool(args.resume))
        if args.record and not remote
        else None
    )
    coprocess = (RemoteCoprocess if remote else Coprocess)(
        script,
        protocol_in,
        protocol_out,
        log=log,
        query_logging=args.query_logging,
        max_query_ms=args.max_query_ms,
        resume_abi=abi,
        pending=pending,
        restart_argv=[*interpreter, *program, *argv[:resume_index]],
        recorder=recorder,
        script_path=args.script,
        script_options={"lua": args.lua, "max_memory_mb": args.max_memory},
    )
    try:
        return coprocess.serve()
    except BrokenPipeError:
        return 0  # pdns went away


#: ``lua2pipe NAME ...``: the handler (given the remaining arguments) and a one-line summary.
SUBCOMMANDS: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "replay": (replay_main, "run protocol transcripts through lua2pipe and diff the answers"),
}


# ``lua2pipe check | query | axfr | cmd``: the hooks from a shell, with the script loaded exactly
# as the coprocess loads it. Output goes to stdout, diagnostics to stderr ("error: ...",
# "warning: ..."); exit code 0 means fine, 1 a problem with the script or its data, 2 bad usage.

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
    import argparse

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
        raise CommandError(f"{what} failed: {_from_lua(answer[1])}")
    records = []
    for line in answer.decode("utf-8", "backslashreplace").splitlines():
        if line.startswith("DATA\t"):
            records.append(_Record(line))
        elif line.startswith("LOG\t"):
            print(f"warning: {what}: {line[4:]}", file=sys.stderr)
    return records


def check_content(rtype: str, content: str) -> tuple[bool, str | None]:
    """(valid, note) for one record's content, parsed with dnspython. Types dnspython does not
    know (pdns's ALIAS, LUA, ...) are valid with a note saying they were not checked."""
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype

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
            print(f"; invalid content ({_one_line(note or '')}):\n; {record.zone_line()}")
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
    import dns.name

    current = dns.name.from_text(name)
    while True:
        text = current.to_text()
        answer = script.dispatch.lookup(text.encode(), b"SOA", -1, *NO_PACKET)
        records = _answer_records(answer, f"SOA lookup for {text}")
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
    import ipaddress

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
        if remote is None:  # no packet: what pdns sends for its own lookups
            packet = NO_PACKET
        else:  # without ECS the real remote is the client's address as /32 or /128
            packet = (remote.encode(), (local or "0.0.0.0").encode(), ecs.encode() if ecs else None)
        answer = script.dispatch.lookup(args.name.encode(), qtype.encode(), zone_id, *packet)
        records = _answer_records(answer, "dns_lookup")
    except CommandError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
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
    import dns.name

    try:
        zone = dns.name.from_text(args.zone).to_text()
    except Exception as exc:
        parser.error(f"invalid zone {args.zone!r}: {exc}")
    try:
        answer = script.dispatch.lookup(zone.encode(), b"SOA", -1, *NO_PACKET)
        soas = _answer_records(answer, f"SOA lookup for {zone}")
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
        records = _answer_records(script.dispatch.list(zone_id, zone.encode()), "dns_list")
    except CommandError as exc:
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
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
    import shutil
    from pathlib import Path

    beside = Path(__file__).resolve().parent / "lua2pipe"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("lua2pipe")
    return str(Path(found).resolve()) if found else None


def _measure_banner(command: list[str], timeout: float) -> tuple[float | None, str]:
    """Starts the coprocess as pdns would, sends HELO 5 and times the first answer line.
    Returns (seconds or None, the line or the reason)."""
    import contextlib
    import selectors
    import subprocess

    started = time.monotonic()
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
    except OSError as exc:
        return None, f"cannot start {command[0]}: {exc.strerror}"
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"HELO\t5\n")
        process.stdin.flush()
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                return None, f"no answer to HELO within {timeout:g} s"
        line = process.stdout.readline().decode("utf-8", "backslashreplace").rstrip("\n")
        return time.monotonic() - started, line
    finally:
        with contextlib.suppress(OSError):
            process.stdin.close()  # type: ignore[union-attr]
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _capabilities(hooks: set[str], dnssec: bool) -> list[tuple[str, str, str]]:
    """The capability list of the lua2 documentation: (capability, native lua2 with this
    script, through the pipe backend)."""
    all_domains = "dns_get_all_domains" in hooks
    needs_all = "no (needs dns_get_all_domains)"
    if dnssec:
        native_dnssec = "yes" if "dns_get_domain_keys" in hooks else "presigned only (no dns_get_domain_keys)"
    else:
        native_dnssec = "no (dns_dnssec is not true)"
    rows = [
        ("Native", "yes", "yes"),
        ("Primary", "yes" if all_domains else needs_all, "no"),
        ("Secondary", "no", "no"),
        ("Producer", "no", "no"),
        ("Consumer", "no", "no"),
        ("Autosecondary", "no", "no"),
        ("DNS Update", "no", "no"),
        ("DNSSEC", native_dnssec, "no (pdns never asks the pipe backend for keys, metadata, NSEC names)"),
        ("Disabled data", "no", "no"),
        ("Comments", "no", "no"),
        ("Search", "yes" if all_domains else needs_all, "no"),
        ("Views", "no", "no"),
        ("API", "read-write (as documented)", "read-only"),
        ("Multiple instances", "yes", "yes"),
        (
            "Zone caching",
            "yes" if all_domains else "no (needs dns_get_all_domains: REFUSED)",
            "no (zone-cache-refresh-interval=0)",
        ),
        (
            "AXFR (dns_list)",
            "yes" if "dns_list" in hooks else "no (no dns_list)",
            "yes (pipe-abi-version>=4)" if "dns_list" in hooks else "no (no dns_list)",
        ),
        ("backend-cmd", "yes (lua2)", "yes (pipe, pipe-abi-version=5)"),
    ]
    return rows


def check_main(argv: list[str]) -> int:
    """``lua2pipe check SCRIPT``: can pdns use this script through lua2pipe, and how."""
    from pathlib import Path

    parser = _subcommand_parser(
        "check",
        "Load the script as the coprocess does and report: the hooks it defines, the capability "
        "table of the lua2 documentation as native lua2 would give it and as the pipe backend "
        "gives it, what will not work through the pipe, and the pdns.conf settings to use "
        "(with pipe-timeout checked against the measured start-up time). Exit code 0: usable "
        "through launch=pipe; 1: not usable (the reasons are the lines starting with 'error:').",
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
    started = time.monotonic()
    script = _load_for_shell(args)
    load_ms = (time.monotonic() - started) * 1000
    if script is None:
        print("loads: no")
        print("usable through the pipe backend: no")
        return 1
    hooks = set(script.hooks)
    functions = _from_lua(script.dispatch.script_functions()).split()
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
            print(f"start-up: {banner_ms:.0f} ms from start to the HELO answer ({_one_line(line)})")
    else:
        warnings.append("lua2pipe's launcher was not found (not on PATH): start-up time not measured")
    print()
    rows = _capabilities(hooks, script.dnssec)
    widths = [
        max(len(row[i]) for row in [("capability", "native lua2", "pipe + lua2pipe"), *rows])
        for i in range(2)
    ]
    for row in [("capability", "native lua2", "pipe + lua2pipe"), *rows]:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]}")
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
    usable = not errors
    print(f"usable through the pipe backend: {'yes' if usable else 'no'}")
    return 0 if usable else 1


SUBCOMMANDS.update(
    {
        "check": (check_main, "load a script and report what works through pdns's pipe backend"),
        "query": (query_main, "call dns_lookup as pdns does and print the records as a zone file"),
        "axfr": (axfr_main, "call dns_list as pdns does for an AXFR and print the zone"),
        "cmd": (cmd_main, "run a CMD (pdnsutil backend-cmd pipe) command without pdns"),
    }
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lua2pipe`` executable."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in SUBCOMMANDS:
        return SUBCOMMANDS[argv[0]][0](argv[1:])
    return serve_main(argv)


if __name__ == "__main__":
    sys.exit(main())
