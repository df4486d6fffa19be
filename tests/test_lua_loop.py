"""The serving loop in Lua (LuaJIT, lua/serve.lua and lua2pipe.LuaLoopCoprocess): its own edges,
through the real executable. Python's loop (``--query-logging`` keeps it on LuaJIT) is the
oracle: the same bytes in give the same bytes out, however they are cut into reads.
"""

from __future__ import annotations

import ctypes
import json
import random
import re
import subprocess
import threading
import time

import pytest
from coprocess_client import LUA2PIPE, PDNS_TIMEOUT, Lua2Pipe
from helpers import q
from test_remote import INITIALIZE, lookup, request

import lua2pipe
from _lua2pipe.loop_memory import LoopShared

pytestmark = pytest.mark.lua2pipe

MAX_LINE = lua2pipe.MAX_LINE

ECHO = """
function dns_lookup(qtype, qname)
  if qname:toString() == "spin.example.org." then while true do end end
  return { { name = qname, type = "TXT", content = "asked " .. qtype:getName(), ttl = 60, domain_id = 1 } }
end
function dns_list(target, domain_id)
  local rows = {}
  for i = 1, 3000 do
    rows[i] = { name = "r" .. i .. "." .. target:toString(), type = "A", content = "192.0.2.1", ttl = 60 }
  end
  return rows
end
function count(argument) return "counted " .. argument end
"""


def echo_answer(name: str, qtype: str = "ANY") -> list[str]:
    return [f'DATA\t0\t1\t{name}.\tIN\tTXT\t60\t1\t"asked {qtype}"', "END"]


@pytest.fixture
def echo(tmp_path):
    script = tmp_path / "echo.lua"
    script.write_text(ECHO)
    return script


def test_the_shared_struct_has_one_layout_in_lua_and_in_python():
    script = lua2pipe.Script(str(LUA2PIPE.parent / "examples" / "geo.lua"))
    offset_of = script.lua.eval(
        'function(field) return require("ffi").offsetof("lua2pipe_shared", field) end'
    )
    size = script.lua.eval('require("ffi").sizeof("lua2pipe_shared")')
    fields = [name for name, _ in LoopShared._fields_]
    assert [(name, offset_of(name.encode())) for name in fields] == [
        (name, getattr(LoopShared, name).offset) for name in fields
    ]
    assert size == ctypes.sizeof(LoopShared)


def stream_of_edges() -> bytes:
    """Every kind of line the Lua loop answers or hands back, with the lines at the limit and
    over it placed so that they cross the 128 KiB buffer's refills."""
    lines = [b"HELO\t5"]
    lines += [q(f"n{i}.example.org").encode() for i in range(1500)]  # about 80 KB
    lines += [
        b"X" * MAX_LINE,  # at the limit: unknown tag (Python's answer)
        b"Y" * (MAX_LINE + 1),  # one over: skipped
        q("after-long.example.org").encode(),
        b"Z" * (3 * MAX_LINE),  # over, across several reads
        q("after-longer.example.org").encode(),
        q("caf\xe9.example.org").encode(),  # UTF-8, not ASCII: Python's answer
        b"Q\t\xff.example.org\tIN\tA\t1\t192.0.2.1\t192.0.2.53\t192.0.2.0/24",  # not UTF-8
        b"",
        b"Q\tbad",
        b"AXFR\t1\texample.org",
        b"CMD\tcount a b",
        q("zone-walk.example.org", "SOA", -1).encode(),
    ]
    lines += [q(f"m{i}.example.org", "A").encode() for i in range(1500)]
    return b"\n".join(lines) + b"\n" + q("last-without-newline.example.org").encode()


