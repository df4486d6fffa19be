"""The conformance suite: every ``conformance/transcripts/*.txt`` is one test case, replayed
through a real lua2pipe process by the same function ``lua2pipe replay`` uses. A transcript
with an ``xfail:`` line is expected to fail (strictly: once it passes, remove the line).

The format tests below keep the transcript format itself honest: escapes round-trip, parse
errors name the line, and a failure's diff puts each answer under its question.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import lua2pipe
from _lua2pipe.replay import frame_sizes, replay_transcript, transcript_xfail
from _lua2pipe.transcript import Transcript, TranscriptError, transcript_escape, transcript_unescape

HERE = Path(__file__).resolve().parent

TRANSCRIPTS = sorted((HERE / "transcripts").glob("*.txt"))


def _case(path: Path) -> object:
    reason = transcript_xfail(path)
    marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
    return pytest.param(path, id=path.stem, marks=marks)


@pytest.mark.parametrize("path", [_case(path) for path in TRANSCRIPTS])
def test_transcript(path: Path) -> None:
    result = replay_transcript(path)
    if not result.passed:
        pytest.fail(result.report, pytrace=False)


def test_suite_size() -> None:
    assert len(TRANSCRIPTS) >= 40


# -- the format


@given(st.binary().filter(lambda data: b"\n" not in data))
def test_escape_round_trip(data: bytes) -> None:
    text = transcript_escape(data)
    assert "\n" not in text and "\t" not in text
    assert text == text.strip(" \t\r")  # editors may strip trailing blanks: none to lose
    assert transcript_unescape(text) == data


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("Q\\twww.example.org", b"Q\twww.example.org"),
        ("a\\032b.example.org", b"a\\032b.example.org"),  # pdns's escapes are written as is
        ("dot\\.label", b"dot\\.label"),
        ("back\\\\slash", b"back\\slash"),
        ("back\\\\\\\\slash", b"back\\\\slash"),
        ("caf\\xc3\\xa9 \\xff", "café".encode() + b" \xff"),
        ("\\x20END", b" END"),
        ("\\xZZ \\", b"\\xZZ \\"),
    ],
)
def test_unescape(text: str, data: bytes) -> None:
    assert transcript_unescape(text) == data


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"DATA\t0\t1\ta\\032b.example.org.", "DATA\\t0\\t1\\ta\\032b.example.org."),
        (b" END", "\\x20END"),
        (b"a\\\tb", "a\\\\\\tb"),
        (b"x\\ty", "x\\\\ty"),
        (b"\xff\x01", "\\xff\\x01"),
        (b"back\\\\slash", "back\\\\\\\\slash"),  # pdns's \\ is written \\\\
        (b"a\\ ", "a\\\\\\x20"),
        (b"\\", "\\"),
    ],
)
def test_escape(data: bytes, text: str) -> None:
    assert transcript_escape(data) == text


def test_parse_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("script: x.lua\n> HELO\\t5\n<<< what\n")
    with pytest.raises(TranscriptError, match=r"bad\.txt:3: "):
        Transcript(path)
    path.write_text("> HELO\\t5\n")
    with pytest.raises(TranscriptError, match="no 'script:' line"):
        Transcript(path)
    path.write_text("script: x.lua\n<~ (unclosed\n")
    with pytest.raises(TranscriptError, match=r"bad\.txt:2: "):
        Transcript(path)
    path.write_text("script: x.lua\n> HELO\t5\n")  # a real tab: invisible, refused
    with pytest.raises(TranscriptError, match=r"bad\.txt:2: a tab character"):
        Transcript(path)


def test_header_and_trailing_blanks(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text(
        "# comment\nscript: s.lua  \noptions: --lua 5.1 --loglevel 6\nexit: 1\n"
        "xfail: why\nstderr~ a\\tb\n\n> HELO\\t5 \t\n< END\n<~ O.\n"
    )
    transcript = Transcript(path)
    assert transcript.script == "s.lua"
    assert transcript.options == ["--lua", "5.1", "--loglevel", "6"]
    assert (transcript.exit, transcript.xfail) == (1, "why")
    assert transcript.questions == [b"HELO\t5"]
    assert transcript.expected[0] == ("<", b"END")
    assert transcript.expected[1][1].fullmatch(b"OK")
    assert transcript.stderr[0][1].search(b"xa\tby")


def test_failure_report_is_a_readable_diff(tmp_path: Path) -> None:
    script = tmp_path / "s.lua"
    script.write_text(
        "function dns_lookup(qtype, qname)\n"
        '  return {{name = qname, type = "A", ttl = 5, content = "192.0.2.7"}}\nend\n'
    )
    path = tmp_path / "t.txt"
    path.write_text(
        "script: s.lua\n> HELO\\t3\n<~ OK\\tlua2pipe .*\n"
        "> Q\\ta.example.org\\tIN\\tANY\\t1\\t192.0.2.1\\t192.0.2.2\\t192.0.2.1/32\n"
        "< DATA\\t0\\t1\\ta.example.org.\\tIN\\tA\\t5\\t-1\\t192.0.2.8\n< END\n"
        "> Q\\tb.example.org\\tIN\\tANY\\t1\\t192.0.2.1\\t192.0.2.2\\t192.0.2.1/32\n"
        "< DATA\\t0\\t1\\tb.example.org.\\tIN\\tA\\t5\\t-1\\t192.0.2.7\n< END\n"
    )
    result = replay_transcript(path)
    assert not result.passed
    assert "-< DATA\\t0\\t1\\ta.example.org.\\tIN\\tA\\t5\\t-1\\t192.0.2.8" in result.report
    assert "+< DATA\\t0\\t1\\ta.example.org.\\tIN\\tA\\t5\\t-1\\t192.0.2.7" in result.report
    assert " > Q\\ta.example.org" in result.report  # the question, as context
    assert "\t" not in result.report.split("lua2pipe's stderr")[0]
    assert " <~ OK\\tlua2pipe .*" in result.report and "+< OK" not in result.report  # banner matched


def test_frame_sizes_follow_pdns() -> None:
    questions = [
        b"HELO\t5",
        b"Q\ta\tIN\tSOA\t-1\t0.0.0.0\t0.0.0.0\t0.0.0.0/0",
        b"Q\ta\tIN\tSOA\t1\t0.0.0.0\t0.0.0.0\t0.0.0.0/0",
        b"CMD\tx",
        b"AXFR\t1\ta",
    ]
    answers = [b"OK", b"LOG\tx", b"FAIL", b"END", b"LOG\ty", b"FAIL", b"FAIL", b"END", b"DATA", b"END"]
    assert frame_sizes(questions, answers) == [1, 3, 2, 2, 2]


def test_frame_sizes_of_a_remote_session_are_one_reply_line_per_request_line() -> None:
    questions = [b'{"method": "initialize"}', b'{"method": "lookup"}', b"not json", b"{}"]
    assert frame_sizes(questions, [b'{"result":true}', b"END", b"FAIL"]) == [1, 1, 1, 0]
    assert frame_sizes(questions, [b"{}"] * 6) == [1, 1, 1, 3]


def test_replay_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = TRANSCRIPTS[0]
    bad = tmp_path / "bad.txt"
    bad.write_text(f"script: {HERE / 'scripts' / 'zone.lua'}\n> HELO\\t3\n< OK\n")
    assert lua2pipe.main(["replay", str(good)]) == 0
    assert "1 transcripts, 1 passed, 0 failed" in capsys.readouterr().out
    assert lua2pipe.main(["replay", str(good), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "-< OK" in out and "+<~ OK" not in out and "+< OK\\tlua2pipe" in out
    assert out.rstrip().endswith("2 transcripts, 1 passed, 1 failed")
