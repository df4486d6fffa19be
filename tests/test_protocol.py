"""The pipe protocol as pdns speaks it: questions of every ABI and tag, row normalisation, the
rendering of contents, failures, and malformed input. Each test states a question line and the
exact answer pdns must read.

The coprocess runs in process here (``Coprocess.answer``); test_process.py runs the executable.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest
from helpers import NO_PACKET, PACKET, q
from helpers import make_coprocess as make_script_coprocess

import lua2pipe

SCRIPT = Path(__file__).parent / "scripts" / "protocol.lua"

pytestmark = pytest.mark.lua2pipe


def make_coprocess(abi: int = 5, lua: str = "luajit") -> lua2pipe.Coprocess:
    return make_script_coprocess(SCRIPT, abi, lua)


# LuaJIT as pdns links it, and the PUC versions --lua offers (integers and floats differ on 5.3+).
@pytest.fixture(scope="module", params=["luajit", "5.1", "5.2", "5.3", "5.4"])
def coprocess(request: pytest.FixtureRequest) -> lua2pipe.Coprocess:
    return make_coprocess(5, request.param)


def ask(coprocess: lua2pipe.Coprocess, line: str) -> list[str]:
    return coprocess.answer(line.encode()).decode().splitlines()


def data(
    name: str, qtype: str, content: str, ttl: int = 0, zone_id: int = -1, scope: int = 0, auth: int = 1
) -> str:
    return f"DATA\t{scope}\t{auth}\t{name}\tIN\t{qtype}\t{ttl}\t{zone_id}\t{content}"


def assert_fails(answer: list[str], *reason: str) -> None:
    assert answer[-1] == "FAIL", answer
    assert len(answer) == 2 and answer[0].startswith("LOG\t"), answer
    for part in reason:
        assert part in answer[0], answer


# -- what dns_lookup receives


def test_lookup_arguments(coprocess):
    assert ask(coprocess, q("args.Example.ORG", "MX", 3)) == [
        data("t.example.org.", "TXT", '"qtype=MX qname=args.Example.ORG. id=3"', 60, 1),
        "END",
    ]


def test_ctx_with_packet(coprocess):
    assert ask(coprocess, q("ctx.example.org"))[0].endswith('"keys=2 source=192.0.2.1 real=192.0.2.0/24"')


def test_ctx_is_empty_without_packet(coprocess):
    answer = ask(coprocess, q("ctx.example.org", "SOA", -1, NO_PACKET))
    assert answer[0].endswith('"keys=0 source=nil real=nil"')


@pytest.mark.parametrize(
    ("abi", "packet", "expected"),
    [
        (1, "\t192.0.2.1", "source=192.0.2.1 real=192.0.2.1/32"),
        (1, "\t2001:db8::1", "source=2001:db8::1 real=2001:db8::1/128"),
        (2, "\t192.0.2.1\t192.0.2.53", "source=192.0.2.1 real=192.0.2.1/32"),
        (3, PACKET, "source=192.0.2.1 real=192.0.2.0/24"),
        (4, PACKET, "source=192.0.2.1 real=192.0.2.0/24"),
    ],
)
def test_ctx_per_abi(abi, packet, expected):
    answer = ask(make_coprocess(abi), q("ctx.example.org", packet=packet))
    assert answer[0].endswith(f'"keys=2 {expected}"'), answer
    assert answer[-1] == "END"


def test_root_and_escaped_qnames(coprocess):
    assert ask(coprocess, q(".", "SOA", -1, NO_PACKET)) == ["END"]
    assert ask(coprocess, q("args.a\\032b.example.org"))[0].endswith('qname=args.a\\032b.example.org. id=1"')


# -- the answer layouts


def test_data_layout_abi_1_and_2():
    for abi, packet in ((1, "\t192.0.2.1"), (2, "\t192.0.2.1\t192.0.2.53")):
        assert ask(make_coprocess(abi), q("name_dn.example.org", packet=packet)) == [
            "DATA\tx.example.org.\tIN\tA\t0\t-1\t192.0.2.1",
            "END",
        ]


def test_auth_and_scope_below_abi_3_are_logged_once():
    coprocess = make_coprocess(2)
    packet = "\t192.0.2.1\t192.0.2.53"
    first = ask(coprocess, q("auth_false.example.org", packet=packet))
    assert first[0].startswith("LOG\tauth=false and scopeMask need pipe-abi-version 3")
    assert first[1:] == ["DATA\ta.example.org.\tIN\tA\t0\t-1\t192.0.2.1", "END"]
    assert ask(coprocess, q("auth_false.example.org", packet=packet))[0].startswith("DATA")


# -- row keys and value types


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("name_string", data("Www.Example.org.", "A", "192.0.2.1")),
        ("name_dn", data("x.example.org.", "A", "192.0.2.1")),
        ("name_missing", data(".", "A", "192.0.2.1")),
        ("type_qtype", data("a.example.org.", "AAAA", "2001:db8::1")),
        ("type_lower", data("a.example.org.", "AAAA", "2001:db8::1")),
        ("type_code", data("a.example.org.", "AAAA", "2001:db8::1")),
        ("type_numeric_string", data("a.example.org.", "AAAA", "2001:db8::1")),
        ("type_unknown_code", data("a.example.org.", "TYPE65280", "\\# 0")),
        ("content_number", data("a.example.org.", "TXT", '"42"')),
        ("ttl_string", data("a.example.org.", "A", "192.0.2.1", ttl=300)),
        ("ttl_fraction", data("a.example.org.", "A", "192.0.2.1", ttl=300)),
        ("ttl_negative", data("a.example.org.", "A", "192.0.2.1", ttl=4294967291)),
        ("domain_id_wrap", data("a.example.org.", "A", "192.0.2.1", zone_id=-1)),
        ("auth_false", data("a.example.org.", "A", "192.0.2.1", auth=0)),
        ("auth_int", data("a.example.org.", "A", "192.0.2.1", auth=0)),
        ("scope_mask", data("a.example.org.", "A", "192.0.2.1", scope=24)),
        ("scope_mask_docs", data("a.example.org.", "A", "192.0.2.1", scope=24)),
        ("last_modified", data("a.example.org.", "A", "192.0.2.1")),
        ("escaped_name", data("a\\032b.example.org.", "A", "192.0.2.1")),
        ("label_63", data("a" * 63 + ".example.org.", "A", "192.0.2.1")),
    ],
)
def test_row_values(coprocess, case, expected):
    assert ask(coprocess, q(f"{case}.example.org")) == [expected, "END"]


def test_unknown_key_warns_like_native(coprocess):
    assert ask(coprocess, q("unknown_key.example.org")) == [
        data("a.example.org.", "A", "192.0.2.1"),
        "LOG\tUnsupported key 'colour' in lookup or list result",
        "END",
    ]


def test_rows_with_gaps_are_all_sent(coprocess):
    # like native's lua_next, the order of rows outside the array part is unspecified
    answer = ask(coprocess, q("gaps.example.org"))
    rows = [data("a.example.org.", "A", "192.0.2.1"), data("a.example.org.", "A", "192.0.2.5")]
    assert sorted(answer[:-1]) == rows
    assert answer[-1] == "END"


def test_empty_result(coprocess):
    assert ask(coprocess, q("empty.example.org")) == ["END"]


# -- contents on the pipe


@pytest.mark.parametrize(
    ("case", "content"),
    [
        ("mx", "10\tmx.example.org."),
        ("srv", "10\t20 5060 sip.example.org."),
        ("txt_unquoted", '"hello world"'),
        ("txt_tab", '"a\\009b" "c\\009d"'),
        ("txt_newline", '"line1\\010line2"'),
        ("whitespace_outside", "192.0.2.1  "),
        # another control byte outside quotes as \DDD, as pdns's name parser reads it back
        ("control_outside", "192.0.2.1\\000"),
    ],
)
def test_content_rendering(coprocess, case, content):
    line = ask(coprocess, q(f"{case}.example.org"))[0]
    assert line.split("\t", 8)[8] == content
    assert "\n" not in line


def test_ent_rows_cannot_cross_the_pipe_and_are_logged(coprocess):
    answer = ask(coprocess, q("ent.example.org"))
    assert answer[0].startswith("LOG\tEmpty non-terminal row 1 for ent.example.org.")
    assert answer[1:] == ["END"]


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("mx_no_priority", "needs a priority and a target"),
        ("empty_content", "has empty content"),
        ("spaces_content", "has empty content"),
        ("bad_label_64", "is not a valid DNS name"),
        ("bad_leading_dot", 'name value ".a.example.org" (string) is not a valid DNS name'),
        ("bad_ttl", "ttl value true (boolean) is not an integer"),
        ("bad_content", "content value true (boolean)"),
        ("bad_name", "name value 123 (number) is not a DNSName or a string"),
        ("bad_name_text", 'name value "a..b" (string) is not a valid DNS name'),
        ("bad_auth", 'auth value "yes" (string) is not a boolean or an integer'),
        ("table_value", "extra value"),
        ("function_value", "content value function"),
        ("coroutine", "(thread)"),
        ("not_table", 'dns_lookup returned "nope", expected a table of rows'),
        ("nil_result", "dns_lookup returned nil"),
        ("row_not_table", 'row 1 is "a.example.org", expected a table'),
        ("string_key", 'has key "first"; rows must be in an array'),
    ],
)
def test_rejected_results_fail_the_question(coprocess, case, reason):
    assert_fails(ask(coprocess, q(f"{case}.example.org")), "dns_lookup", reason)


# -- errors


def test_lua_error_names_the_script_line(coprocess):
    answer = ask(coprocess, q("boom.example.org"))
    assert_fails(answer, f"dns_lookup failed: {SCRIPT}:", ": boom from the script")


@pytest.mark.parametrize("lua", ["luajit", "5.4"])
def test_lua_error_names_a_long_script_path_once(tmp_path, lua):
    # Lua shortens a long path to "...tail" in its messages: the position is not added twice
    script = tmp_path / ("d" * 70) / "long.lua"
    script.parent.mkdir()
    script.write_text('function dns_lookup() error("boom") end\n')
    loaded = lua2pipe.Script(str(script), lua=lua)
    loaded.set_abi(5)
    coprocess = lua2pipe.Coprocess(loaded, *os.pipe(), resume_abi=5)
    answer = ask(coprocess, q("x.example.org"))
    assert_fails(answer, "dns_lookup failed: ...", "/long.lua:1: boom")
    assert answer[0].count("long.lua") == 1


def test_non_string_error_names_the_script_line(coprocess):
    assert_fails(ask(coprocess, q("boom_table.example.org")), f"{SCRIPT}:")


def test_environment_error_names_the_script_line(coprocess):
    assert_fails(ask(coprocess, q("env_error.example.org")), f"{SCRIPT}:", "a..b")


def test_zone_walk_failure_is_followed_by_end(coprocess):
    answer = ask(coprocess, q("boom.example.org", "SOA", -1, NO_PACKET))
    assert answer[1:] == ["FAIL", "END"]
    assert ask(coprocess, q("boom.example.org", "SOA", 3, NO_PACKET))[1:] == ["FAIL"]


def test_the_state_survives_an_error(coprocess):
    ask(coprocess, q("boom.example.org"))
    assert ask(coprocess, q("name_dn.example.org"))[-1] == "END"


def test_zone_walk_soa(coprocess):
    assert ask(coprocess, q("soa.example.org", "SOA", -1, NO_PACKET)) == [
        data("soa.example.org.", "SOA", "ns.example.org. h.example.org. 1 2 3 4 5", zone_id=7),
        "END",
    ]


# -- AXFR


def test_axfr_abi_5(coprocess):
    assert ask(coprocess, "AXFR\t4\tzone.example") == [
        data("zone.example.", "SOA", "ns.example.org. h.example.org. 1 2 3 4 5", zone_id=4),
        data("www.zone.example.", "A", "192.0.2.1", zone_id=4),
        "END",
    ]


def test_large_axfr_then_small_answers(coprocess):
    # over the size the answer buffer keeps: the next answers must not carry any of it
    for _ in range(2):
        answer = ask(coprocess, "AXFR\t9\tlarge.example")
        assert len(answer) == 5001 and answer[-1] == "END"
        assert answer[0] == data("h1.large.example.", "A", "10.0.0.1", zone_id=9)
        assert answer[4999] == data("h5000.large.example.", "A", "10.0.0.136", zone_id=9)
        assert ask(coprocess, q("empty.example.org")) == ["END"]


def test_large_answer_gives_its_buffer_space_back():
    coprocess = make_coprocess()
    heap_kb = coprocess.script.lua.eval(
        "function() collectgarbage() collectgarbage() return collectgarbage('count') end"
    )
    ask(coprocess, "AXFR\t4\tzone.example")
    before = heap_kb()
    assert len(ask(coprocess, "AXFR\t9\tlarge.example")) == 5001  # about 280 KiB of answer
    assert heap_kb() - before < 64


def test_axfr_false_fails(coprocess):
    assert_fails(ask(coprocess, "AXFR\t4\tmissing.example"), "dns_list returned false")


def test_axfr_below_abi_4_uses_the_zone_walk_answer():
    coprocess = make_coprocess(3)
    assert_fails(ask(coprocess, "AXFR\t7"), "zone name is unknown")
    ask(coprocess, q("soa.example.org", "SOA", -1, NO_PACKET))
    assert ask(coprocess, "AXFR\t7")[0] == data(
        "soa.example.org.", "SOA", "ns.example.org. h.example.org. 1 2 3 4 5", zone_id=7
    )


# -- CMD


@pytest.mark.parametrize(("argument", "text"), [("10", "5"), ("3", "1.5"), ("1e20", "5e+19")])
def test_cmd_number_result_reads_as_native_reads_it(coprocess, argument, text):
    # lua_tolstring on LuaJIT ("%.14g") on every runtime: not "5.0" on Lua 5.3+
    assert ask(coprocess, f"CMD\thalf {argument}") == [text, "END"]


def test_cmd_calls_a_script_function(coprocess):
    assert ask(coprocess, "CMD\techo hi  there") == ["echo:hi  there", "END"]


@pytest.mark.parametrize("name", ["dofile", "load", "loadstring", "require", "os.execute", "print", "newDN"])
def test_cmd_cannot_call_what_the_script_did_not_define(coprocess, name):
    answer = ask(coprocess, f"CMD\t{name} /etc/passwd")
    assert answer[-1] == "END" and len(answer) == 2
    assert f"unknown command '{name}'" in answer[0]


def test_cmd_needs_abi_5():
    assert_fails(ask(make_coprocess(4), "CMD\techo x"), "CMD needs pipe-abi-version=5")


# -- malformed questions


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("Q\twww.example.org\tIN\tANY\t1", "has 8 fields, this one 5"),
        (q("www.example.org") + "\textra", "this one 9"),
        ("Q\twww.example.org\tIN\tANY\tone" + PACKET, "zone id 'one' is not a 32-bit integer"),
        ("Q\twww.example.org\tIN\tANY\t99999999999" + PACKET, "is not a 32-bit integer"),
        ("Q\twww.example.org\tCH\tANY\t1" + PACKET, "qclass 'CH' is not IN"),
        (q("a..b.example.org"), "invalid qname"),
        ("AXFR\t1", "AXFR at pipe ABI 5 has 3 fields, this one 2"),
        ("AXFR\tx\texample.org", "zone id 'x'"),
        ("HELO\t5", "unknown question 'HELO'"),
        ("q\twww.example.org", "unknown question 'q'"),
        ("", "empty line"),
    ],
)
def test_malformed_questions(coprocess, line, reason):
    assert_fails(ask(coprocess, line), "malformed question", reason)


def test_non_utf8_line(coprocess):
    answer = coprocess.answer(b"Q\twww.\xff.org\tIN\tANY\t1" + PACKET.encode()).decode().splitlines()
    assert_fails(answer, "not valid UTF-8")


def test_log_lines_escape_control_characters():
    assert lua2pipe.log_line("a\tb\x1bc") == b"LOG\ta\\x09b\\x1bc\n"
    assert lua2pipe.log_line("") == b"LOG\terror\n"


def test_a_log_line_cuts_a_huge_reason_before_escaping_it():
    began = time.monotonic()
    line = lua2pipe.log_line("\x01" * 25_000_000)
    assert line == b"LOG\t" + b"\\x01" * 8192 + b"... (25000000 bytes in all)\n"
    assert time.monotonic() - began < 0.5  # a slice, not a walk of 25 MB (seconds)


# -- the line reader


def reader_over(data: bytes) -> lua2pipe.LineReader:
    read_end, write_end = os.pipe()

    def feed() -> None:
        os.write(write_end, data)
        os.close(write_end)

    threading.Thread(target=feed, daemon=True).start()
    return lua2pipe.LineReader(read_end)


def test_reader_splits_lines_and_keeps_a_last_partial_line():
    reader = reader_over(b"one\ntwo\nthree")
    assert [reader.readline(), reader.readline(), reader.readline(), reader.readline()] == [
        b"one",
        b"two",
        b"three",
        None,
    ]


def test_reader_refuses_an_overlong_line_and_resynchronises():
    reader = reader_over(b"x" * 1_000_000 + b"\nnext\n")
    with pytest.raises(lua2pipe.ProtocolError, match="longer than"):
        reader.readline()
    assert reader.readline() == b"next"


@pytest.mark.parametrize("tail", [b"\nnext\n", b""], ids=["newline", "eof"])
def test_reader_limit_is_exact(tail):
    limit = lua2pipe.MAX_LINE
    reader = reader_over(b"a" * limit + b"\n" + b"b" * (limit + 1) + tail)
    assert reader.readline() == b"a" * limit
    with pytest.raises(lua2pipe.ProtocolError, match=f"longer than {limit} bytes"):
        reader.readline()
    assert reader.readline() == (b"next" if tail else None)


def test_reader_pending_is_what_was_not_yet_read():
    reader = reader_over(b"one\ntwo\nthree\n")
    reader.readline()
    assert reader.pending == b"two\nthree\n"
