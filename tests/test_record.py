"""``lua2pipe SCRIPT --record FILE``: the live session written as a transcript that replays green.

The unit tests drive lua2pipe as a subprocess the way pdns does; the last test records the
sessions a real pdns_server drives (several coprocesses, one file each) and replays them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import NO_PACKET, q

import lua2pipe
from _lua2pipe.replay import replay_transcript
from _lua2pipe.transcript import Transcript, transcript_escape

REPO = Path(__file__).resolve().parent.parent

ZONE = REPO / "conformance" / "scripts" / "zone.lua"
LUA2PIPE = [sys.executable, str(REPO / "lua2pipe.py")]

CLIENT = "192.0.2.10\t192.0.2.53\t192.0.2.10/32"
SESSION = [
    "HELO\t5",
    f"Q\twww.example.org\tIN\tSOA\t-1{NO_PACKET}",
    f"Q\texample.org\tIN\tSOA\t-1{NO_PACKET}",
    f"Q\twww.example.org\tIN\tANY\t1\t{CLIENT}",
    f"Q\tWWW.Example.ORG\tIN\tA\t1\t{CLIENT}",
    f"Q\ta\\032b.example.org\tIN\tANY\t1\t{CLIENT}",
    f"Q\tback\\\\slash.example.org\tIN\tANY\t1\t{CLIENT}",
    f"Q\texample.org\tIN\tMX\t1\t{CLIENT}",
    "AXFR\t1\texample.org",
    "AXFR\t2\texample.net",
    "CMD\techo hello\tworld  ",
    "CMD\tlines",
    "CMD\tnosuch",
    "PING",
    "",
    f"Q\twww.example.org\tIN\tANY\tx\t{CLIENT}",
    f"Q\tw\udcffw.example.org\tIN\tANY\t1\t{CLIENT}",
]


def session_bytes(lines: list[str]) -> bytes:
    return "".join(line + "\n" for line in lines).encode("utf-8", "surrogateescape")


def run(args: list[str], stdin: bytes, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [*LUA2PIPE, *args], input=stdin, capture_output=True, timeout=60, cwd=cwd, check=False
    )


def test_recording_replays_green_and_changes_no_answer(tmp_path: Path) -> None:
    record = tmp_path / "session.txt"
    stdin = session_bytes(SESSION)
    plain = run([str(ZONE), "--loglevel", "6"], stdin)
    recorded = run([str(ZONE), "--loglevel", "6", "--record", str(record)], stdin)
    assert recorded.returncode == plain.returncode == 0
    assert recorded.stdout == plain.stdout
    assert b"DATA\t0\t1\twww.example.org.\tIN\tA\t300\t1\t192.0.2.1\n" in plain.stdout

    text = record.read_text()
    lines = text.splitlines()
    assert lines[0].startswith("# Recorded by lua2pipe")
    assert lines[1] == f"script: {ZONE}"
    assert lines[2] == "options: --loglevel 6"
    assert lines[3:6] == [
        "> HELO\\t5",
        "<~ OK\\tlua2pipe .*",
        "> Q\\twww.example.org\\tIN\\tSOA\\t-1\\t0.0.0.0\\t0.0.0.0\\t0.0.0.0/0",
    ]
    assert "> Q\\ta\\032b.example.org\\tIN\\tANY\\t1" in text  # pdns's escapes as they are
    assert "> Q\\tback\\\\\\\\slash.example.org" in text  # the text back\\slash
    assert "> CMD\\techo hello\\tworld\\x20\\x20" in text  # trailing blanks stay visible
    assert "< \\x20END" in text
    assert "> Q\\tw\\xffw.example.org" in text
    assert ">\n" in text  # the empty line
    assert "\t" not in text

    transcript = Transcript(record)
    assert transcript.questions == stdin.rstrip(b"\n").split(b"\n")
    result = replay_transcript(record)
    assert result.passed, result.report
    assert result.output == plain.stdout


def test_each_answer_reaches_the_file_before_pdns(tmp_path: Path) -> None:
    """A SIGKILL (what pdns sends) loses nothing already answered."""
    record = tmp_path / "killed.txt"
    process = subprocess.Popen(
        [*LUA2PIPE, str(ZONE), "--record", str(record)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert process.stdin and process.stdout
        process.stdin.write(b"HELO\t3\n")
        process.stdin.flush()
        assert process.stdout.readline().startswith(b"OK\tlua2pipe ")
        process.stdin.write(f"Q\twww.example.org\tIN\tA\t1\t{CLIENT}\n".encode())
        process.stdin.flush()
        assert process.stdout.readline().startswith(b"DATA\t")
        assert process.stdout.readline() == b"END\n"
        text = record.read_text()
        assert text.endswith("< DATA\\t0\\t1\\twww.example.org.\\tIN\\tA\\t300\\t1\\t192.0.2.1\n< END\n")
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream:
                stream.close()
    result = replay_transcript(record)
    assert result.passed, result.report


def test_file_names_never_clash(tmp_path: Path) -> None:
    session = session_bytes(SESSION[:2])
    taken = tmp_path / "s.txt"
    taken.write_text("someone else's\n")
    first = run([str(ZONE), "--record", str(taken)], session)
    assert taken.read_text() == "someone else's\n"  # never overwritten
    (second,) = tmp_path.glob("s.*.txt")
    assert second.name.split(".")[1].isdigit()
    assert first.returncode == 0

    run([str(ZONE), "--record", str(tmp_path / "p-%p-100%%.txt")], session)
    (named,) = tmp_path.glob("p-*-100%.txt")
    assert named.name.split("-")[1].isdigit()
    for path in (second, named):
        result = replay_transcript(path)
        assert result.passed, result.report


def test_no_file_without_an_answer_and_exit_status_recorded(tmp_path: Path) -> None:
    run([str(ZONE), "--record", str(tmp_path / "none-%p.txt")], b"")
    assert list(tmp_path.iterdir()) == []  # a coprocess killed before HELO leaves nothing

    bad = tmp_path / "bad.txt"
    assert run([str(ZONE), "--record", str(bad)], b"HELO\t9\n").returncode == 1
    assert bad.read_text().splitlines()[-3:] == ["> HELO\\t9", "< FAIL", "exit: 1"]
    result = replay_transcript(bad)
    assert result.passed, result.report


def test_unwritable_file_changes_nothing(tmp_path: Path) -> None:
    stdin = session_bytes(SESSION)
    plain = run([str(ZONE)], stdin)
    broken = run([str(ZONE), "--record", str(tmp_path / "missing-dir" / "s.txt")], stdin)
    assert broken.stdout == plain.stdout
    assert broken.returncode == 0
    assert b"cannot record the session" in broken.stderr


def test_a_record_path_that_is_not_a_regular_file_is_refused_and_nothing_is_created(tmp_path: Path) -> None:
    # --record /dev/null used to create /dev/null.PID beside it, as for a name already taken
    fifo, directory = tmp_path / "fifo", tmp_path / "directory"
    os.mkfifo(fifo)
    directory.mkdir()
    stdin = session_bytes(SESSION[:4])
    plain = run([str(ZONE)], stdin)
    for path in (fifo, directory):
        refused = run([str(ZONE), "--log-format", "json", "--record", str(path)], stdin)
        (logged,) = [json.loads(line) for line in refused.stderr.splitlines()]
        del logged["timestamp"]
        assert (refused.returncode, refused.stdout, logged) == (
            0,
            plain.stdout,
            {
                "event": "cannot record the session; recording stopped",
                "level": "error",
                "program": "lua2pipe",
                "file": str(path),
                "error": f"{path} is not a regular file: --record writes a new regular file",
            },
        )
    assert sorted(tmp_path.iterdir()) == [directory, fifo]
    assert list(directory.iterdir()) == []


def test_relative_script_recorded_as_absolute(tmp_path: Path) -> None:
    record = tmp_path / "rel.txt"
    run(["zone.lua", "--lua", "5.1", "--record", str(record)], session_bytes(SESSION[:4]), cwd=ZONE.parent)
    transcript = Transcript(record)
    assert transcript.script == str(ZONE)
    assert transcript.options == ["--lua", "5.1"]
    result = replay_transcript(record)
    assert result.passed, result.report


def test_recording_off_binds_nothing() -> None:
    read_fd, write_fd = os.pipe()
    try:
        plain = lua2pipe.Coprocess(None, read_fd, write_fd, load_error="not loaded")
        assert type(plain) is lua2pipe.Coprocess and type(plain.reader) is lua2pipe.LineReader
        assert not {"answer", "write", "serve"} & set(vars(plain))
        assert "readline" not in vars(plain.reader)
    finally:
        os.close(read_fd)
        os.close(write_fd)


# -- a runaway hook: the watchdog answers it from its thread, then re-executes lua2pipe

#: example.org's SOA for pdns's zone walk, a TXT for every other name, and a dns_lookup that
#: never returns for spin.example.org.
SPIN = """
function dns_lookup(qtype, qname)
  if qname:toString() == "spin.example.org." then while true do end end
  if qtype:getCode() == pdns.SOA then
    if not qname:equal("example.org") then return {} end
    return { { name = qname, type = "SOA", ttl = 60, domain_id = 1,
      content = "ns.example.org. hostmaster.example.org. 1 3600 600 604800 300" } }
  end
  return { { name = qname, type = "TXT", content = "fine", ttl = 60, domain_id = 1 } }
