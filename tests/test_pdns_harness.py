"""The test harness itself (tests/pdns.py): config rendering, startup failures, cleanup."""

from __future__ import annotations

import os
import pwd
import stat
import tempfile
from pathlib import Path

import pytest
from pdns import (
    BASE_SETTINGS,
    LUA2PIPE,
    PdnsError,
    PdnsServer,
    _process_group_members,
    build_config,
    pipe_settings,
)


def test_build_config_renders_layers_in_order() -> None:
    text = build_config({"launch": "pipe", "a": True, "b": 1}, {"b": False, "c": None, "d": ""})
    assert text.splitlines()[1:] == ["launch=pipe", "a=yes", "b=no", "d="]


def test_build_config_refuses_newlines() -> None:
    with pytest.raises(ValueError):
        build_config({"launch": "pipe\nlaunch=bind"})


def test_pipe_settings_use_absolute_paths(tmp_path: Path) -> None:
    settings = pipe_settings(tmp_path / "x.lua", abi=4)
    assert settings["pipe-command"] == f"{LUA2PIPE} {tmp_path / 'x.lua'}"
    assert settings["pipe-abi-version"] == 4
    server = PdnsServer.pipe(tmp_path / "x.lua", loglevel=7, config_dir=tmp_path)
    assert server.settings["pipe-command"] == f"{LUA2PIPE} {tmp_path / 'x.lua'} --loglevel 7"
    with pytest.raises(ValueError):
        pipe_settings(tmp_path / "x.lua", args=["--a b"])
    with pytest.raises(ValueError):
        pipe_settings(tmp_path / "with space.lua")


def test_server_config_layers(tmp_path: Path) -> None:
    server = PdnsServer.native("x.lua", extra={"loglevel": 7, "cache-ttl": 5}, config_dir=tmp_path)
    settings = server.config_settings()
    assert settings["launch"] == "lua2"
    assert settings["lua2-filename"] == str(Path("x.lua").resolve())
    assert settings["loglevel"] == 7
    assert settings["cache-ttl"] == 5
    assert settings["zone-cache-refresh-interval"] == BASE_SETTINGS["zone-cache-refresh-interval"] == 0
    assert "setuid" not in settings


def test_only_loopback() -> None:
    with pytest.raises(ValueError):
        PdnsServer.native("x.lua", address="192.0.2.1")


@pytest.mark.pdns("lua2")
def test_startup_failure_reports_the_log(tmp_path: Path) -> None:
    script = tmp_path / "broken.lua"
    script.write_text("function dns_lookup(qtype, qname, domain_id, ctx)\n  return {}\nend\nerror('boom')\n")
    server = PdnsServer.native(script)
    with pytest.raises(PdnsError) as failure, server:
        pass
    # Native lua2 runs the script as one chunk named "chunk".
    assert '[string "chunk"]:4: boom' in str(failure.value)
    assert not server.config_dir.exists()


@pytest.mark.pdns("pipe")
def test_stop_kills_coprocesses_that_ignore_eof(tmp_path: Path) -> None:
    coprocess = tmp_path / "stubborn.sh"
    coprocess.write_text(
        "#!/bin/sh\n"
        "trap '' TERM\n"
        "read helo; echo 'OK\tstubborn'\n"
        "while read line; do echo END; done\n"
        "exec sleep 60\n"
    )
    coprocess.chmod(coprocess.stat().st_mode | stat.S_IXUSR)
    server = PdnsServer({"launch": "pipe", "pipe-command": str(coprocess), "pipe-abi-version": 5})
    with server:
        pid = server.process.pid
        assert server.query("example.net", "A").rcode() == 5  # REFUSED: no zone
        assert len(_process_group_members(pid)) > 1
        server.stop()
        assert _process_group_members(pid) == []
    assert "Backend launched with banner: OK\tstubborn" in server.log_text()


@pytest.mark.pdns("pipe")
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to test dropping privileges")
def test_user_drops_privileges() -> None:
    # pdns starts coprocesses after dropping privileges: the user must be able to run them
    # (pytest's tmp_path is private to root, so use a world-readable directory of our own).
    with tempfile.TemporaryDirectory(prefix="pdns-user-") as directory:
        Path(directory).chmod(0o755)
        coprocess = Path(directory, "co.sh")
        coprocess.write_text("#!/bin/sh\nread helo; echo OK\nwhile read line; do echo END; done\n")
        coprocess.chmod(0o755)
        with PdnsServer({"launch": "pipe", "pipe-command": str(coprocess)}, user="nobody") as server:
            status = Path(f"/proc/{server.process.pid}/status").read_text()
            uid = next(line for line in status.splitlines() if line.startswith("Uid:")).split()[1]
            assert uid == str(pwd.getpwnam("nobody").pw_uid)
            assert server.query("example.net", "A").rcode() == 5
