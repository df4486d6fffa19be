"""The CMD surface as operators reach it: ``pdnsutil --config-dir=DIR backend-cmd pipe 'COMMAND'``
against a pdns configuration with launch=pipe running lua2pipe (pdnsutil starts its own
coprocess; no server is needed). Skipped without pdns, failed under CI=true (conftest.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pdns import build_config, native_settings, pdnsutil, pipe_settings

HOOKS = Path(__file__).resolve().parent / "scripts" / "hooks.lua"
HOSTILE = HOOKS.parent / "hostile.lua"

pytestmark = [pytest.mark.pdns("pipe"), pytest.mark.lua2pipe]


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("pdnsutil-pipe")
    (directory / "pdns.conf").write_text(
        build_config({"launch": "", "zone-cache-refresh-interval": 0}, pipe_settings(HOOKS, abi=5))
    )
    return directory


def backend_cmd(config_dir: Path, command: str) -> list[str]:
    result = pdnsutil(config_dir, "backend-cmd", "pipe", command)
    assert result.returncode == 0, result.stderr
    assert f"== {command}" in result.stderr
    assert "Timeout" not in result.stderr and "desync" not in result.stderr.lower()
    return result.stdout.splitlines()


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            "domaininfo example.com",
            [
                "example.com. id=7 kind=primary serial=2024010101 notified_serial=2024010100 last_check=0 "
                'account="dns team" masters="" source=dns_get_domaininfo'
            ],
        ),
        (
            "domaininfo example.org",
            ["not found: dns_get_domaininfo returned false for example.org.: not found or not supported"],
        ),
        (
            "domains",
            [
                "example.com. id=7 kind=primary serial=2024010101 notified_serial=2024010100 last_check=0 "
                'account="dns team" masters="" source=dns_get_all_domains',
                'example.net. id=8 kind=native serial=1 notified_serial=0 last_check=0 account="" '
                'masters="" source=dns_get_all_domains',
            ],
        ),
        ("metadata example.com ALSO-NOTIFY", ["ALSO-NOTIFY=192.0.2.1", "ALSO-NOTIFY=192.0.2.2"]),
        (
            "metadata example.com",
            ["ALSO-NOTIFY=192.0.2.1", "ALSO-NOTIFY=192.0.2.2", "SOA-EDIT=INCEPTION-INCREMENT"],
        ),
        ("nsec 7 www.example.com", ["unhashed=www.example.com. before=txt.example.com. after=example.com."]),
        ("set-notified 7 2024010102", ["ok: dns_set_notified(7, 2024010102) called"]),
        ("echo hi  there", ["echo:hi  there"]),
        ("answer", ["42"]),
        ("version", ["hooks.lua 1"]),
        ("lines", ["one", " END", "two"]),
    ],
)
def test_command(config_dir, command, expected):
    assert backend_cmd(config_dir, command) == expected


def test_keys(config_dir):
    lines = backend_cmd(config_dir, "keys example.com")
    assert [re.search(r"tag=(\S+)", line).group(1) for line in lines] == [
        "57056",
        "52797",
        "41403",
        "38503",
        "64346",
    ]
    assert not any("PrivateKey" in line for line in lines)
    private = backend_cmd(config_dir, "keys example.com --private")
    assert "  Algorithm: 13 (ECDSAP256SHA256)" in private


def test_json_forms(config_dir):
    for command in (
        "domaininfo example.com --json",
        "domains --json",
        "keys example.com --json",
        "metadata example.com --json",
        "nsec 7 www.example.com --json",
        "stats --json",
    ):
        (line,) = backend_cmd(config_dir, command)
        assert set(json.loads(line)) == {"result", "warnings"}, command


def test_lua2pipe_commands(config_dir):
    help_lines = backend_cmd(config_dir, "help")
    assert help_lines[0] == "help: list the commands" and help_lines[-1].startswith("script functions: ")
    (version,) = backend_cmd(config_dir, "lua2pipe version")
    assert version.startswith("lua2pipe ") and version.endswith(str(HOOKS))
    stats = dict(line.split("=", 1) for line in backend_cmd(config_dir, "stats"))
    assert int(stats["questions"]) <= 1 and float(stats["lua_memory_kb"]) > 0  # a fresh coprocess
    reload_line, peers = backend_cmd(config_dir, "reload")
    assert reload_line.startswith(f"reloaded {HOOKS} in ")
    assert peers == "other coprocesses: not reachable without --metrics-dir (send them SIGHUP)"


@pytest.mark.parametrize(
    "command",
    [
        "nosuch",
        "dofile /etc/passwd",
        "os.execute id",
        "run_shell id",
        "debug.getinfo 1",
        "raise",
        "nothing",
        "domaininfo",
        "domaininfo raise.example",
        "nsec 7 four.example.com",
        "nsec x y",
        "set-notified 666 1",
        "keys example.com --bogus",
    ],
)
def test_failures_are_one_line(config_dir, command):
    (line,) = backend_cmd(config_dir, command)
    assert line.startswith("error: ")


def test_several_commands_in_one_pdnsutil_call(config_dir):
    result = pdnsutil(config_dir, "backend-cmd", "pipe", "raise", "echo after", "nsec x y", "answer")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].startswith("error: raise failed: ") and lines[0].endswith("raised on purpose")
    assert lines[1:] == ["echo:after", "error: nsec: ID 'x' is not an integer", "42"]


@pytest.mark.pdns("lua2")
def test_key_tags_match_native_pdnsutil(tmp_path):
    """The tags ``keys`` derives are those pdnsutil shows for the same keys under launch=lua2."""
    (tmp_path / "pdns.conf").write_text(
        build_config({"zone-cache-refresh-interval": 0}, native_settings(HOOKS))
    )
    result = pdnsutil(tmp_path, "show-zone", "example.com")
    native = dict(re.findall(r"ID = (\d+) .*?tag = (\d+)", result.stdout))
    assert native, result.stdout + result.stderr
    pipe_dir = tmp_path / "pipe"
    pipe_dir.mkdir()
    (pipe_dir / "pdns.conf").write_text(
        build_config({"zone-cache-refresh-interval": 0}, pipe_settings(HOOKS, abi=5))
    )
    ours = {}
    for line in backend_cmd(pipe_dir, "keys example.com"):
        fields = dict(field.split("=", 1) for field in line.split())
        if fields["tag"] != "-":
            ours[fields["id"]] = fields["tag"]
    assert ours == {key: tag for key, tag in native.items() if key in ours}
    assert len(ours) == 5  # RSA, ECDSA P-256 and P-384, Ed25519, Ed448


def test_a_runaway_command_answers_one_error_line_and_the_commands_after_it_still_run(tmp_path):
    """pdns's directBackendCmd (pipebackend.cc) reads CMD answer lines until END, each within
    pipe-timeout: a runaway command must end with END too, or pdnsutil times out and skips the
    commands after it."""
    (tmp_path / "pdns.conf").write_text(
        build_config(
            {"launch": "", "zone-cache-refresh-interval": 0},
            pipe_settings(HOSTILE, abi=5, args=["--max-query-ms", "200"]),
        )
    )
    result = pdnsutil(tmp_path, "backend-cmd", "pipe", "echo before", "spin_cmd x", "echo after")
    assert (result.returncode, result.stdout.splitlines()) == (
        0,
        [
            "echo:before",
            "error: hook still running after 200 ms (--max-query-ms): stopped, Lua state restarted",
            "echo:after",
        ],
    ), result.stderr
