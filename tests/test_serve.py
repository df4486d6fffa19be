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
from dns.rdatatype import RRSIG
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


@pytest.mark.pdns("remote")
def test_run_remote_serves_the_signed_example_with_timeout_0_as_the_readme_recommends():
    port = free_port()
    serve = subprocess.Popen(
        [sys.executable, "examples/serve.py", "--remote", "--port", str(port), "examples/signed.lua"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        printed = [serve.stdout.readline() for _ in range(7)]
        config_dir = next(
            line.split("--config-dir=")[1].split()[0] for line in printed if "--config-dir=" in line
        )
        settings = Path(config_dir, "pdns.conf").read_text().splitlines()
        assert [line for line in settings if line.startswith("remote-connection-string=")] == [
            f"remote-connection-string=pipe:command={REPO / 'lua2pipe'} {REPO / 'examples' / 'signed.lua'}"
            " --loglevel 6,timeout=0"
        ]
        query = dns.message.make_query("www.nsec.example", "A", want_dnssec=True)
        answer = dns.query.udp(query, "127.0.0.1", port=port, timeout=3)
        # the signature itself changes with the week (its validity period): its name, what it
        # covers and who signed it are compared
        assert sorted(
            rrset.to_text()
            if rrset.rdtype != RRSIG
            else f"{rrset.name} RRSIG {rrset[0].covers().name} {rrset[0].signer}"
            for rrset in answer.answer
        ) == ["www.nsec.example. 3600 IN A 192.0.2.80", "www.nsec.example. RRSIG A nsec.example."]
        serve.send_signal(signal.SIGINT)
        assert serve.wait(timeout=10) == 0
    finally:
        serve.kill()
        serve.wait()