end
"""

RUNAWAY_ANSWER = [
    "< LOG\\thook still running after 200 ms (--max-query-ms): stopped, Lua state restarted",
    "< FAIL",
]
RESTARTED = (
    "# lua2pipe restarted here (same process, fresh Lua state): the watchdog answered the "
    "question in hand (--max-query-ms)"
)


def test_a_runaway_question_and_its_answer_are_recorded_before_the_restart(tmp_path: Path) -> None:
    script = tmp_path / "spin.lua"
    script.write_text(SPIN)
    record = tmp_path / "runaway.txt"
    questions = [
        "HELO\t5",
        q("before.example.org", "TXT"),
        q("spin.example.org"),
        q("after.example.org", "TXT"),
    ]
    recorded = run([str(script), "--max-query-ms", "200", "--record", str(record)], session_bytes(questions))
    assert recorded.returncode == 0, recorded.stderr
    assert record.read_text().splitlines()[3:] == [
        "> HELO\\t5",
        "<~ OK\\tlua2pipe .*",
        "> Q\\tbefore.example.org\\tIN\\tTXT\\t1\\t192.0.2.1\\t192.0.2.53\\t192.0.2.0/24",
        '< DATA\\t0\\t1\\tbefore.example.org.\\tIN\\tTXT\\t60\\t1\\t"fine"',
        "< END",
        "> Q\\tspin.example.org\\tIN\\tANY\\t1\\t192.0.2.1\\t192.0.2.53\\t192.0.2.0/24",
        *RUNAWAY_ANSWER,
        RESTARTED,
        "> Q\\tafter.example.org\\tIN\\tTXT\\t1\\t192.0.2.1\\t192.0.2.53\\t192.0.2.0/24",
        '< DATA\\t0\\t1\\tafter.example.org.\\tIN\\tTXT\\t60\\t1\\t"fine"',
        "< END",
    ]
    result = replay_transcript(record)
    assert result.passed, result.report


# -- a real pdns_server driving recording coprocesses


@pytest.mark.pdns("pipe")
@pytest.mark.lua2pipe
def test_record_sessions_pdns_drives(tmp_path: Path, start_pdns) -> None:
    from pdns import PdnsServer

    records = tmp_path / "records"
    records.mkdir()
    pattern = records / "session-%p.txt"
    server = start_pdns(
        PdnsServer.pipe(
            ZONE, abi=5, args=["--loglevel", "4", "--record", str(pattern)], distributor_threads=2
        )
    )
    answer = server.query("www.example.org", "A")
    assert [rrset.to_text() for rrset in answer.answer] == ["www.example.org. 300 IN A 192.0.2.1"]
    answer = server.query("WWW.Example.ORG", "AAAA", source="127.0.0.2")
    assert [rrset.to_text() for rrset in answer.answer] == ["WWW.Example.ORG. 300 IN AAAA 2001:db8::1"]
    answer = server.query("example.org", "MX")
    assert [rrset.to_text() for rrset in answer.answer] == ["example.org. 300 IN MX 10 mail.example.org."]
    assert server.query("nope.example.org", "A").rcode() == 3  # NXDOMAIN
    assert len(server.axfr("example.org")) >= 12
    server.stop()

    files = sorted(records.glob("session-*.txt"))
    assert len(files) >= 2, "pdns runs several coprocesses; each writes its own file"
    text = "".join(path.read_text() for path in files)
    assert "> Q\\twww.example.org\\tIN\\tSOA\\t-1\\t0.0.0.0\\t0.0.0.0\\t0.0.0.0/0" in text
    assert "> Q\\tWWW.Example.ORG\\tIN\\t" in text
    assert "\\t127.0.0.2\\t127.0.0.1\\t127.0.0.2/32" in text
    assert "> AXFR\\t1\\texample.org" in text
    for path in files:
        transcript = Transcript(path)
        assert transcript.script == str(ZONE)
        assert transcript.options == ["--loglevel", "4"]
        result = replay_transcript(path)
        assert result.passed, result.report


@pytest.mark.pdns("pipe")
@pytest.mark.lua2pipe
def test_a_runaway_question_pdns_asks_is_recorded_with_its_answer(tmp_path: Path, start_pdns) -> None:
    from pdns import PdnsServer

    script = tmp_path / "spin.lua"
    script.write_text(SPIN)
    records = tmp_path / "records"
    records.mkdir()
    args = ["--loglevel", "4", "--max-query-ms", "200", "--record", str(records / "session-%p.txt")]
    server = start_pdns(PdnsServer.pipe(script, abi=5, args=args))
    assert server.query("spin.example.org", "TXT").rcode() == 2  # SERVFAIL
    answer = server.query("after.example.org", "TXT")
    assert [rrset.to_text() for rrset in answer.answer] == ['after.example.org. 60 IN TXT "fine"']
    server.stop()

    # pdns's zone walk asks spin.example.org's SOA first: that question runs away
    (path,) = [path for path in records.glob("session-*.txt") if "spin.example.org" in path.read_text()]
    lines = path.read_text().splitlines()
    spin = lines.index(f"> {transcript_escape(q('spin.example.org', 'SOA', -1, NO_PACKET).encode())}")
    assert lines[spin + 1 : spin + 5] == [*RUNAWAY_ANSWER, "< END", RESTARTED]
    result = replay_transcript(path)
    assert result.passed, result.report


# -- remote mode: the first line is initialize's JSON object, then one request, one reply


def remote_request(method: str, **parameters: object) -> str:
    """A request as pdns 4.7.3 writes it (RemoteBackend::send, json11's dump: sorted members)."""
    return json.dumps({"method": method, "parameters": parameters}, sort_keys=True)


def remote_lookup(qname: str, qtype: str = "ANY", client: int = 1) -> str:
    return remote_request(
        "lookup",
        qname=qname,
        qtype=qtype,
        local="127.0.0.1",
        remote=f"127.0.0.{client}",
        **{"real-remote": f"127.0.0.{client}/32", "zone-id": 1},
    )


REMOTE_SESSION = [
    remote_request("initialize", command="lua2pipe zone.lua", timeout="0"),
    remote_lookup("www.example.org.", "A"),
    remote_lookup("a\\032b.example.org."),
    remote_request("getDomainInfo", name="example.org."),
    remote_request("directBackendCmd", query="echo hello\tworld"),
    "not json",
]


def test_a_remote_session_is_recorded_line_by_line_and_replays_green(tmp_path: Path) -> None:
    record = tmp_path / "remote.txt"
    stdin = session_bytes(REMOTE_SESSION)
    plain = run([str(ZONE), "--loglevel", "6"], stdin)
    recorded = run([str(ZONE), "--loglevel", "6", "--record", str(record)], stdin)
    assert recorded.returncode == plain.returncode == 0
    assert recorded.stdout == plain.stdout
    client = '"real-remote": "127.0.0.1/32", "remote": "127.0.0.1", "zone-id": 1}}'
    assert record.read_text().splitlines()[1:] == [
        f"script: {ZONE}",
        "options: --loglevel 6",
        '> {"method": "initialize", "parameters": {"command": "lua2pipe zone.lua", "timeout": "0"}}',
        '< {"result":true}',
        '> {"method": "lookup", "parameters": {"local": "127.0.0.1", "qname": "www.example.org.", '
        f'"qtype": "A", {client}',
        '< {"result":[{"qtype":"A","qname":"www.example.org.","content":"192.0.2.1","ttl":300,'
        '"domain_id":1}]}',
        # JSON's escaped backslash (the name's a\032b) is a run of two: the transcript doubles it
        '> {"method": "lookup", "parameters": {"local": "127.0.0.1", "qname": '
        f'"a\\\\\\\\032b.example.org.", "qtype": "ANY", {client}',
        '< {"result":[]}',
        '> {"method": "getDomainInfo", "parameters": {"name": "example.org."}}',
        '< {"result":{"id":1,"zone":"example.org.","kind":"native","serial":2024010101,'
        '"notified_serial":0,"last_check":0,"masters":[]}}',
        # JSON's \t is a backslash before a t: doubled, so it does not read as a tab
        '> {"method": "directBackendCmd", "parameters": {"query": "echo hello\\\\tworld"}}',
        '< {"result":"hello\\\\tworld"}',
        "> not json",
        '< {"result":false,"log":["lua2pipe: malformed request: not a JSON request: Expecting value: '
        'line 1 column 1 (char 0)"]}',
    ]
    assert Transcript(record).questions == stdin.rstrip(b"\n").split(b"\n")
    result = replay_transcript(record)
    assert result.passed, result.report
    assert result.output == plain.stdout


def test_a_remote_runaway_request_and_its_reply_are_recorded_before_the_restart(tmp_path: Path) -> None:
    script = tmp_path / "spin.lua"
    script.write_text(SPIN)
    record = tmp_path / "runaway.txt"
    questions = [
        remote_request("initialize", timeout="0"),
        remote_lookup("spin.example.org.", "TXT"),
        remote_lookup("after.example.org.", "TXT"),
    ]
    recorded = run([str(script), "--max-query-ms", "200", "--record", str(record)], session_bytes(questions))
    assert recorded.returncode == 0, recorded.stderr
    why = "hook still running after 200 ms (--max-query-ms): stopped, Lua state restarted"
    assert record.read_text().splitlines()[3:] == [
        '> {"method": "initialize", "parameters": {"timeout": "0"}}',
        '< {"result":true}',
        f"> {questions[1]}",
        '< {"result":[{"qtype":"A","qname":"spin.example.org.","content":"","ttl":0}],"log":["' + why + '"]}',
        RESTARTED,
        f"> {questions[2]}",
        '< {"result":[{"qtype":"TXT","qname":"after.example.org.","content":"\\"fine\\"","ttl":60,'
        '"domain_id":1}]}',
    ]
    result = replay_transcript(record)
    assert result.passed, result.report


@pytest.mark.pdns("remote")
@pytest.mark.lua2pipe
def test_record_remote_sessions_pdns_drives(tmp_path: Path, start_pdns) -> None:
    from pdns import PdnsServer

    records = tmp_path / "records"
    records.mkdir()
    args = ["--loglevel", "4", "--record", str(records / "session-%p.txt")]
    server = start_pdns(
        PdnsServer.remote(ZONE, {"zone-cache-refresh-interval": 0}, args=args, dnssec=False, timeout_ms=0)
    )
    answer = server.query("www.example.org", "A")
    assert [rrset.to_text() for rrset in answer.answer] == ["www.example.org. 300 IN A 192.0.2.1"]
    answer = server.query("example.org", "MX", source="127.0.0.2")
    assert [rrset.to_text() for rrset in answer.answer] == ["example.org. 300 IN MX 10 mail.example.org."]
    assert server.query("nope.example.org", "A").rcode() == 3  # NXDOMAIN
    assert len(server.axfr("example.org")) >= 12
    server.stop()

    files = sorted(records.glob("session-*.txt"))
    assert files, "pdns's remote coprocesses record"
    lines = {line for path in files for line in path.read_text().splitlines()}
    assert {
        f"> {remote_lookup('www.example.org.')}",
        f"> {remote_lookup('example.org.', client=2)}",
        '> {"method": "list", "parameters": {"domain_id": 1, "include_disabled": false, '
        '"zonename": "example.org."}}',
    } <= lines
    for path in files:
        transcript = Transcript(path)
        assert transcript.questions[0].startswith(b'{"method": "initialize", "parameters": {"command": ')
        assert transcript.options == ["--loglevel", "4"]
        result = replay_transcript(path)
        assert result.passed, result.report
