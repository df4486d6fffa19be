"""A pdns-like client for the real ``lua2pipe`` executable: writes protocol lines and reads
answers with timeouts, never blocking forever (tests/test_robustness.py, tests/test_fuzz.py,
bench/soak.py).

stderr is drained by a thread into ``stderr_text()``, so a chatty coprocess cannot block on a
full pipe. Each instance runs in its own session, so ``close()`` can tell whether anything was
left behind in it.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import threading
import time
from pathlib import Path

import lua2pipe

ROOT = Path(__file__).resolve().parent.parent
LUA2PIPE = ROOT / "lua2pipe"
SCRIPTS = Path(__file__).resolve().parent / "scripts"
HOSTILE = SCRIPTS / "hostile.lua"

#: pdns's pipe-timeout default: every answer line must come within it.
PDNS_TIMEOUT = 2.0


class AnswerTimeout(AssertionError):
    pass


class Lua2Pipe:
    """One running coprocess. ``helo=None`` sends no HELO."""

    def __init__(
        self,
        script: str | os.PathLike[str] = HOSTILE,
        *args: str,
        abi: int | None = 5,
        env: dict[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.command = [str(LUA2PIPE), str(script), *args]
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            bufsize=0,
        )
        self.pid = self.process.pid
        self._out = self.process.stdout.fileno()
        os.set_blocking(self._out, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._out, selectors.EVENT_READ)
        self._buffer = b""
        self._eof = False
        self._stderr: list[bytes] = []
        self._stderr_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_thread.start()
        self.banner: bytes | None = None
        if abi is not None:
            self.send(f"HELO\t{abi}\n")
            self.banner = self.readline(timeout)

    # -- raw I/O

    def _drain_stderr(self) -> None:
        fd = self.process.stderr.fileno()
        try:
            for chunk in iter(lambda: os.read(fd, 65536), b""):
                self._stderr.append(chunk)
        except OSError:  # close() gave up waiting for EOF (a slow exit) and closed the pipe
            return

    def stderr_text(self, settle: float = 0.0) -> str:
        time.sleep(settle)
        return b"".join(self._stderr).decode("utf-8", "backslashreplace")

    def send(self, data: str | bytes) -> None:
        if isinstance(data, str):
            data = data.encode()
        self.process.stdin.write(data)

    def send_in_background(self, data: str | bytes) -> threading.Thread:
        """Writes from a thread, for more than the pipe holds while the answers are read."""
        thread = threading.Thread(target=self.send, args=(data,), daemon=True)
        thread.start()
        return thread

    def readline(self, timeout: float = PDNS_TIMEOUT) -> bytes:
        """One answer line without its newline; AnswerTimeout if none within ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line, self._buffer = self._buffer[:end], self._buffer[end + 1 :]
                return line
            if self._eof:
                raise AnswerTimeout(f"stdout closed; partial {self._buffer[:200]!r}")
            left = deadline - time.monotonic()
            if left <= 0 or not self._selector.select(left):
                raise AnswerTimeout(f"no answer line within {timeout} s; partial {self._buffer[:200]!r}")
            try:
                chunk = os.read(self._out, 1 << 20)
            except BlockingIOError:
                continue
            if not chunk:
                self._eof = True
            self._buffer += chunk

    def answer(
        self, zone_walk: bool = False, timeout: float = PDNS_TIMEOUT, cmd: bool = False
    ) -> list[bytes]:
        """The lines of one answer, as pdns frames it: up to END, or FAIL (FAIL END after a
        zone-walk question). ``timeout`` bounds each line, as pipe-timeout does."""
        lines = []
        while True:
            line = self.readline(timeout)
            lines.append(line)
            if line == b"END" or (line == b"FAIL" and not cmd):
                break
        if lines[-1] == b"FAIL" and zone_walk:
            lines.append(self.readline(timeout))
        return lines

    def ask(self, line: str | bytes, timeout: float = PDNS_TIMEOUT) -> list[str]:
        data = line.encode() if isinstance(line, str) else line
        self.send(data + b"\n")
        cmd = data.startswith(b"CMD\t")
        return [
            a.decode("utf-8", "backslashreplace")
            for a in self.answer(lua2pipe.is_zone_walk(data.split(b"\t")), timeout, cmd=cmd)
        ]

    # -- the end

    def unread(self) -> bytes:
        """What the coprocess wrote that no readline took, up to its EOF: call it after exit."""
        rest = self._buffer
        with contextlib.suppress(BlockingIOError):
            while not self._eof and (chunk := os.read(self._out, 1 << 20)):
                rest += chunk
        return rest

    def close_stdin(self) -> None:
        if not self.process.stdin.closed:
            self.process.stdin.close()

    def wait(self, timeout: float = 5.0) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AnswerTimeout(f"lua2pipe did not exit within {timeout} s") from None

    def session_members(self) -> list[int]:
        """Processes still in this coprocess's session (itself included while it runs)."""
        members = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fields = proc_stat_fields(int(entry))
            except OSError:
                continue
            if int(fields[3]) == self.pid and fields[0] != b"Z":  # field 6: session id
                members.append(int(entry))
        return members

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait()

    def close(self, timeout: float = 5.0) -> int:
        """EOF on stdin, then the exit code."""
        self.close_stdin()
        try:
            return self.wait(timeout)
        finally:
            self._selector.close()
            self.process.stdout.close()
            self._stderr_thread.join(1)
            self.process.stderr.close()

    def __enter__(self) -> Lua2Pipe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.kill()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream and not stream.closed:
                with contextlib.suppress(OSError):
                    stream.close()


