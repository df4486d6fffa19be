"""``lua2pipe SCRIPT --record FILE``: the session pdns drives, written as a transcript.

The file replays with ``lua2pipe replay`` (:mod:`_lua2pipe.replay`), so production traffic
becomes a regression test. Recording is a subclass of the coprocess, chosen at start.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import time
from collections.abc import Callable
from typing import Any

from _lua2pipe.transcript import RECORDED_BANNER, transcript_escape
from lua2pipe import VERSION, Coprocess, LineReader, Log, ProtocolError, RemoteCoprocess, write_all


class Recorder:
    """Writes the session a :class:`Coprocess` serves as a transcript, answer by answer.

    :class:`RecordingCoprocess` hands it each question it reads and each answer it gives.
    Each answer reaches the file with its questions in one unbuffered write, just before it
    goes to pdns: a SIGKILL loses at most the answer in hand.

    The file is created at the first answer (the HELO banner, or remote mode's reply to
    ``initialize``), so a coprocess killed before it answers anything leaves no file. Its name
    is ``pattern`` with ``%p`` replaced by the process id (``%%`` is ``%``); it is never
    overwritten or shared: pdns runs several coprocesses with the same command, so when the
    name is taken by a regular file, ``.PID`` (then ``.PID-N``) goes before its extension; a
    name that is something else (``/dev/null``, a directory) stops the recording. A restart by
    the watchdog (same pid, ``--resume``) continues the same file.
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
        self._questions: list[str] = []  # read, not yet written: they go with their answer
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
        pid = str(os.getpid())
        base = re.sub(r"%[%p]", lambda m: pid if m.group() == "%p" else "%", self.pattern)
        stem, extension = os.path.splitext(base)
        return [base, f"{stem}.{pid}{extension}", *(f"{stem}.{pid}-{n}{extension}" for n in range(2, 100))]

    def _create(self, text: str) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC
        try:
            for path in self._candidates():
                try:
                    self.fd = os.open(path, flags, 0o644)
                except FileExistsError:
                    # /dev/null, a fifo, a directory: taken, but not by an earlier recording, so
                    # a file named after it (/dev/null.PID) is not what the operator meant
                    if not stat.S_ISREG(os.stat(path).st_mode):
                        raise OSError(
                            f"{path} is not a regular file: --record writes a new regular file"
                        ) from None
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
            write_all(self.fd, text.encode("utf-8", "surrogateescape"))
        except OSError as exc:  # a full disk must not stop the answers
            self._give_up(exc)

    def _give_up(self, exc: OSError) -> None:
        self.log(
            3, "cannot record the session; recording stopped", file=self.path or self.pattern, error=str(exc)
        )
        self._sink = lambda _text: None

    def question(self, line: bytes) -> None:
        """Keeps a question read, to be written with its answer."""
        self._questions.append(f"> {transcript_escape(line)}\n" if line else ">\n")

    def unreadable(self, error: ProtocolError) -> None:
        """Notes a line that could not be read (too long), in place of its question."""
        self._questions.append(f"# ({error}: not recorded)\n")

    def answer(self, answer: bytes, *, banner: bool = False) -> None:
        """Writes the questions kept so far and their answer (with ``banner``, a HELO answer's
        OK line as :data:`RECORDED_BANNER`)."""
        lines = answer.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        text = self._questions
        self._questions = []
        for line in lines:
            if banner and line.startswith(b"OK\tlua2pipe "):
                text.append(RECORDED_BANNER + "\n")
            else:
                text.append(f"< {transcript_escape(line)}\n" if line else "<\n")
        self._sink("".join(text))

    def exit(self, status: int) -> None:
        """Writes a nonzero exit status, when the session was recorded at all."""
        if status and self.path is not None:
            self._sink(f"exit: {status}\n")


class RecordingLineReader(LineReader):
    """A :class:`LineReader` that hands every line it reads to a :class:`Recorder`."""

    def __init__(self, recorder: Recorder, fd: int, pending: bytes = b"") -> None:
        super().__init__(fd, pending)
        self.recorder = recorder

    def readline(self) -> bytes | None:
        try:
            line = super().readline()
        except ProtocolError as exc:
            self.recorder.unreadable(exc)
            raise
        if line is not None:
            self.recorder.question(line)
        return line


class RecordingCoprocess(Coprocess):
    """A :class:`Coprocess` (same arguments after ``recorder``) that records its session.

    Chosen once at start for ``--record``, so a coprocess that does not record runs the plain
    class and pays nothing. Every answer goes to the recorder just before it goes to pdns, but
    the watchdog's answer to a runaway hook just after.
    """

    def __init__(self, recorder: Recorder, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.recorder = recorder
        self.reader = RecordingLineReader(recorder, self.reader.fd, self.reader.pending)

    def answer(self, line: bytes) -> bytes:
        text = super().answer(line)
        self.recorder.answer(text)
        return text

    def write(self, data: bytes) -> None:
        self.recorder.answer(data, banner=True)
        super().write(data)

    def stream(self, part: bytes) -> None:
        # the rows of an AXFR answer as they are streamed: the transcript's answer is the parts
        # and the rest, in order, as pdns reads them
        self.recorder.answer(part)
        super().stream(part)

    def send_runaway_answer(self, reason: str) -> None:
        # pdns first: the hook has used --max-query-ms of pdns's pipe-timeout already, and a slow
        # disk must not use the rest. Then the file, before the watchdog re-executes lua2pipe
        # (which loses the question kept in memory), even when pdns has gone away.
        answer = self.runaway_answer(reason)
        try:
            write_all(self.output_fd, answer)
        finally:
            self.recorder.answer(answer)

    def serve(self) -> int:
        status = super().serve()
        self.recorder.exit(status)
        return status


class RecordingRemoteCoprocess(RecordingCoprocess, RemoteCoprocess):
    """A :class:`RemoteCoprocess` that records its session: :class:`RecordingCoprocess`'s
    methods, each around the remote one (one request line, one reply line; the runaway reply
    is :meth:`RemoteCoprocess.runaway_answer`'s). ``initialize``, answered before the script
    loads, is recorded by :func:`lua2pipe.answer_initialize`."""


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
