"""The watchdog's second pass (issue 15): a runaway answered while nobody drains stderr, a
dns_deinit or a reloading dns_init that never returns, a raising __gc metamethod, and start-up
under contention. Each test drives the real executable as pdns does (tests/coprocess_client.py)
or goes through pdns itself.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time

import pytest
from coprocess_client import LUA2PIPE, PDNS_TIMEOUT, q

pytestmark = pytest.mark.lua2pipe

RUNAWAY_MS = 200


QUIET_SPIN = """
function dns_lookup(qtype, qname)
  if qname:toString() == "spin.example.org." then while true do end end
  return { { name = qname, type = "TXT", content = "fine", ttl = 60, domain_id = 1 } }
end
"""


def test_a_runaway_is_answered_and_the_next_question_too_while_nobody_reads_stderr(tmp_path):
    # stderr is pdns's: a pipe whose reader may stall. The answer must not wait for the log.
    script = tmp_path / "quiet_spin.lua"
    script.write_text(QUIET_SPIN)
    err_read, err_write = os.pipe()
    os.set_blocking(err_write, False)
    try:
        while True:
            os.write(err_write, b"x" * 65536)
    except BlockingIOError:
        pass
    os.set_blocking(err_write, True)  # the coprocess shares this file description
    process = subprocess.Popen(
        [str(LUA2PIPE), str(script), "--max-query-ms", str(RUNAWAY_MS)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=err_write,
        start_new_session=True,
    )
    os.close(err_write)
    try:
        questions = f"HELO\t5\n{q('spin.example.org')}\n{q('next.example.org')}\n"
        process.stdin.write(questions.encode())
        process.stdin.close()
        lines = []
        deadline = time.monotonic() + 3 * PDNS_TIMEOUT
        os.set_blocking(process.stdout.fileno(), False)
        while len(lines) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
            with contextlib.suppress(BlockingIOError, TypeError):
                lines += (process.stdout.read() or b"").decode().splitlines()
        assert lines[1:] == [
            "LOG\thook still running after 200 ms (--max-query-ms): stopped, Lua state restarted",
            "FAIL",
            'DATA\t0\t1\tnext.example.org.\tIN\tTXT\t60\t1\t"fine"',
            "END",
        ], lines
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        os.close(err_read)
