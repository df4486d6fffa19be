"""Large AXFRs (issue 15): an AXFR answer is streamed as its rows are rendered, so only the
script's own time counts against --max-query-ms, and a failure after rows were streamed still
ends the answer in LOG + FAIL with the stream in sync. Driven through the executable as pdns
drives it (tests/coprocess_client.py: each line bounded by pipe-timeout), on every runtime:
LuaJIT renders into a string.buffer, PUC Lua into a table of pieces.
"""

from __future__ import annotations

import pytest
from coprocess_client import Lua2Pipe
from helpers import q

pytestmark = pytest.mark.lua2pipe

RUNTIMES = ["luajit", "5.1", "5.2", "5.3", "5.4"]

#: --max-query-ms for the failure tests: the spinning row is cut at it.
LIMIT_MS = 200

#: dns_list's rows: AXFR_ROWS of one shared row. With AXFR_ROW_US, its name is a DNSName whose
#: toString (called by lua2pipe while rendering each row) burns that much CPU time: rendering
#: costs a known CPU time, on a fast machine or a loaded one. With AXFR_FAIL_AT or AXFR_SPIN_AT,
#: that row is one pdns must not get: a bad TTL, or a name whose toString never returns (a
#: hostile metamethod met while rendering).
SCRIPT = """
local function number(name) return tonumber(os.getenv("AXFR_" .. name)) end
local ROWS, ROW_US = number("ROWS"), number("ROW_US")
local FAIL_AT, SPIN_AT = number("FAIL_AT"), number("SPIN_AT")
local ROW = { name = "host.example.org", type = "A", content = "192.0.2.1", ttl = 60, domain_id = 1 }
local methods = getmetatable(newDN("example.org")).__index
local to_string = methods.toString
if ROW_US then
  ROW.name = newDN("host.example.org")
  methods.toString = function(name)
    local stop = os.clock() + ROW_US / 1e6
    repeat until os.clock() >= stop
    return to_string(name)
  end
end
local rows = {}
for i = 1, ROWS do rows[i] = ROW end
function dns_lookup(qtype, qname)
  return { { name = qname, type = "TXT", content = "fine", ttl = 60, domain_id = 1 } }
end
function dns_list(target, id)
  if FAIL_AT then
    rows[FAIL_AT] = { name = "bad.example.org", type = "A", content = "192.0.2.1", ttl = true }
  end
  if SPIN_AT then
    local name = newDN("spin.example.org")
    methods.toString = function() while true do end end
    rows[SPIN_AT] = { name = name, type = "A", content = "192.0.2.1", ttl = 60 }
  end
  return rows
end
"""

DATA = "DATA\t0\t1\thost.example.org.\tIN\tA\t60\t1\t192.0.2.1"
NEXT_ANSWER = ['DATA\t0\t1\tnext.example.org.\tIN\tTXT\t60\t1\t"fine"', "END"]
AXFR = "AXFR\t1\texample.org."


def serve(tmp_path, lua: str, *options: str, **env: int) -> Lua2Pipe:
    script = tmp_path / "axfr.lua"
    script.write_text(SCRIPT)
    environment = {f"AXFR_{k.upper()}": str(v) for k, v in env.items()}
    return Lua2Pipe(script, "--lua", lua, *options, env=environment)


@pytest.mark.parametrize("lua", RUNTIMES)
def test_an_axfr_rendered_far_longer_than_max_query_ms_is_streamed_whole(tmp_path, lua):
    # 150,000 rows of 10 us CPU each: at least 1.5 s to render, past the default --max-query-ms
    # of 1000 on any machine (the whole answer used to be timed: "hook still running"). A part
    # of 1024 rows is 10 ms of that CPU (and 10-40 ms of rendering, PUC Lua's toString being
    # slow), which leaves the limit 20 times that for a loaded machine (measured: parts of 105 ms
    # CPU took 115-640 ms at a load average of 10).
    with serve(tmp_path, lua, rows=150_000, row_us=10) as coprocess:
        lines = coprocess.ask(AXFR)
        assert lines[-1] == "END", lines[-3:]
        assert len(lines) == 150_001 and set(lines[:-1]) == {DATA}
        assert coprocess.ask(q("next.example.org")) == NEXT_ANSWER


@pytest.mark.parametrize("lua", RUNTIMES)
def test_a_bad_row_after_streamed_rows_ends_the_answer_in_log_fail_and_the_stream_stays_in_sync(
    tmp_path, lua
):
    with serve(tmp_path, lua, "--max-query-ms", str(LIMIT_MS), rows=5000, fail_at=5000) as coprocess:
        lines = coprocess.ask(AXFR)
        assert lines[:4096] == [DATA] * 4096  # four parts of 1024 rows were streamed
        assert lines[4096:] == [
            "LOG\tdns_list row 5000: ttl value true (boolean) is not an integer",
            "FAIL",
        ]
        assert coprocess.ask(q("next.example.org")) == NEXT_ANSWER


@pytest.mark.parametrize("lua", RUNTIMES)
def test_a_row_whose_rendering_never_returns_is_cut_at_max_query_ms_after_the_streamed_rows(tmp_path, lua):
    with serve(tmp_path, lua, "--max-query-ms", str(LIMIT_MS), rows=5000, spin_at=5000) as coprocess:
        lines = coprocess.ask(AXFR)
        assert lines[:4096] == [DATA] * 4096
        assert lines[4096:] == [
            f"LOG\thook still running after {LIMIT_MS} ms (--max-query-ms): stopped, Lua state restarted",
            "FAIL",
        ]
        assert coprocess.ask(q("next.example.org")) == NEXT_ANSWER  # from the fresh Lua state


def test_a_streamed_axfr_is_recorded_and_query_logged_whole(tmp_path):
    # --record and --query-logging see each streamed part, then the rest of the answer
    transcript = tmp_path / "session.txt"
    with serve(tmp_path, "luajit", "--record", str(transcript), "--query-logging", rows=3000) as coprocess:
        assert coprocess.ask(AXFR) == [DATA] * 3000 + ["END"]
        coprocess.close_stdin()
        assert coprocess.wait() == 0
        logged = coprocess.stderr_text()
    recorded = transcript.read_text().splitlines()
    start = recorded.index(f"> {AXFR}".replace("\t", "\\t"))
    assert recorded[start + 1 :] == ["< " + DATA.replace("\t", "\\t")] * 3000 + ["< END"]
    assert logged.count('event="[lua2] list"') == 3  # two parts of 1024 rows, then the rest
    assert logged.count("host.example.org.") == 3000
