"""Operating one coprocess without pdns (issue 14): its numbers carried across a runaway
restart, a reload on SIGHUP, and the whole metrics file for a known sequence of questions.
The same through a real pdns under load is tests/test_operations_pdns.py; remote mode's reload
is in tests/test_remote.py.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from coprocess_client import Lua2Pipe
from helpers import make_coprocess, q

import lua2pipe
from _lua2pipe.metrics import MetricsFile, file_name, parse, start_ticks

SCRIPT = """
function dns_lookup(qtype, qname)
  local name = qname:toString()
  if name == "spin.example.org." then while true do end end
  if name == "fail.example.org." then error("no such answer") end
  return { { name = qname, type = "TXT", content = '"VERSION"', ttl = 60, domain_id = 1 } }
end
function dns_list(target, domain_id)
  return { { name = target, type = "TXT", content = '"zone"', ttl = 60, domain_id = 1 } }
end
"""


def write_script(path: Path, version: str) -> None:
    """As an editor saves: a new file renamed over the old one."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(SCRIPT.replace("VERSION", version))
    os.replace(temporary, path)


def txt_answer(name: str, version: str) -> list[str]:
    return [f'DATA\t0\t1\t{name}.\tIN\tTXT\t60\t1\t"{version}"', "END"]


def counters(path: Path) -> dict[str, float]:
    """The counters of a metrics file, and how many latencies its histogram holds."""
    return {
        f"{name}{{{labels}}}": value
        for name, labels, value in parse(path.read_text())
        if name.endswith("_total") or name == "lua2pipe_latency_seconds_count"
    }


@pytest.mark.lua2pipe
def test_counters_survive_a_runaway_restart_in_the_same_pid(tmp_path):
    script = tmp_path / "zone.lua"
    write_script(script, "v1")
    directory = tmp_path / "metrics"
    with Lua2Pipe(script, "--max-query-ms", "200", "--metrics-dir", str(directory)) as coprocess:
        for name in ("a.example.org", "b.example.org", "c.example.org"):
            assert coprocess.ask(q(name)) == txt_answer(name, "v1")
        assert coprocess.ask(q("spin.example.org")) == [
            "LOG\thook still running after 200 ms (--max-query-ms): stopped, Lua state restarted",
            "FAIL",
        ]
        assert coprocess.ask(q("d.example.org"), timeout=5) == txt_answer("d.example.org", "v1")
        path = directory / file_name(coprocess.pid, start_ticks(coprocess.pid) or 0)
        expected = {
            'lua2pipe_questions_total{kind="lookup"}': 5,  # the runaway one included
            'lua2pipe_questions_total{kind="list"}': 0,
            "lua2pipe_failures_total{}": 1,
            'lua2pipe_questions_total{kind="command"}': 0,
            'lua2pipe_questions_total{kind="other"}': 0,
            "lua2pipe_runaway_cuts_total{}": 1,
            "lua2pipe_memory_cap_failures_total{}": 0,
            'lua2pipe_restarts_total{cause="runaway"}': 1,
            'lua2pipe_restarts_total{cause="memory"}': 0,
            "lua2pipe_reload_failures_total{}": 0,
            "lua2pipe_reloads_total{}": 0,
            "lua2pipe_latency_seconds_count{}": 4,  # a cut question has no latency
        }
        deadline = time.monotonic() + 6  # the fresh image rewrites its file every 2 s
        while (found := counters(path) if path.exists() else {}) != expected and time.monotonic() < deadline:
            time.sleep(0.1)
        assert found == expected
        assert coprocess.process.poll() is None and sorted(os.listdir(directory)) == [path.name]


