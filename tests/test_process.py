"""The lua2pipe executable as pdns runs it: by absolute path, from any directory, with an empty
environment, as an unprivileged user; with the protocol stream out of the script's reach."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from coprocess_client import Lua2Pipe

import lua2pipe

REPO = Path(__file__).resolve().parent.parent
LUA2PIPE = REPO / "lua2pipe"
PROTOCOL_SCRIPT = REPO / "tests" / "scripts" / "protocol.lua"
SESSION = (
    "HELO\t5\n"
    "Q\tnoisy.example.org\tIN\tANY\t1\t192.0.2.1\t192.0.2.53\t192.0.2.1/32\n"
    "Q\tname_dn.example.org\tIN\tANY\t1\t192.0.2.1\t192.0.2.53\t192.0.2.1/32\n"
)
ANSWERS = [
    "DATA\t0\t1\tnoisy.example.org.\tIN\tA\t0\t-1\t192.0.2.7",
    "END",
    "DATA\t0\t1\tx.example.org.\tIN\tA\t0\t-1\t192.0.2.1",
    "END",
]

pytestmark = pytest.mark.lua2pipe


def run(command: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, input=SESSION, capture_output=True, text=True, timeout=30, **kwargs)


def test_print_and_io_write_never_reach_the_protocol_stream():
    result = run([str(LUA2PIPE), str(PROTOCOL_SCRIPT)])
    lines = result.stdout.splitlines()
    assert lines[0].startswith("OK\tlua2pipe ")
    assert lines[1:] == ANSWERS
    for noise in ("print from dns_lookup", "io.write from dns_lookup", "io.stdout:write from dns_lookup"):
        assert noise in result.stderr
    assert result.returncode == 0


def test_runs_by_absolute_path_with_an_empty_environment_from_any_directory():
    result = run([str(LUA2PIPE), str(PROTOCOL_SCRIPT)], env={}, cwd="/")
    assert result.stdout.splitlines()[1:] == ANSWERS, result.stderr


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become nobody")
def test_runs_as_an_unprivileged_user():
    nobody = pwd.getpwnam("nobody")
    become_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    interpreter = os.path.realpath(REPO / ".venv" / "bin" / "python")
    reachable = subprocess.run(
        [*become_nobody, "test", "-r", str(PROTOCOL_SCRIPT), "-a", "-x", interpreter], check=False
    )
    if reachable.returncode != 0:
        pytest.skip(f"nobody cannot read this checkout or run {interpreter} (a property of where it lies)")
    result = run([*become_nobody, str(LUA2PIPE), str(PROTOCOL_SCRIPT)], env={}, cwd="/")
    assert result.stdout.splitlines()[1:] == ANSWERS, result.stderr


def test_python_dash_m_runs_the_coprocess():
    python = REPO / ".venv" / "bin" / "python"
    result = run([str(python), "-m", "lua2pipe", str(PROTOCOL_SCRIPT)], cwd="/")
    assert result.stdout.splitlines()[1:] == ANSWERS, result.stderr


def test_a_script_that_never_finishes_loading_is_named_in_the_log():
    script = REPO / "tests" / "scripts" / "endless_init.lua"
    started = time.monotonic()
    with Lua2Pipe(script, abi=None) as coprocess:
        coprocess.send("HELO\t5\n")
        # the line itself, not a fixed wait: start-up and the lazy structlog import took seconds
        # on this loaded 2-CPU machine; the deadline only ends a test that would never pass
        deadline = started + 60
        while "\n" not in (logged := coprocess.stderr_text()):
            assert time.monotonic() < deadline, logged
            time.sleep(0.05)
        waited = time.monotonic() - started
        coprocess.kill()
        unanswered = coprocess.unread()
    assert waited >= lua2pipe.SLOW_LOAD_SECONDS
    assert (unanswered, re.sub(r" timestamp=\S+\n$", "", logged)) == (
        b"",
        f'level=error event="script still loading" program=lua2pipe script={script} after_ms=1000 '
        'consequence="HELO is not answered until it finishes: pdns times out at pipe-timeout"',
    )