def served(script, data: bytes, *options: str, seed: int) -> bytes:
    """What lua2pipe writes for ``data``, written in pieces of random sizes (1 to 70,000 bytes)."""
    process = subprocess.Popen(
        [str(LUA2PIPE), str(script), *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )

    def write_in_pieces() -> None:
        pieces = random.Random(seed)
        position = 0
        while position < len(data):
            size = pieces.randint(1, 70000)
            process.stdin.write(data[position : position + size])
            process.stdin.flush()
            position += size
            if pieces.random() < 0.2:
                time.sleep(0.002)  # a read that ends inside a line
        process.stdin.close()

    writer = threading.Thread(target=write_in_pieces, daemon=True)
    writer.start()
    output = process.stdout.read()
    writer.join()
    assert process.wait(30) == 0
    return output


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_cut_of_the_input_into_reads_gets_the_answers_pythons_loop_gives(echo, seed):
    data = stream_of_edges()
    lua_loop = served(echo, data, seed=seed)
    assert lua_loop.count(b"LOG\tline longer than 65536 bytes\nFAIL\n") == 2
    assert lua_loop.split(b"\n", 1)[1] == served(echo, data, "--query-logging", seed=seed).split(b"\n", 1)[1]


def remote_stream_of_edges() -> bytes:
    """Remote mode's lines: lookups (the Lua loop's), other requests (Python's), failures and
    lines over the limit, between lookups that fill the buffer."""
    lines = [json.dumps(INITIALIZE).encode()]
    lines += [lookup(f"n{i}.example.org.").encode() for i in range(800)]
    lines += [
        b"{" + b" " * MAX_LINE + b"}",  # over the limit with its braces
        request("list", zonename="example.org.", domain_id=1).encode(),
        lookup("spaced name.example.org.").encode(),  # a bad qname: Python's failure
        lookup("caf\u00e9.example.org.").encode(),
        request("getAllDomains", include_disabled=False).encode(),
        b"not json",
        request("directBackendCmd", query="count x").encode(),
    ]
    lines += [lookup(f"m{i}.example.org.", "A").encode() for i in range(800)]
    return b"\n".join(lines) + b"\n" + lookup("last-without-newline.example.org.").encode()


@pytest.mark.parametrize("seed", [1, 2])
def test_remote_mode_in_the_lua_loop_gets_the_replies_pythons_loop_gives(echo, seed):
    data = remote_stream_of_edges()
    lua_loop = served(echo, data, seed=seed)
    assert lua_loop.count(b"\n") == 1609 and lua_loop.count(b"line longer than 65536 bytes") == 1
    assert lua_loop == served(echo, data, "--query-logging", seed=seed)


def test_a_line_cut_in_two_writes_is_answered_once_whole(echo):
    with Lua2Pipe(echo) as coprocess:
        line = q("split.example.org").encode()
        coprocess.send(line[:11])
        time.sleep(0.1)
        coprocess.send(line[11:] + b"\n")
        assert coprocess.answer() == [a.encode() for a in echo_answer("split.example.org")]
        assert coprocess.close() == 0


def test_eof_in_the_middle_of_a_line_answers_that_line_then_exits(echo):
    with Lua2Pipe(echo) as coprocess:
        coprocess.send(q("first.example.org") + "\n" + q("cut.example.org"))
        coprocess.close_stdin()
        answers = [coprocess.answer(), coprocess.answer()]
        assert answers == [
            [a.encode() for a in echo_answer(name)] for name in ("first.example.org", "cut.example.org")
        ]
        assert coprocess.wait() == 0


def test_a_runaway_in_the_lua_loop_is_answered_and_the_questions_read_after_it_too(echo):
    with Lua2Pipe(echo, "--max-query-ms", "200") as coprocess:
        # one write: the three questions after the runaway sit unread in the Lua loop's buffer
        coprocess.send(
            "".join(f"{line}\n" for line in [q("spin.example.org"), q("a.example.org"), q("b.example.org")])
        )
        assert [coprocess.answer(timeout=PDNS_TIMEOUT) for _ in range(3)] == [
            [b"LOG\thook still running after 200 ms (--max-query-ms): stopped, Lua state restarted", b"FAIL"],
            [a.encode() for a in echo_answer("a.example.org")],
            [a.encode() for a in echo_answer("b.example.org")],
        ]
        assert coprocess.ask(q("c.example.org", "MX")) == echo_answer("c.example.org", "MX")


STATS_LINE = re.compile(r"latency_(p50|p90|p99|max)_ms=[0-9.]+|uptime_seconds=[0-9.]+|lua_memory_kb=[0-9.]+")


def test_a_cmd_between_questions_sees_the_counts_and_latencies_of_the_lua_loop(echo):
    with Lua2Pipe(echo) as coprocess:
        for name in ("a", "b", "c"):
            assert coprocess.ask(q(f"{name}.example.org")) == echo_answer(f"{name}.example.org")
        assert coprocess.ask("Q\tbad") == [
            "LOG\tmalformed question: Q at pipe ABI 5 has 8 fields, this one 2",
            "FAIL",
        ]
        assert coprocess.ask("AXFR\t1\texample.org")[-1] == "END"
        stats = [
            STATS_LINE.sub(lambda m: m.group(0).split("=")[0] + "=N", line)
            for line in coprocess.ask("CMD\tstats")
        ]
        assert stats == [
            "questions=5",
            "failures=1",
            "latency_samples=5",
            "latency_p50_ms=N",
            "latency_p90_ms=N",
            "latency_p99_ms=N",
            "latency_max_ms=N",
            "uptime_seconds=N",
            "lua_memory_kb=N",
            f'lua="{coprocess.banner.decode().split("(")[1].split(")")[0]}"',
            f"script={echo}",
            "reloads=0",
            "END",
        ]
        assert coprocess.ask(q("d.example.org")) == echo_answer("d.example.org")
