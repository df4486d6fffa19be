"""Hostile input on stdin (issue 6), bounded so it runs in ``make test``: random and mutated
lines, over-long lines, NUL bytes, non-UTF-8, partial lines at EOF, ABI mismatches. After every
bad line the next good question must get exactly its answer (a canary that echoes the question,
so a shifted answer cannot pass).

- the parser in process (``Coprocess.answer``) and the line reader against a model;
- the whole executable as a hypothesis state machine: one coprocess per run, bad and good
  lines in any order, written in any pieces;
- the handshake.

``make fuzz-long`` runs the coverage-guided harness in tests/fuzz/ (atheris) for longer.
"""

from __future__ import annotations

import os
import threading

import pytest
from coprocess_client import (
    FUZZ_SCRIPT,
    MAX_LINE,
    AnswerTimeout,
    Lua2Pipe,
    answer_kind,
    check_framed,
    good_question,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import lua2pipe

pytestmark = pytest.mark.lua2pipe

SEEDS = [
    b"Q\twww.example.org\tIN\tANY\t1\t192.0.2.1\t192.0.2.53\t192.0.2.0/24",
    b"Q\texample.org\tIN\tSOA\t-1\t0.0.0.0\t0.0.0.0\t0.0.0.0/0",
    b"Q\ta\\032b.mx.example.org\tIN\tMX\t7\t2001:db8::1\t::1\t2001:db8::/48",
    b"AXFR\t1\texample.org",
    b"CMD\techo hello",
    b"CMD\thelp",
    b"CMD\tstats",
    b"HELO\t5",
    b"",
]
INTERESTING = [
    b"\t",
    b"\x00",
    b"\xff",
    b"\xc3",
    b"\r",
    b"\\",
    b".",
    b"-1",
    b"SOA",
    b"IN",
    b"Q",
    b"END",
    b"FAIL",
    b"LOG",
    b"DATA",
    b"99999999999",
    b"..",
    b"\\0",
    b"\\999",
    b" ",
    b"\x7f",
    b"%s",
    b"\xe2\x80\xae",
    b"CMD",
]


@st.composite
def mutated_line(draw: st.DrawFn) -> bytes:
    """A line near the questions pdns sends: fields dropped, doubled, replaced or corrupted."""
    fields = draw(st.sampled_from(SEEDS)).split(b"\t")
    for _ in range(draw(st.integers(0, 4))):
        action = draw(st.integers(0, 4))
        where = draw(st.integers(0, len(fields)))
        if action == 0 and fields:
            fields.pop(min(where, len(fields) - 1))
        elif action == 1:
            fields.insert(where, draw(st.sampled_from(INTERESTING)))
        elif action == 2 and fields:
            fields[min(where, len(fields) - 1)] = draw(st.binary(max_size=40))
        elif action == 3 and fields:
            i = min(where, len(fields) - 1)
            cut = draw(st.integers(0, len(fields[i])))
            fields[i] = fields[i][:cut] + draw(st.sampled_from(INTERESTING)) + fields[i][cut:]
        else:
            fields.append(draw(st.binary(max_size=20)))
    return b"\t".join(fields).replace(b"\n", b"")


lines = st.one_of(
    mutated_line(),
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass").replace(b"\n", b"")),
)


# -- the parser, in process


@pytest.fixture(scope="module")
def coprocess() -> lua2pipe.Coprocess:
    script = lua2pipe.Script(str(FUZZ_SCRIPT), log=lua2pipe.Log(level=0))
    script.set_abi(5)
    read_end, write_end = os.pipe()
    return lua2pipe.Coprocess(script, read_end, write_end, resume_abi=5, log=lua2pipe.Log(level=0))


def split_answer(text: bytes) -> list[bytes]:
    assert text.endswith(b"\n"), text
    return text[:-1].split(b"\n")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=lines, nonce=st.integers(0, 10**6))
def test_any_line_gets_one_framed_answer_and_the_next_question_its_own(coprocess, line, nonce):
    check_framed(split_answer(coprocess.answer(line)), answer_kind(line))
    question, expected = good_question(nonce)
    assert split_answer(coprocess.answer(question)) == expected


# -- the line reader, against a model


def reference_lines(data: bytes) -> list[bytes | str]:
    """What LineReader must return: each line, or "long" for a line over MAX_LINE bytes, then
    the partial tail, however the reads split the bytes."""
    *complete, tail = data.split(b"\n")
    lines = [*complete, tail] if tail else complete
    return ["long" if len(line) > MAX_LINE else line for line in lines]


@settings(max_examples=60, deadline=None)
@given(
    parts=st.lists(
        st.one_of(
            st.binary(max_size=300),
            st.sampled_from([b"\n", b"\x00\n", b"\r\n", b"Q\t\n"]),
            st.integers(MAX_LINE - 1, MAX_LINE + 2).map(lambda n: b"w" * n + b"\n"),
            st.integers(2 * MAX_LINE + 1, 3 * MAX_LINE).map(lambda n: b"x" * n + b"\n"),
            st.integers(1, MAX_LINE + 2).map(lambda n: b"y" * n),
        ),
        max_size=12,
    ),
    pieces=st.lists(st.integers(1, 70000), max_size=20),
)
def test_line_reader_matches_the_model_however_the_bytes_arrive(parts, pieces):
    data = b"".join(parts)
    read_end, write_end = os.pipe()

    def feed() -> None:
        view, offset = memoryview(data), 0
        for size in [*pieces, len(data)]:
            if offset >= len(data):
                break
            os.write(write_end, view[offset : offset + size])
            offset += size
        os.close(write_end)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    reader = lua2pipe.LineReader(read_end)
    got: list[bytes | str] = []
    while True:
        try:
            line = reader.readline()
        except lua2pipe.ProtocolError:
            got.append("long")
            continue
        if line is None:
            break
        got.append(line)
    writer.join()
    os.close(read_end)
    assert got == reference_lines(data)


