"""``lua2pipe replay``: transcripts run through a real lua2pipe process, the answers diffed.

Each transcript's questions go to a fresh process, then EOF; its whole output is compared
with the expected lines as one sequence, then its exit code and stderr. A failure's report is
a unified diff with each answer under its question, framed the way pdns reads answers
(``modules/pipebackend/pipebackend.cc`` PipeBackend::get: up to END or FAIL, one line for
HELO), so only real differences show.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import lua2pipe
from _lua2pipe.transcript import Transcript, TranscriptError, transcript_escape
from lua2pipe import helo_abi, is_zone_walk


def _expected_matches(expected: tuple[str, Any], line: bytes) -> bool:
    kind, value = expected
    return value == line if kind == "<" else value.fullmatch(line) is not None


def frame_sizes(questions: list[bytes], answers: list[bytes]) -> list[int]:
    """How many answer lines belong to each question, read the way pdns reads them: one line
    for HELO, up to END for CMD (at ABI 5), else up to END or FAIL, plus the END that follows
    FAIL for a zone-walk SOA question; in a remote session (its first line a JSON object, as
    lua2pipe's serve_main decides) one line each (pdns 4.7.3 pipeconnector.cc
    PipeConnector::recv_message). The last question takes any lines left over."""
    sizes: list[int] = []
    if questions[:1] and questions[0].startswith(b"{"):
        sizes = [1 if index < len(answers) else 0 for index in range(len(questions))]
        sizes[-1] += max(0, len(answers) - len(questions))
        return sizes
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
    expected_text = [_render_expected(e) for e in expected]
    actual_text = [
        expected_text[i]
        if i < len(expected) and _expected_matches(expected[i], line)
        else f"< {transcript_escape(line)}".rstrip(" ")
        for i, line in enumerate(answers)
    ]
    before = _render_session(
        questions, expected_text, frame_sizes(questions, [_framing_key(e) for e in expected])
    )
    after = _render_session(questions, actual_text, frame_sizes(questions, answers))
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

    The process is ``command`` (default: this Python running lua2pipe.py) with the script and
    options appended, started in the transcript's directory, so the script path reaches it as
    written. It gets every ``>`` line, then EOF. Its whole output is compared with every
    ``<``/``<~`` line as one sequence; then the exit code and the ``stderr~`` patterns.
    """
    path = Path(path)
    try:
        transcript = Transcript(path)
    except TranscriptError as exc:
        return ReplayResult(path, False, f"malformed transcript: {exc}")
    argv = [*(command or [sys.executable, lua2pipe.__file__]), transcript.script, *transcript.options]
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
