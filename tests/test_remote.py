"""Remote mode on the real executable's stdin and stdout: pdns's remote backend protocol
(launch=remote, pipe connector), as pdns 4.7.3 speaks it (modules/remotebackend/remotebackend.cc,
pipeconnector.cc).

Each request is one JSON line; each reply must be one JSON line with a ``result`` (pdns kills a
coprocess whose reply has none), in order, in time, whatever the request or the script does.
"""

from __future__ import annotations

import json
import time

import pytest
from coprocess_client import HOSTILE, SCRIPTS, AnswerTimeout, Lua2Pipe

HOOKS = SCRIPTS / "hooks.lua"

INITIALIZE = {"method": "initialize", "parameters": {"command": "/x/lua2pipe", "timeout": "2000"}}
NO_PACKET = {"local": "0.0.0.0", "real-remote": "0.0.0.0/0", "remote": "0.0.0.0"}
PACKET = {"local": "127.0.0.1", "real-remote": "198.51.100.0/24", "remote": "127.0.0.1"}


def request(method: str, **parameters: object) -> str:
    """A request as pdns writes it (json11: keys sorted, ": " and ", ")."""
    return json.dumps({"method": method, "parameters": dict(sorted(parameters.items()))})


def lookup(qname: str, qtype: str = "ANY", zone_id: int = 7, packet: dict[str, str] = NO_PACKET) -> str:
    return request("lookup", qname=qname, qtype=qtype, **{"zone-id": zone_id}, **packet)


class Remote(Lua2Pipe):
    """A coprocess spoken to as pdns's remote backend speaks: initialize first, then requests."""

    def __init__(self, script: object = HOOKS, *args: str, initialize: bool = True) -> None:
        super().__init__(script, *args, abi=None)
        if initialize:
            self.send(json.dumps(INITIALIZE) + "\n")
            assert json.loads(self.readline()) == {"result": True}

    def call(self, line: str | bytes, timeout: float = 2.0) -> dict:
        self.send((line if isinstance(line, bytes) else line.encode()) + b"\n")
        reply = json.loads(self.readline(timeout))
        assert "result" in reply and reply["result"] is not None, reply
        return reply


WWW_ROWS = [
    {"qtype": "A", "qname": "www.example.com.", "content": "192.0.2.80", "ttl": 300, "domain_id": 7},
    {"qtype": "AAAA", "qname": "www.example.com.", "content": "2001:db8::80", "ttl": 300, "domain_id": 7},
]


def test_first_line_decides_and_every_method_reaches_its_hook():
    with Remote() as remote:
        assert remote.call(lookup("www.example.com.")) == {"result": WWW_ROWS}
        assert remote.call(lookup("www.example.com.", "AAAA"))["result"] == WWW_ROWS[1:]
        assert remote.call(lookup("nope.example.com."))["result"] == []
        listed = remote.call(request("list", domain_id=7, include_disabled=False, zonename="example.com."))
        assert [row["qtype"] for row in listed["result"]][:3] == ["SOA", "NS", "MX"]
        assert (
            remote.call(request("list", domain_id=8, include_disabled=False, zonename="example.net."))[
                "result"
            ]
            is False
        )
        zones = remote.call(request("getAllDomains", include_disabled=True))["result"]
        assert {zone["zone"]: zone["kind"] for zone in zones} == {
            "example.com.": "master",
            "example.net.": "native",
        }
        info = remote.call(request("getDomainInfo", name="example.com."))["result"]
        assert info == {
            "id": 7,
            "zone": "example.com.",
            "kind": "master",
            "serial": 2024010101,
            "notified_serial": 2024010100,
            "last_check": 0,
            "masters": [],
        }
        metadata = remote.call(request("getAllDomainMetadata", name="example.com."))["result"]
        assert metadata["ALSO-NOTIFY"] == ["192.0.2.1", "192.0.2.2"]
        also = remote.call(request("getDomainMetadata", kind="ALSO-NOTIFY", name="example.com."))
        assert also["result"] == ["192.0.2.1", "192.0.2.2"]
        keys = remote.call(request("getDomainKeys", name="example.com."))["result"]
        assert [(k["id"], k["flags"], k["active"], k["published"]) for k in keys][:2] == [
            (1, 257, True, True),
            (2, 256, True, True),
        ]
        assert keys[0]["content"].startswith("Private-key-format: v1.2\n")
        names = remote.call(request("getBeforeAndAfterNamesAbsolute", id=7, qname="nope."))["result"]
        assert set(names) == {"unhashed", "before", "after"}
        # primaries whose serial differs from the notified one: pdns notifies each on every cycle
        updated = remote.call(request("getUpdatedMasters"))["result"]
        assert [zone["zone"] for zone in updated] == ["example.com."]
        assert remote.call(request("setNotified", id=7, serial=2024010101)) == {"result": True}
        assert remote.call(request("directBackendCmd", query="notified_serial 7")) == {"result": "2024010101"}
        assert remote.call(request("directBackendCmd", query="echo hi there")) == {"result": "echo:hi there"}
        assert remote.call(request("directBackendCmd", query="lua2pipe version"))["result"].startswith(
            "lua2pipe "
        )
        assert remote.close() == 0