# -- the whole executable


class CoprocessMachine(RuleBasedStateMachine):
    """One real lua2pipe; any sequence of bad lines, good questions and piecewise writes."""

    def __init__(self) -> None:
        super().__init__()
        self.coprocess = Lua2Pipe(FUZZ_SCRIPT, "--loglevel", "0")
        self.nonce = 0
        self.closed = False

    def expect(self, line: bytes) -> list[bytes]:
        kind = answer_kind(line)
        answer = self.coprocess.answer(zone_walk=kind == "zone_walk", cmd=kind == "cmd")
        check_framed(answer, kind)
        return answer

    def canary(self) -> None:
        self.nonce += 1
        question, expected = good_question(self.nonce)
        self.coprocess.send(question + b"\n")
        assert self.coprocess.answer() == expected

    @precondition(lambda self: not self.closed)
    @rule(line=lines)
    def bad_line(self, line: bytes) -> None:
        self.coprocess.send(line + b"\n")
        self.expect(line)
        self.canary()

    @precondition(lambda self: not self.closed)
    @rule(line=lines, cut=st.integers(0, 300))
    def line_in_two_writes(self, line: bytes, cut: int) -> None:
        data = line + b"\n"
        self.coprocess.send(data[:cut])
        self.coprocess.send(data[cut:])
        self.expect(line)
        self.canary()

    @precondition(lambda self: not self.closed)
    @rule(batch=st.lists(lines, min_size=1, max_size=8))
    def pipelined(self, batch: list[bytes]) -> None:
        self.coprocess.send(b"".join(line + b"\n" for line in batch))
        for line in batch:
            self.expect(line)
        self.canary()

    @precondition(lambda self: not self.closed)
    @rule(
        size=st.sampled_from([MAX_LINE - 1, MAX_LINE * 2 + 1, MAX_LINE * 3]),
        filler=st.sampled_from([b"x", b"\x00", b"\t"]),
    )
    def overlong_line(self, size: int, filler: bytes) -> None:
        self.coprocess.send_in_background(b"Q\t" + filler * size + b"\n").join(5)
        answer = self.coprocess.answer()
        assert answer[-1] == b"FAIL" and b"longer than" in answer[0], answer
        self.canary()

    @precondition(lambda self: not self.closed)
    @rule(tail=lines)
    def partial_line_at_eof(self, tail: bytes) -> None:
        self.coprocess.send(tail)
        self.coprocess.close_stdin()
        if tail:
            self.expect(tail)
        assert self.coprocess.wait(5) == 0
        self.closed = True

    @precondition(lambda self: self.closed)
    @rule()
    def after_eof(self) -> None:
        assert self.coprocess.process.poll() == 0

    @invariant()
    def alive(self) -> None:
        if not self.closed:
            assert self.coprocess.process.poll() is None, self.coprocess.stderr_text()

    def teardown(self) -> None:
        if not self.closed:
            self.coprocess.close_stdin()
            assert self.coprocess.wait(5) == 0
        rest = self.coprocess.unread()
        assert rest == b"", rest  # nothing unasked for on stdout
        self.coprocess.__exit__()


CoprocessMachine.TestCase.settings = settings(
    max_examples=12,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_coprocess_survives_any_input = CoprocessMachine.TestCase


# -- the handshake


@settings(max_examples=8, deadline=None)
@given(
    helo=st.one_of(
        st.sampled_from(
            [
                b"HELO\t0",
                b"HELO\t6",
                b"HELO\t-1",
                b"HELO\t5\t5",
                b"HELO 5",
                b"helo\t5",
                b"HELO\t",
                b"HELO\t\xff",
                b"HELO\t5\x00",
                b"\x00",
                b"",
            ]
        ),
        lines.filter(lambda b: not (b.startswith(b"HELO\t") and b[5:] in (b"1", b"2", b"3", b"4", b"5"))),
    )
)
def test_a_wrong_handshake_is_refused_and_nothing_more_is_answered(helo):
    with Lua2Pipe(FUZZ_SCRIPT, abi=None) as coprocess:
        coprocess.send(helo + b"\n")
        assert coprocess.readline() == b"FAIL"
        question, _ = good_question(1)
        coprocess.send(question + b"\n")
        with pytest.raises(AnswerTimeout):
            coprocess.readline(0.2)  # pdns's contract: after FAIL, wait to be terminated
        coprocess.close_stdin()
        assert coprocess.wait(5) == 1
        assert coprocess.unread() == b""


@pytest.mark.parametrize("abi", [1, 2, 3, 4])
def test_questions_of_another_abi_fail_and_the_stream_holds(abi):
    with Lua2Pipe(FUZZ_SCRIPT, abi=abi) as coprocess:
        assert coprocess.banner.startswith(b"OK\t")
        question, expected = good_question(1)  # an ABI 3-5 question: 8 fields
        for line in (question, b"CMD\techo x", b"AXFR\t1\texample.org"):
            coprocess.send(line + b"\n")
            answer = coprocess.answer()
            if abi >= 3 and line is question:
                assert answer == expected
            elif abi >= 4 and line.startswith(b"AXFR"):
                assert answer[-1] == b"END"
            else:
                assert answer[-1] == b"FAIL" and answer[0].startswith(b"LOG\t"), answer
        assert coprocess.close() == 0
