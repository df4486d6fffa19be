"""examples/serve.py, what ``make run`` runs: pdns on a loopback port serving the example through
lua2pipe, answering dnspython, and stopping cleanly on Ctrl-C and on SIGTERM."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import dns.message
import dns.query
import pytest
from pdns import free_port

REPO = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.pdns("pipe"), pytest.mark.lua2pipe]


def wait_for_answer(port: int, deadline: float) -> dns.message.Message:
    query = dns.message.make_query("www.example.org", "A")
    while True:
        try:
            return dns.query.udp(query, "127.0.0.1", port=port, timeout=0.5)
        except (dns.exception.Timeout, OSError):
            if time.monotonic() > deadline:
                raise


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_serves_the_example_and_stops_cleanly(signum, tmp_path):
    port = free_port()
    serve = subprocess.Popen(
        [
            sys.executable,
            str(REPO / "examples" / "serve.py"),
            "--port",
            str(port),
            str(REPO / "examples" / "geo.lua"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        answer = wait_for_answer(port, time.monotonic() + 15)
        assert [rrset.to_text() for rrset in answer.answer] == ["www.example.org. 60 IN A 192.0.2.10"]
        serve.send_signal(signum)
        assert serve.wait(timeout=10) == 0
        assert f"dig @127.0.0.1 -p {port} www.example.org A" in serve.stdout.read()
        assert port_is_free(port)  # pdns is gone (its coprocesses go with its process group)
    finally:
        serve.kill()
        serve.wait()
