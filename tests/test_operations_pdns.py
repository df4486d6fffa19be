"""Operating the coprocesses a real pdns runs (issue 14): reloads under dnsperf load, pdnsutil
backend-cmd reload reaching every serving coprocess, and the summed numbers of --metrics-dir.

Generous margins: the test machine has 2 CPUs that other test workers load too.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import dns.message
import dns.query
import pytest
from pdns import LUA2PIPE, PdnsServer

pytestmark = [pytest.mark.pdns, pytest.mark.lua2pipe]

DNSPERF = shutil.which("dnsperf")
needs_dnsperf = pytest.mark.skipif(DNSPERF is None, reason="dnsperf is not installed")

SCRIPT = """
function dns_lookup(qtype, qname)
  local name = qname:toString()
  if name == "example.test." and (qtype:getName() == "SOA" or qtype:getName() == "ANY") then
    return {{name = qname, type = "SOA", ttl = 60, domain_id = 1,
             content = "ns.example.test. admin.example.test. 1 3600 600 86400 60"}}
  end
  if name:match("example%.test%.$") and (qtype:getName() == "TXT" or qtype:getName() == "ANY") then
    return {{name = qname, type = "TXT", ttl = 60, domain_id = 1, content = '"VERSION"'}}
  end
  return {}
end
"""


def write_script(path: Path, version: str) -> None:
    """As an editor saves: a new file renamed over the old one (the watcher never sees half)."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(SCRIPT.replace("VERSION", version))
    os.replace(temporary, path)


def txt(server: PdnsServer, name: str = "www.example.test") -> str:
    # ignore_errors: under load a late reply to an earlier query on a reused port is skipped
    query = dns.message.make_query(name, "TXT")
    answer = dns.query.udp(query, server.address, port=server.port, timeout=3, ignore_errors=True)
    return " ".join(rdata.to_text() for rrset in answer.answer for rdata in rrset)


def metrics(directory: Path) -> dict:
    out = subprocess.run(
        [str(LUA2PIPE), "metrics", str(directory), "--json"], capture_output=True, text=True, check=False
    ).stdout
    return json.loads(out)


class Load:
    """dnsperf against the server in a thread, for ``seconds``; ``result`` is its summary."""

    def __init__(self, server: PdnsServer, tmp_path: Path, seconds: int, qps: int = 1500) -> None:
        queries = tmp_path / "queries.txt"
        queries.write_text("".join(f"n{i}.example.test TXT\n" for i in range(200)))
        command = [DNSPERF, "-s", server.address, "-p", str(server.port), "-d", str(queries)]
        command += ["-c", "4", "-l", str(seconds), "-Q", str(qps), "-t", "3"]
        self.result = ""
        self.thread = threading.Thread(target=self._run, args=(command,), daemon=True)
        self.thread.start()

    def _run(self, command: list[str]) -> None:
        self.result = subprocess.run(command, capture_output=True, text=True, check=False).stdout

    def finish(self) -> dict[str, str]:
        self.thread.join(60)
        found = {
            key: re.search(pattern, self.result)
            for key, pattern in (
                ("sent", r"Queries sent:\s+(\d+)"),
                ("lost", r"Queries lost:\s+(\d+)"),
                ("rcodes", r"Response codes:\s+(.*)"),
            )
        }
        assert all(found.values()), self.result
        return {key: match.group(1) for key, match in found.items() if match}


def serve(tmp_path: Path, *options: str, threads: int = 2) -> PdnsServer:
    script = tmp_path / "zone.lua"
    write_script(script, "v1")
    args = ["--loglevel", "6", "--metrics-dir", str(tmp_path / "metrics"), *options]
    return PdnsServer.pipe(script, args=args, distributor_threads=threads)


