"""Hostile input in remote mode (issue 11, item 4), bounded so it runs in ``make test``, as
tests/test_fuzz.py fuzzes the pipe protocol: mutated requests (pdns's own lines with values
replaced, bytes inserted or cut), random bytes and text, over-long lines, pieces and batches.
Every line must get exactly one reply line that pdns 4.7.3 accepts (a JSON object with a
non-null ``result``: RemoteBackend's Connector::recv kills the coprocess otherwise), and the
next lookup must get exactly its own answer (a canary that echoes the question).

- the reader in process (``RemoteCoprocess.answer``): lua/remote.lua's pattern for pdns's
  lookup line and Python's JSON reader for every other line;
- the whole executable as a hypothesis state machine.
"""

from __future__ import annotations

import json
import os

import pytest
from coprocess_client import FUZZ_SCRIPT, MAX_LINE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from test_remote import Remote, lookup, request

import lua2pipe

pytestmark = pytest.mark.lua2pipe

PACKET = {"local": "192.0.2.53", "real-remote": "192.0.2.0/24", "remote": "192.0.2.1"}
SEEDS = [
    lookup("www.example.org.", "ANY", 1, PACKET),
    lookup("example.org.", "SOA", -1),
    lookup("a\\032b.mx.example.org.", "MX", 7),
    lookup("fail.example.org.", "A", 1),
    request("list", domain_id=1, include_disabled=False, zonename="example.org."),
    request("getAllDomains", include_disabled=True),
    request("getDomainInfo", name="example.org."),
    request("getAllDomainMetadata", name="example.org."),
    request("getDomainMetadata", kind="ALSO-NOTIFY", name="example.org."),
    request("getDomainKeys", name="example.org."),
    request("getBeforeAndAfterNamesAbsolute", id=1, qname="www."),
    request("setNotified", id=1, serial=2),
    request("getUpdatedMasters"),
    request("directBackendCmd", query="help"),
    request("setDomainMetadata", kind="X", name="example.org.", value=["1"]),
    request("initialize", command="/x", timeout="2000"),
]
INTERESTING = [b'"', b"\\", b"{", b"}", b"[", b"]", b",", b":", b"\x00", b"\xff", b"\xc3", b"\r", b" ", b"-"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)


@st.composite
def mutated_request(draw: st.DrawFn) -> bytes:
    """A request near pdns's: a parameter replaced, dropped or added, then bytes corrupted."""
    message = json.loads(draw(st.sampled_from(SEEDS)))
    parameters = message["parameters"]
    for _ in range(draw(st.integers(0, 2))):
        action = draw(st.integers(0, 3))
        if action == 0 and parameters:
            parameters[draw(st.sampled_from(sorted(parameters)))] = draw(JSON_VALUES)
        elif action == 1 and parameters:
            del parameters[draw(st.sampled_from(sorted(parameters)))]
        elif action == 2:
            parameters[draw(st.text(max_size=10))] = draw(JSON_VALUES)
        else:
            message[draw(st.sampled_from(["method", "parameters"]))] = draw(JSON_VALUES)
    line = json.dumps(message).encode()
    for _ in range(draw(st.integers(0, 2))):
        cut = draw(st.integers(0, len(line)))
        line = line[:cut] + draw(st.sampled_from(INTERESTING)) + line[cut + draw(st.integers(0, 2)) :]
    return line.replace(b"\n", b"")


lines = st.one_of(
    mutated_request(),
    st.binary(max_size=200).map(lambda b: b.replace(b"\n", b"")),
    st.text(max_size=100).map(lambda t: t.encode("utf-8", "surrogatepass").replace(b"\n", b"")),
)


def check_reply(reply: bytes) -> dict:
    """One line pdns reads as a reply: a JSON object with a non-null result; log, if any, strings."""
    assert reply.endswith(b"\n") and b"\n" not in reply[:-1], reply
    message = json.loads(reply)
    assert isinstance(message, dict) and message.get("result") is not None, message
    assert all(isinstance(text, str) for text in message.get("log", [])), message
    return message