@pytest.mark.lua2pipe
def test_sighup_reloads_a_serving_coprocess_between_two_questions(tmp_path):
    script = tmp_path / "zone.lua"
    write_script(script, "v1")
    with Lua2Pipe(script, "--no-watch", "--loglevel", "6") as coprocess:
        assert coprocess.ask(q("www.example.org")) == txt_answer("www.example.org", "v1")
        write_script(script, "v2")
        time.sleep(1.5)  # --no-watch: the edit alone reloads nothing
        assert coprocess.ask(q("www.example.org")) == txt_answer("www.example.org", "v1")
        os.kill(coprocess.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        while (answer := coprocess.ask(q("www.example.org"))) == txt_answer(
            "www.example.org", "v1"
        ) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert answer == txt_answer("www.example.org", "v2")
        reloaded = [line for line in coprocess.stderr_text().splitlines() if "script reloaded" in line]
        assert len(reloaded) == 1 and " trigger=SIGHUP " in reloaded[0], reloaded
        assert coprocess.close() == 0


def test_a_metrics_file_holds_every_number_of_a_known_sequence_of_questions(tmp_path):
    script = tmp_path / "zone.lua"
    write_script(script, "v1")
    coprocess = make_coprocess(script)
    assert coprocess.answer(q("www.example.org").encode()) == b"".join(
        line.encode() + b"\n" for line in txt_answer("www.example.org", "v1")
    )
    assert coprocess.answer(q("fail.example.org").encode()).endswith(b"no such answer\nFAIL\n")
    assert coprocess.answer(b"AXFR\t1\texample.org").endswith(b"END\n")
    assert coprocess.answer(b"CMD\tversion").endswith(b"END\n")
    assert coprocess.answer(b"BOGUS").startswith(b"LOG\tmalformed question")
    # The serving loop records latencies (answer() alone does not): one a bucket's own bound
    # (le is "less or equal"), one past the last bound.
    coprocess.latencies.extend([0.000003, 0.0005, 0.0005001, 0.02, 3.0])
    coprocess.operations.lua_memory_kb = 64.5
    metrics = MetricsFile(coprocess, str(tmp_path))
    metrics.fold()
    metrics.save()
    pid = f'pid="{os.getpid()}"'
    loaded = coprocess.script
    assert loaded is not None
    buckets = [1, 1, 1, 1, 1, 2, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4, 5]
    bounds = ["1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025"]
    bounds += ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "+Inf"]
    assert Path(metrics.path).read_text() == "".join(
        line + "\n"
        for line in [
            "# HELP lua2pipe_info The coprocess: pid, start time (ticks), script, protocol",
            "# TYPE lua2pipe_info gauge",
            f'lua2pipe_info{{{pid},start="{metrics.start}",script="{script}",mode="5",'
            f'lua="{loaded.version}",version="{lua2pipe.VERSION}"}} 1',
            "# HELP lua2pipe_script_loaded Whether the script is loaded (0: failed)",
            "# TYPE lua2pipe_script_loaded gauge",
            f"lua2pipe_script_loaded{{{pid}}} 1",
            "# HELP lua2pipe_script_mtime_seconds The served script's mtime",
            "# TYPE lua2pipe_script_mtime_seconds gauge",
            f"lua2pipe_script_mtime_seconds{{{pid}}} {loaded.mtime!r}",
            "# HELP lua2pipe_questions_total Lines answered, by kind",
            "# TYPE lua2pipe_questions_total counter",
            f'lua2pipe_questions_total{{{pid},kind="lookup"}} 2',
            f'lua2pipe_questions_total{{{pid},kind="list"}} 1',
            f'lua2pipe_questions_total{{{pid},kind="command"}} 1',
            f'lua2pipe_questions_total{{{pid},kind="other"}} 0',
            "# HELP lua2pipe_failures_total Lines answered LOG+FAIL (or failed)",
            "# TYPE lua2pipe_failures_total counter",
            f"lua2pipe_failures_total{{{pid}}} 2",
            "# HELP lua2pipe_runaway_cuts_total Hooks stopped at --max-query-ms",
            "# TYPE lua2pipe_runaway_cuts_total counter",
            f"lua2pipe_runaway_cuts_total{{{pid}}} 0",
            "# HELP lua2pipe_memory_cap_failures_total Questions failed by --max-memory",
            "# TYPE lua2pipe_memory_cap_failures_total counter",
            f"lua2pipe_memory_cap_failures_total{{{pid}}} 0",
            "# HELP lua2pipe_restarts_total Fresh Lua states, by cause",
            "# TYPE lua2pipe_restarts_total counter",
            f'lua2pipe_restarts_total{{{pid},cause="runaway"}} 0',
            f'lua2pipe_restarts_total{{{pid},cause="memory"}} 0',
            "# HELP lua2pipe_reload_failures_total Reloads that failed (the old script kept serving)",
            "# TYPE lua2pipe_reload_failures_total counter",
            f"lua2pipe_reload_failures_total{{{pid}}} 0",
            "# HELP lua2pipe_reloads_total Scripts reloaded",
            "# TYPE lua2pipe_reloads_total counter",
            f"lua2pipe_reloads_total{{{pid}}} 0",
            "# HELP lua2pipe_lua_memory_bytes The Lua heap",
            "# TYPE lua2pipe_lua_memory_bytes gauge",
            f"lua2pipe_lua_memory_bytes{{{pid}}} 66048",
            "# HELP lua2pipe_latency_seconds Time to answer a line, read to write",
            "# TYPE lua2pipe_latency_seconds histogram",
            *(
                f'lua2pipe_latency_seconds_bucket{{{pid},le="{bound}"}} {count}'
                for bound, count in zip(bounds, buckets, strict=True)
            ),
            f"lua2pipe_latency_seconds_sum{{{pid}}} {0.000003 + 0.0005 + 0.0005001 + 0.02 + 3.0!r}",
            f"lua2pipe_latency_seconds_count{{{pid}}} 5",
        ]
    )