@needs_dnsperf
def test_an_edit_changes_the_answers_within_2_s_under_load_and_a_broken_one_changes_nothing(tmp_path):
    with serve(tmp_path) as server:
        assert txt(server) == '"v1"'
        load = Load(server, tmp_path, seconds=9)
        time.sleep(2)
        write_script(tmp_path / "zone.lua", "v2")
        edited = time.monotonic()
        while {txt(server) for _ in range(20)} != {'"v2"'} and time.monotonic() - edited < 5:
            time.sleep(0.05)  # 20 answers in a row from the new script: every coprocess has it
        took = time.monotonic() - edited
        assert took < 3.0, took  # a 1 s watch, a load and 20 questions, on 2 loaded CPUs
        (tmp_path / "zone.lua.tmp").write_text("function dns_lookup(\n")  # a syntax error
        os.replace(tmp_path / "zone.lua.tmp", tmp_path / "zone.lua")
        time.sleep(2.5)
        answers = [txt(server) for _ in range(20)]
        assert set(answers) == {'"v2"'}
        summary = load.finish()
        assert (
            summary["lost"] == "0"
            and summary["rcodes"].startswith("NOERROR")
            and "," not in summary["rcodes"]
        ), summary
        time.sleep(2.5)  # every coprocess's file written since
        live = metrics(tmp_path / "metrics")
        failed_lines = [line for line in server.log_text().splitlines() if 'event="reload failed"' in line]
        # once per coprocess, naming the file and line
        assert len(failed_lines) == live["total"]["reload_failures"] == live["live"] >= 2, failed_lines
        # (Lua shortens a long chunk name from the left: "...pytest-1/test_x0/zone.lua:2:")
        assert all("/zone.lua:2: <name> or '...' expected near '<eof>'\"" in line for line in failed_lines)
        assert len({re.search(r" pid=(\d+)", line).group(1) for line in failed_lines}) == len(failed_lines)


@needs_dnsperf
def test_pdnsutil_backend_cmd_reload_reaches_every_serving_coprocess(tmp_path):
    with serve(tmp_path, "--no-watch") as server:
        load = Load(server, tmp_path, seconds=7)
        time.sleep(2.5)  # pdns has started its coprocesses
        write_script(tmp_path / "zone.lua", "v2")
        time.sleep(1.5)
        assert {txt(server) for _ in range(20)} == {'"v1"'}  # --no-watch: an edit alone reloads nothing
        out = server.pdnsutil("backend-cmd", "pipe", "reload").stdout.splitlines()
        live = metrics(tmp_path / "metrics")["processes"]  # pdnsutil's own coprocess has exited
        assert out[0].startswith(f"reloaded {tmp_path}/zone.lua in ")
        heading, pids = out[1].split(": ")
        assert heading == f"signalled {len(pids.split())} other coprocesses serving {tmp_path}/zone.lua"
        # every serving one; and any sibling coprocess pdnsutil's own backends started meanwhile
        assert {row["pid"] for row in live} <= set(map(int, pids.split())) and len(out) == 2
        time.sleep(0.5)
        assert {txt(server) for _ in range(20)} == {'"v2"'}
        summary = load.finish()
        assert summary["lost"] == "0" and "SERVFAIL" not in summary["rcodes"], summary
        time.sleep(2.5)
        after = metrics(tmp_path / "metrics")["processes"]
        # each swaps the new script in before its next question: every one that answered since
        answered = {row["pid"]: (row["answered"], row["reloads"]) for row in after}
        before = {row["pid"]: row["answered"] for row in live}
        assert all(reloads == 1 for pid, (count, reloads) in answered.items() if count > before[pid])
        assert sum(reloads for _, reloads in answered.values()) >= 2


@needs_dnsperf
def test_summed_counters_match_the_query_log_and_a_killed_coprocess_drops_out(tmp_path):
    with serve(tmp_path, "--query-logging") as server:
        load = Load(server, tmp_path, seconds=3, qps=800)
        summary = load.finish()
        assert summary["lost"] == "0", summary
        time.sleep(2.5)
        total = metrics(tmp_path / "metrics")
        logged = sum(
            1 for line in server.log_text().splitlines() if 'event="[lua2] lookup' in line
        )  # "[lua2] lookup" and "[lua2] lookup failed"
        assert total["total"]["lookups"] == logged > 2 * int(summary["sent"])
        victim = total["processes"][0]["pid"]
        os.kill(victim, signal.SIGKILL)
        txt(server)  # pdns replaces the coprocess it lost when it needs it
        after = metrics(tmp_path / "metrics")
        assert victim not in {row["pid"] for row in after["processes"]}
        time.sleep(2.5)  # the live coprocesses sweep the stale file away
        assert not any(str(victim) in name for name in os.listdir(tmp_path / "metrics"))