def canary(nonce: int) -> tuple[bytes, dict]:
    """A lookup for fuzz.lua in pdns's form and its exact reply."""
    name, zone_id, source = f"canary{nonce}.example.org.", nonce % 1000, f"192.0.2.{nonce % 250 + 1}"
    line = lookup(name, "A", zone_id, {**PACKET, "remote": source}).encode()
    row = {"qtype": "TXT", "qname": name, "content": f'"{name} A {zone_id} {source}"', "ttl": 60}
    return line, {"result": [{**row, "domain_id": zone_id}]}


# -- the readers, in process


@pytest.fixture(scope="module")
def coprocess() -> lua2pipe.RemoteCoprocess:
    script = lua2pipe.Script(str(FUZZ_SCRIPT), log=lua2pipe.Log(level=0))
    read_end, write_end = os.pipe()
    return lua2pipe.RemoteCoprocess(script, read_end, write_end, log=lua2pipe.Log(level=0))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(line=lines, nonce=st.integers(0, 10**6))
def test_any_line_gets_one_reply_and_the_next_lookup_its_own(coprocess, line, nonce):
    check_reply(coprocess.answer(line))
    question, expected = canary(nonce)
    assert json.loads(coprocess.answer(question)) == expected


# -- the whole executable


class RemoteMachine(RuleBasedStateMachine):
    """One real lua2pipe in remote mode; any sequence of bad lines, lookups and piecewise writes."""

    def __init__(self) -> None:
        super().__init__()
        self.remote = Remote(FUZZ_SCRIPT, "--loglevel", "0")
        self.nonce = 0
        self.closed = False

    def expect(self) -> None:
        check_reply(self.remote.readline() + b"\n")

    def canary(self) -> None:
        self.nonce += 1
        question, expected = canary(self.nonce)
        assert self.remote.call(question) == expected

    @precondition(lambda self: not self.closed)
    @rule(line=lines)
    def bad_line(self, line: bytes) -> None:
        self.remote.send(line + b"\n")
        self.expect()
        self.canary()

    @precondition(lambda self: not self.closed)
    @rule(line=lines, cut=st.integers(0, 300))
    def line_in_two_writes(self, line: bytes, cut: int) -> None:
        data = line + b"\n"
        self.remote.send(data[:cut])
        self.remote.send(data[cut:])
        self.expect()
        self.canary()

    @precondition(lambda self: not self.closed)
    @rule(batch=st.lists(lines, min_size=1, max_size=8))
    def pipelined(self, batch: list[bytes]) -> None:
        self.remote.send(b"".join(line + b"\n" for line in batch))
        for _ in batch:
            self.expect()
        self.canary()

    @precondition(lambda self: not self.closed)
    @rule(
        size=st.sampled_from([MAX_LINE - 1, MAX_LINE * 2 + 1]), filler=st.sampled_from([b"x", b"{", b"\x00"])
    )
    def overlong_line(self, size: int, filler: bytes) -> None:
        self.remote.send_in_background(b'{"method": "lookup", "x": "' + filler * size + b"\n").join(5)
        reply = json.loads(self.remote.readline())
        assert reply["result"] is False and "longer than" in reply["log"][0], reply
        self.canary()

    @precondition(lambda self: not self.closed)
    @rule(tail=lines)
    def partial_line_at_eof(self, tail: bytes) -> None:
        self.remote.send(tail)
        self.remote.close_stdin()
        if tail:
            self.expect()
        assert self.remote.wait(5) == 0
        self.closed = True

    @precondition(lambda self: self.closed)
    @rule()
    def after_eof(self) -> None:
        assert self.remote.process.poll() == 0

    @invariant()
    def alive(self) -> None:
        if not self.closed:
            assert self.remote.process.poll() is None, self.remote.stderr_text()

    def teardown(self) -> None:
        if not self.closed:
            self.remote.close_stdin()
            assert self.remote.wait(5) == 0
        rest = self.remote.unread()
        assert rest == b"", rest  # nothing unasked for on stdout
        self.remote.__exit__()


RemoteMachine.TestCase.settings = settings(
    max_examples=10,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
test_remote_mode_survives_any_input = RemoteMachine.TestCase
