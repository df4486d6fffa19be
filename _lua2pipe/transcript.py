"""Transcripts: one protocol session as a text file a person can write and read (a pipe
session begins with HELO, a remote-mode one with pdns's ``initialize``, a JSON object).

A transcript names the script and the options it runs with, then holds each line pdns sends
(``> ``) and each line lua2pipe must answer (``< ``, or ``<~ `` for a regular expression), with
tabs written ``\\t``; ``stderr~`` patterns, ``exit:`` and ``xfail:`` say what else is expected.
conformance/README.md describes the format. :mod:`_lua2pipe.replay` runs transcripts,
:mod:`_lua2pipe.record` writes them.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

from lua2pipe import Lua2PipeError

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