def proc_stat_fields(pid: int) -> list[bytes]:
    """/proc/PID/stat after ``pid (comm)``, which may hold spaces: field 3 (state) is [0]."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rsplit(b")", 1)[1].split()


# -- what any answer must look like, whatever the question (the fuzzers' oracle)

FUZZ_SCRIPT = SCRIPTS / "fuzz.lua"
MAX_LINE = 65536


def answer_kind(line: bytes, abi: int = 5) -> str:
    """How pdns frames the answer to ``line`` (a line without its newline) as lua2pipe answers
    it: "cmd" (lines up to END), "zone_walk" (FAIL is followed by END) or "plain"."""
    fields = line.split(b"\t")
    if fields[0] == b"CMD" and abi >= 5 and len(line) <= MAX_LINE:
        return "cmd"
    valid_question = (
        len(line) <= MAX_LINE
        and fields[0] == b"Q"
        and len(fields) == (6, 7, 8, 8, 8)[abi - 1]
        and fields[2] == b"IN"
        and fields[3] == b"SOA"
        and re.fullmatch(rb"-?[0-9]+", fields[4]) is not None
        and int(fields[4]) == -1
    )
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        valid_question = False
    return "zone_walk" if valid_question else "plain"


def check_framed(lines: list[bytes], kind: str) -> None:
    """One complete answer of that kind, each line one pdns can read without desyncing."""
    if kind == "cmd":
        assert lines[-1] == b"END" and b"END" not in lines[:-1], lines
        return
    if lines[-1] == b"END" and kind == "zone_walk" and lines[-2:] == [b"FAIL", b"END"]:
        lines = lines[:-1]
    assert lines[-1] in (b"END", b"FAIL"), lines
    for line in lines[:-1]:
        assert line.startswith((b"DATA\t", b"LOG\t")), lines
        assert line[4:].strip(b"\t "), lines  # pdns desyncs on an empty LOG
        assert not any(b < 32 and b != 9 for b in line) and b"\x7f" not in line, lines
        if line.startswith(b"DATA\t"):
            fields = line.split(b"\t")  # trailing white space would change the content
            assert len(fields) in (9, 10) and all(fields) and line == line.rstrip(), lines


def good_question(nonce: int) -> tuple[bytes, list[bytes]]:
    """A question for fuzz.lua and its exact answer: the canary after each fuzzed line."""
    name = f"canary{nonce}.example.org"
    question = f"Q\t{name}\tIN\tA\t{nonce % 1000}\t192.0.2.{nonce % 250 + 1}\t192.0.2.53\t192.0.2.0/24"
    answer = [
        f'DATA\t0\t1\t{name}.\tIN\tTXT\t60\t{nonce % 1000}\t"{name}. A {nonce % 1000} '
        f'192.0.2.{nonce % 250 + 1}"'.encode(),
        b"END",
    ]
    return question.encode(), answer