def test_ctx_is_mapped_as_native_maps_it():
    with Remote() as remote:
        reply = remote.call(lookup("ctx.example.com.", packet=PACKET))
        assert (
            reply["result"][0]["content"] == '"real_source_address=198.51.100.0/24 source_address=127.0.0.1"'
        )
        # pdns's own lookups (no packet) give the script an empty ctx
        assert remote.call(lookup("ctx.example.com."))["result"][0]["content"] == '""'


def test_initialize_is_answered_before_the_script_loads():
    # dns_init never returns; pdns must still get its initialize reply at once (a late one
    # would be read as the reply to the next request)
    with Remote(SCRIPTS / "endless_init.lua", initialize=False) as remote:
        started = time.monotonic()
        remote.send(json.dumps(INITIALIZE) + "\n")
        assert json.loads(remote.readline(1.0)) == {"result": True}
        assert time.monotonic() - started < 0.5
        remote.kill()


@pytest.mark.parametrize(
    "line",
    [
        b"not json",
        b"",
        b"[1, 2]",
        b'{"parameters": {}}',
        b'{"method": 7}',
        b'{"method": "lookup", "parameters": []}',
        b'{"method": "lookup", "parameters": {"qname": "www.example.com."}}',
        b'{"method": "lookup", "parameters": {"qname": 5, "qtype": "A", "zone-id": 7}}',
        b'{"method": "lookup", "parameters": {"qname": "x.", "qtype": "A", "zone-id": true}}',
        b'{"method": "lookup", "parameters": {"qname": "a..b.", "qtype": "A", "zone-id": 7}}',
        b'{"method": "getDomainInfo", "parameters": {"name": null}}',
        b'{"method": "getBeforeAndAfterNamesAbsolute", "parameters": {"id": "x", "qname": "a."}}',
        b'{"method": "setDomainMetadata", "parameters": {"kind": "X", "name": "a.", "value": []}}',
        b'{"method": "noSuchMethod", "parameters": {}}',
        b'{"method": "lookup", "parameters": {"qname": "\xff.", "qtype": "A", "zone-id": 7}}',
        b"{" * 100000,
        b'{"method": "directBackendCmd", "parameters": {"query": "' + b"x" * 70000 + b'"}}',
    ],
    ids=lambda line: line[:40].decode("latin-1"),
)
def test_a_bad_request_gets_a_reply_and_the_stream_stays_in_sync(line):
    with Remote() as remote:
        reply = remote.call(line)  # one reply, with a result
        if reply["result"] is not False:  # a reply pdns rejects for this request only
            assert reply["result"] in ({}, [{"qtype": "A", "qname": ".", "content": "", "ttl": 0}]), reply
        assert remote.call(lookup("www.example.com.")) == {"result": WWW_ROWS}
        assert remote.close() == 0
        assert "Traceback" not in remote.stderr_text()


def test_a_failing_hook_fails_its_request_only_and_keeps_the_state():
    with Remote() as remote:
        assert remote.call(request("setNotified", id=7, serial=5)) == {"result": True}
        reply = remote.call(lookup("raise.example.com."))
        # a row whose content pdns cannot parse: SERVFAIL for this question, coprocess kept
        assert reply["result"] == [{"qtype": "A", "qname": "raise.example.com.", "content": "", "ttl": 0}]
        assert "lookup raised on purpose" in reply["log"][0]
        assert remote.call(request("directBackendCmd", query="notified_serial 7")) == {"result": "5"}


@pytest.mark.parametrize(
    ("method", "raising"),
    [
        ("getDomainKeys", [{}]),
        ("getDomainInfo", {}),
        ("getAllDomainMetadata", {"lua2pipe-error": {}}),
        ("getDomainMetadata", False),
    ],
)
def test_a_script_that_did_not_load_fails_every_request(method, raising):
    with Remote(SCRIPTS / "broken_toplevel.lua") as remote:
        reply = remote.call(request(method, name="example.com.", kind="X"))
        assert reply["result"] == raising and "script not loaded" in reply["log"][0]
        assert remote.call(lookup("www.example.com."))["result"][0]["content"] == ""
        assert remote.call(request("directBackendCmd", query="version"))["result"].endswith(
            "script not loaded"
        )


def test_a_runaway_hook_is_answered_in_time_and_the_process_restarts_in_place():
    with Remote(HOSTILE, "--max-query-ms", "300") as remote:
        pid = remote.pid
        # the next request is already in the pipe: the restarted image must answer it
        remote.send(
            lookup("spin.example.org.", zone_id=1) + "\n" + lookup("a.example.org.", zone_id=1) + "\n"
        )
        started = time.monotonic()
        failed = json.loads(remote.readline(2.0))
        assert time.monotonic() - started < 1.5
        assert failed["result"][0]["content"] == "" and "--max-query-ms" in failed["log"][0]
        echoed = json.loads(remote.readline(3.0))
        assert echoed["result"][0]["content"] == '"a.example.org. ANY 1 nil"'  # no packet: ctx {}
        assert remote.pid == pid and remote.process.poll() is None
        assert remote.call(request("directBackendCmd", query="lua2pipe version"))["result"].startswith(
            "lua2pipe"
        )
        assert remote.close() == 0


def test_idle_never_exits_and_eof_exits_cleanly():
    with Remote() as remote:
        with pytest.raises(AnswerTimeout):
            remote.readline(0.5)
        assert remote.process.poll() is None
        assert remote.close() == 0


EDITED = """
function dns_lookup(qtype, qname)
  return { { name = qname, type = "TXT", content = '"VERSION"', ttl = 60, domain_id = 7 } }
end
"""


def test_an_edited_script_is_reloaded_between_two_requests(tmp_path):
    script = tmp_path / "zone.lua"
    script.write_text(EDITED.replace("VERSION", "v1"))

    def rows(version: str) -> dict:
        return {
            "result": [
                {
                    "qtype": "TXT",
                    "qname": "www.example.com.",
                    "content": f'"{version}"',
                    "ttl": 60,
                    "domain_id": 7,
                }
            ]
        }

    with Remote(script) as remote:
        assert remote.call(lookup("www.example.com.")) == rows("v1")
        (tmp_path / "zone.tmp").write_text(EDITED.replace("VERSION", "v2"))
        (tmp_path / "zone.tmp").replace(script)  # as an editor saves
        deadline = time.monotonic() + 5  # the script is checked once a second
        while (reply := remote.call(lookup("www.example.com."))) == rows(
            "v1"
        ) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert reply == rows("v2")
        assert remote.close() == 0


# -- one crossing per lookup: lua/remote.lua reads a lookup line in pdns's own form


def compact(line: str) -> str:
    """The same request in another JSON form, which lua/remote.lua hands to Python's reader."""
    return json.dumps(json.loads(line), separators=(",", ":"))


@pytest.mark.parametrize(
    "line",
    [
        lookup("www.example.com."),
        lookup("www.example.com.", "AAAA", packet=PACKET),
        lookup("ctx.example.com.", packet=PACKET),
        lookup("nope.example.com.", zone_id=-1),
        lookup("raise.example.com."),  # the hook fails: a failing row
        lookup("A\\032b.example.com."),  # a JSON escape: Python's reader
        lookup("www.example.com.", zone_id=4294967295),
        lookup("www.example.com.", zone_id=4294967296),  # out of range: malformed
        lookup("a..b."),  # no such name: malformed
        request("lookup", qname="www.example.com.", qtype="A", **{"zone-id": 7}),  # no addresses
    ],
    ids=lambda line: line[40:100],
)
def test_a_lookup_is_answered_alike_in_pdns_form_and_any_other(line):
    with Remote() as remote:
        assert remote.call(line) == remote.call(compact(line))
        assert remote.close() == 0


@pytest.mark.parametrize("form", [str, compact], ids=["pdns form", "other form"])
def test_memory_cap_leak_gets_one_failure_and_a_fresh_state(form):
    # the pipe's after-answer heap check (test_robustness.py), in both reading paths
    with Remote(HOSTILE, "--max-memory", "8") as remote:
        total = 9000
        remote.send_in_background((form(lookup("leak.example.org.", zone_id=1)) + "\n") * total)
        replies = [json.loads(remote.readline()) for _ in range(total)]
        failures = [reply for reply in replies if reply["result"][0]["content"] == ""]
        assert len(failures) == 1, failures[:3]
        assert "restarting with a fresh Lua state" in failures[0]["log"][0]
        assert remote.call(lookup("after.example.org.", zone_id=1))["result"][0]["content"].startswith(
            '"after'
        )
        assert 'event="Lua heap full"' in remote.stderr_text(0.1)


def test_memory_cap_fails_the_lookup_and_keeps_the_state():
    with Remote(HOSTILE, "--max-memory", "32", "--max-query-ms", "0") as remote:
        reply = remote.call(lookup("hog.example.org.", zone_id=1))
        assert reply["result"][0]["content"] == "" and "not enough memory" in reply["log"][0]
        assert remote.call(lookup("after.example.org.", zone_id=1))["result"][0]["content"].startswith(
            '"after'
        )


def test_a_first_load_that_never_ends_exits_while_pdns_waits():
    # With timeout=0 in the connection string pdns would wait for ever: the load is bounded
    # like a fresh state's, never below 2000 ms, and pdns recovers from an exit while it waits.
    with Remote(SCRIPTS / "endless_init.lua", "--max-query-ms", "300") as remote:
        started = time.monotonic()
        remote.send(lookup("www.example.com.") + "\n")
        assert remote.wait(timeout=10.0) == 1
        # (its log line is given up after 0.5 s when the machine is too busy to write it)
        assert 1.9 < time.monotonic() - started < 8.0
