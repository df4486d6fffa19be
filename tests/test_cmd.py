"""CMD (pipe ABI 5, ``pdnsutil backend-cmd pipe ...``): the built-in commands for every optional
hook, lua2pipe's own commands, and native lua2's backend-cmd (script functions), in process.

Every answer is checked as pdns reads it: lines, then exactly one ``END``; a failure is one line.
tests/scripts/hooks.lua implements every hook and misbehaves on purpose for some names.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import dns.dnssec
import dns.rdtypes.ANY.DNSKEY
import pytest
from helpers import make_coprocess

import lua2pipe
from _lua2pipe.keys import key_fingerprint
from _lua2pipe.shell import OfflineHost

SCRIPTS = Path(__file__).parent / "scripts"
HOOKS = SCRIPTS / "hooks.lua"

pytestmark = pytest.mark.lua2pipe


@pytest.fixture
def coprocess() -> lua2pipe.Coprocess:
    return make_coprocess(HOOKS)


def cmd(coprocess: lua2pipe.Coprocess, text: str) -> list[str]:
    """The answer lines to ``CMD\\t<text>``, checked to end in exactly one END."""
    answer = coprocess.answer(f"CMD\t{text}".encode()).decode()
    assert answer.endswith("\n")
    lines = answer.split("\n")[:-1]
    assert lines[-1] == "END"
    assert "END" not in lines[:-1], "a bare END inside the answer would desync pdns"
    return lines[:-1]


def one_line(coprocess: lua2pipe.Coprocess, text: str, prefix: str = "error: ") -> str:
    lines = cmd(coprocess, text)
    assert len(lines) == 1, lines
    assert lines[0].startswith(prefix), lines
    return lines[0]


# -- domain info ----------------------------------------------------------------------------------


def test_domaininfo(coprocess):
    assert cmd(coprocess, "domaininfo example.com") == [
        "example.com. id=7 kind=primary serial=2024010101 notified_serial=2024010100 last_check=0 "
        'account="dns team" masters="" source=dns_get_domaininfo'
    ]


def test_domaininfo_json(coprocess):
    (line,) = cmd(coprocess, "domaininfo EXAMPLE.com --json")
    document = json.loads(line)
    assert document["warnings"] == []
    assert document["result"] == {
        "zone": "EXAMPLE.com.",
        "id": 7,
        "kind": "primary",
        "serial": 2024010101,
        "notified_serial": 2024010100,
        "last_check": 0,
        "account": "dns team",
        "masters": [],
        "source": "dns_get_domaininfo",
    }


def test_domaininfo_defaults_and_unknown_key_warning(coprocess):
    assert cmd(coprocess, "domaininfo unknown-key.example") == [
        'unknown-key.example. id=4 kind=native serial=0 notified_serial=0 last_check=0 account="" '
        'masters="" source=dns_get_domaininfo',
        "warning: Unsupported key 'colour' in domaininfo result",
    ]


def test_domaininfo_reads_kind_names_as_pdns_does(tmp_path):
    # DomainInfo::stringToKind: case-insensitive, MASTER and SLAVE for PRIMARY and SECONDARY, and
    # any other name is native (lua2pipe warns)
    script = tmp_path / "kinds.lua"
    script.write_text(
        "function dns_lookup() return {} end\n"
        "function dns_get_domaininfo(zone)\n"
        "  return { id = 1, kind = zone:getRawLabels()[1] }\n"
        "end\n"
    )
    coprocess = make_coprocess(script)
    answers = {
        name: cmd(coprocess, f"domaininfo {name}.example")
        for name in ("Native", "master", "PRIMARY", "Slave", "secondary", "producer", "CONSUMER", "ALL")
    }
    assert answers == {
        name: [
            f'{name}.example. id=1 kind={kind} serial=0 notified_serial=0 last_check=0 account="" '
            'masters="" source=dns_get_domaininfo',
            *warnings,
        ]
        for name, kind, warnings in (
            ("Native", "native", []),
            ("master", "primary", []),
            ("PRIMARY", "primary", []),
            ("Slave", "secondary", []),
            ("secondary", "secondary", []),
            ("producer", "producer", []),
            ("CONSUMER", "consumer", []),
            (
                "ALL",
                "native",
                [
                    'warning: dns_get_domaininfo: ALL.example. kind "ALL" is not native, primary '
                    "(master), secondary (slave), producer or consumer; pdns takes it as native"
                ],
            ),
        )
    }


def test_domaininfo_not_found(coprocess):
    assert one_line(coprocess, "domaininfo example.org", "not found: ") == (
        "not found: dns_get_domaininfo returned false for example.org.: not found or not supported"
    )


def test_domaininfo_boolean_value_breaks_the_contract(coprocess):
    line = one_line(coprocess, "domaininfo boolean.example")
    assert "serial value true is a boolean" in line


def test_domaininfo_hook_raises(coprocess):
    line = one_line(coprocess, "domaininfo raise.example")
    assert "dns_get_domaininfo failed" in line and "hooks.lua:" in line
    assert "domaininfo raised on purpose" in line


def test_domaininfo_soa_fallback_without_the_hook(tmp_path):
    script = tmp_path / "soa.lua"
    script.write_text(
        "function dns_lookup(qtype, qname, id, ctx)\n"
        "  if qtype:getName() == 'SOA' and qname == newDN('example.org') then\n"
        "    return {{name = 'example.org', type = 'SOA', domain_id = 3,\n"
        "      content = 'ns. host. 2023123199 1 2 3 4'}}\n"
        "  end\n"
        "  return {}\n"
        "end\n"
    )
    coprocess = make_coprocess(script)
    assert cmd(coprocess, "domaininfo example.org") == [
        'example.org. id=3 kind=native serial=2023123199 notified_serial=0 last_check=0 account="" '
        'masters="" source=soa'
    ]
    assert one_line(coprocess, "domaininfo example.net", "not found: ") == (
        "not found: dns_get_domaininfo missing and dns_lookup has no SOA for example.net."
    )
    assert one_line(coprocess, "domains") == (
        "error: dns_get_all_domains missing: the script does not define it"
    )


def test_domains_in_canonical_order(coprocess):
    lines = cmd(coprocess, "domains")
    assert [line.split()[0] for line in lines] == ["example.com.", "example.net."]
    assert all(line.endswith("source=dns_get_all_domains") for line in lines)
    document = json.loads(cmd(coprocess, "domains --json")[0])
    assert [info["id"] for info in document["result"]] == [7, 8]


def test_domains_needs_dnsname_keys(tmp_path):
    script = tmp_path / "stringkeys.lua"
    script.write_text(
        "function dns_lookup() return {} end\n"
        "function dns_get_all_domains() return {['example.org'] = {id = 1}} end\n"
    )
    line = one_line(make_coprocess(script), "domains")
    assert 'key "example.org" is a string, not a DNSName' in line


# -- metadata -------------------------------------------------------------------------------------


def test_metadata_one_kind(coprocess):
    assert cmd(coprocess, "metadata example.com ALSO-NOTIFY") == [
        "ALSO-NOTIFY=192.0.2.1",
        "ALSO-NOTIFY=192.0.2.2",
    ]
    assert cmd(coprocess, "metadata example.com NUMBERS") == ["NUMBERS=1", "NUMBERS=2"]
    assert cmd(coprocess, "metadata example.com NOTHING") == []


def test_metadata_all_kinds_sorted(coprocess):
    assert cmd(coprocess, "metadata example.com") == [
        "ALSO-NOTIFY=192.0.2.1",
        "ALSO-NOTIFY=192.0.2.2",
        "SOA-EDIT=INCEPTION-INCREMENT",
    ]
    document = json.loads(cmd(coprocess, "metadata example.com --json")[0])
    assert document["result"] == {
        "ALSO-NOTIFY": ["192.0.2.1", "192.0.2.2"],
        "SOA-EDIT": ["INCEPTION-INCREMENT"],
    }


def test_metadata_failures(coprocess):
    assert one_line(coprocess, "metadata example.org SOA-EDIT", "not found: ")
    assert "metadata raised on purpose" in one_line(coprocess, "metadata example.com RAISE")
    assert 'has key "a"; values must be in an array' in one_line(
        coprocess, "metadata example.com NOT-AN-ARRAY"
    )


# -- keys -----------------------------------------------------------------------------------------

#: The key tags pdnsutil show-zone gives for hooks.lua's keys under launch=lua2 (checked against
#: the real pdns in test_pdnsutil.py).
KEY_LINES = [
    "id=1 flags=257 active=yes published=yes algorithm=13 tag=57056 sha256=f5aded46ffa1eb69",
    "id=2 flags=256 active=yes published=yes algorithm=15 tag=52797 sha256=340d71f76aabe099",
    "id=3 flags=256 active=yes published=yes algorithm=8 tag=41403 sha256=fc04e98021c1c95a",
    "id=4 flags=256 active=no published=yes algorithm=14 tag=38503 sha256=3542c5ac2ec4b2aa",
    "id=5 flags=256 active=yes published=yes algorithm=16 tag=64346 sha256=24bdfe85efa5e3d5",
]


def test_keys_without_private_material(coprocess):
    lines = cmd(coprocess, "keys example.com")
    assert lines == KEY_LINES
    assert not any("PrivateKey" in line for line in lines)
    document = json.loads(cmd(coprocess, "keys example.com --json")[0])
    assert [key["tag"] for key in document["result"]] == [57056, 52797, 41403, 38503, 64346]
    assert all("content" not in key for key in document["result"])


def test_keys_private_only_when_asked(coprocess):
    lines = cmd(coprocess, "keys example.com --private")
    assert lines[0] == KEY_LINES[0]
    assert lines[1:4] == [
        "  Private-key-format: v1.2",
        "  Algorithm: 13 (ECDSAP256SHA256)",
        "  PrivateKey: 3O2OLnC+Y6mVhlkhLW1mZnknDJWuzUHLWF952m3saI4=",
    ]
    document = json.loads(cmd(coprocess, "keys example.com --json --private")[0])
    assert document["result"][0]["content"].startswith("Private-key-format: v1.2\n")


def test_keys_failures(coprocess):
    assert one_line(coprocess, "keys example.org", "not found: ")
    assert "keys raised on purpose" in one_line(coprocess, "keys raise.example")


def test_key_tag_rfc_vectors():
    """RFC 6605 section 6.1 (P-256, tag 55648) and RFC 8080 section 6.1 (Ed25519, tag 3613)."""
    p256 = (
        "Private-key-format: v1.2\nAlgorithm: 13 (ECDSAP256SHA256)\n"
        "PrivateKey: GU6SnQ/Ou+xC5RumuIUIuJZteXT2z0O/ok1s38Et6mQ=\n"
    )
    ed25519 = (
        "Private-key-format: v1.2\nAlgorithm: 15 (ED25519)\n"
        "PrivateKey: ODIyNjAzODQ2MjgwODAxMjI2NDUxOTAyMDQxNDIyNjI=\n"
    )
    assert key_fingerprint(257, p256) == (13, 55648)
    assert key_fingerprint(257, ed25519) == (15, 3613)
    assert key_fingerprint(257, "garbage") == (None, None)


@pytest.mark.parametrize(
    ("algorithm", "private", "public"),
    [
        (
            15,
            "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        ),
        (
            16,
            "6c82a562cb808d10d632be89c8513ebf6c929f34ddfa8c9f63c9960ef6e348a3"
            "528c8a3fcc2f044e39a3fc5b94492f8f032e7549a20098f95b",
            "5fd7449b59b461fd2ce787ec616ad46a1da1342485a70e1f8a0ea75d80e96778"
            "edf124769b46c7061bd6783df1e50f6cd1fa1abeafe8256180",
        ),
    ],
    ids=["ed25519", "ed448"],
)
def test_eddsa_key_tags_rfc_8032(algorithm, private, public):
    """RFC 8032 section 7.1 TEST 1 and section 7.4 "Blank" key pairs: the tag of the private
    key is the tag of the DNSKEY holding the RFC's public key."""
    seed = base64.b64encode(bytes.fromhex(private)).decode()
    content = f"Private-key-format: v1.2\nAlgorithm: {algorithm}\nPrivateKey: {seed}\n"
    dnskey = dns.rdtypes.ANY.DNSKEY.DNSKEY(1, 48, 257, 3, algorithm, bytes.fromhex(public))
    assert key_fingerprint(257, content) == (algorithm, dns.dnssec.key_id(dnskey))


# -- NSEC names -----------------------------------------------------------------------------------


def test_nsec(coprocess):
    assert cmd(coprocess, "nsec 7 www.example.com") == [
        "unhashed=www.example.com. before=txt.example.com. after=example.com."
    ]
    document = json.loads(cmd(coprocess, "nsec 7 example.com --json")[0])
    assert document["result"] == {
        "unhashed": "example.com.",
        "before": "www.example.com.",
        "after": "bad.example.com.",
    }


def test_nsec_three_key_contract(coprocess):
    assert "has 4 entries, expected exactly unhashed, before and after" in one_line(
        coprocess, "nsec 7 four.example.com"
    )
    assert "has 2 entries" in one_line(coprocess, "nsec 7 two.example.com")
    assert 'unexpected key "later"' in one_line(coprocess, "nsec 7 wrongkey.example.com")
    assert one_line(coprocess, "nsec 8 www.example.com", "not found: ")


def test_nsec_typed_arguments(coprocess):
    assert one_line(coprocess, "nsec seven www.example.com") == ("error: nsec: ID 'seven' is not an integer")
    assert one_line(coprocess, "nsec 7") == ("error: nsec: missing NAME (usage: nsec ID NAME [--json])")
    assert one_line(coprocess, "nsec 99999999999 x") == (
        "error: nsec: ID 99999999999 is out of range -2147483648..2147483647"
    )
    assert "invalid name" in one_line(coprocess, "nsec 7 a..b")


# -- notify ---------------------------------------------------------------------------------------


def test_set_notified(coprocess):
    assert cmd(coprocess, "set-notified 7 2024010102") == ["ok: dns_set_notified(7, 2024010102) called"]
    assert cmd(coprocess, "notified_serial 7") == ["2024010102"]
    assert "set_notified raised on purpose" in one_line(coprocess, "set-notified 666 1")
    assert "out of range 0..4294967295" in one_line(coprocess, "set-notified 7 -1")
    assert "unexpected argument '3'" in one_line(coprocess, "set-notified 7 1 3")


# -- lua2pipe's own commands ----------------------------------------------------------------------


def test_help_lists_commands_and_script_functions(coprocess):
    lines = cmd(coprocess, "help")
    for name in (
        "help",
        "version",
        "stats",
        "reload",
        "domaininfo",
        "domains",
        "metadata",
        "keys",
        "nsec",
        "set-notified",
    ):
        assert any(line.startswith(name) for line in lines), name
    functions = lines[-1]
    assert functions.startswith("script functions: ")
    assert "echo" in functions.split() and "run_shell" not in functions.split()
    assert any("the script's version() comes first" in line for line in lines)


def test_script_function_shadows_builtin_and_lua2pipe_prefix_reaches_it(coprocess):
    assert cmd(coprocess, "version") == ["hooks.lua 1"]
    (line,) = cmd(coprocess, "lua2pipe version")
    assert line.startswith(f"lua2pipe {lua2pipe.VERSION} ") and line.endswith("hooks.lua")


def test_stats(coprocess):
    coprocess.questions, coprocess.failures = 10, 1
    coprocess.latencies.extend([0.001 * n for n in range(1, 101)])  # 1..100 ms
    _, text = coprocess.commands.execute(b"lua2pipe stats")  # not through answer(): no question
    stats = dict(line.split("=", 1) for line in text.split("\n"))
    assert stats["questions"] == "10" and stats["failures"] == "1"
    assert stats["latency_samples"] == "100"
    assert (
        stats["latency_p50_ms"],
        stats["latency_p90_ms"],
        stats["latency_p99_ms"],
        stats["latency_max_ms"],
    ) == ("50.0", "90.0", "99.0", "100.0")
    assert float(stats["lua_memory_kb"]) > 0
    assert float(stats["uptime_seconds"]) >= 0
    document = json.loads(cmd(coprocess, "lua2pipe stats --json")[0])
    assert document["result"]["latency_p99_ms"] == 99.0
    tab_separated = json.loads(cmd(coprocess, "lua2pipe stats\t--json")[0])  # a tab separates too
    assert tab_separated["result"]["latency_p99_ms"] == 99.0


def test_stats_without_samples(coprocess):
    stats = dict(line.split("=", 1) for line in cmd(coprocess, "stats"))
    assert stats["latency_samples"] == "0" and stats["latency_p50_ms"] == "-"


def test_percentile():
    assert lua2pipe.percentile([1.0], 0.99) == 1.0
    assert lua2pipe.percentile([1.0, 2.0, 3.0, 4.0], 0.5) == 2.0
    assert lua2pipe.percentile([1.0, 2.0, 3.0, 4.0], 1.0) == 4.0


def test_reload_swaps_only_a_script_that_loads(tmp_path):
    script = tmp_path / "reload.lua"
    lookup = "function dns_lookup() return {{name='a.example', type='A', content='192.0.2.%d'}} end\n"
    question = b"Q\ta.example\tIN\tA\t1\t0.0.0.0\t0.0.0.0\t0.0.0.0/0"
    script.write_text(
        lookup % 1 + "function which() return 'first' end\n"
        "function dns_deinit() io.stderr:write('deinit first\\n') end\n"
    )
    coprocess = make_coprocess(script)
    assert cmd(coprocess, "which") == ["first"]
    assert coprocess.answer(question).endswith(b"\t192.0.2.1\nEND\n")
    script.write_text(lookup % 2 + "function which() return 'second' end\n")
    line, peers = cmd(coprocess, "reload")
    assert line.startswith(f"reloaded {script} in ") and line.endswith("hooks: dns_lookup")
    assert peers == "other coprocesses: not reachable without --metrics-dir (send them SIGHUP)"
    assert cmd(coprocess, "which") == ["second"]
    assert coprocess.answer(question).endswith(b"\t192.0.2.2\nEND\n")  # questions too
    script.write_text("function dns_lookup( return {} end\n")  # a syntax error
    line = one_line(coprocess, "reload")
    assert line.startswith("error: reload failed, still serving the previous script: ")
    assert "reload.lua:1:" in line
    assert cmd(coprocess, "which") == ["second"]
    assert coprocess.answer(question).endswith(b"\t192.0.2.2\nEND\n")
    stats = dict(line.split("=", 1) for line in cmd(coprocess, "stats"))
    assert stats["reloads"] == "1"


def test_reload_keeps_the_negotiated_abi(tmp_path):
    script = tmp_path / "abi.lua"
    script.write_text(
        "function dns_lookup()\n  return {{name='a.example', type='A', content='192.0.2.1'}}\nend\n"
    )
    coprocess = make_coprocess(script, abi=2)  # CMD needs ABI 5: call the command directly
    assert coprocess.commands.execute(b"reload")[1].startswith("reloaded")
    answer = coprocess.answer(b"Q\ta.example\tIN\tA\t1\t192.0.2.9\t192.0.2.53").decode()
    assert answer == "DATA\ta.example.\tIN\tA\t0\t-1\t192.0.2.1\nEND\n"


# -- native lua2's backend-cmd: functions the script defined ---------------------------------------


def test_script_function_gets_the_rest_of_the_line(coprocess):
    assert cmd(coprocess, "echo hi  there") == ["echo:hi  there"]
    assert cmd(coprocess, "echo\ttab") == ["echo:tab"]
    assert cmd(coprocess, "echo") == ["echo:"]
    assert cmd(coprocess, "answer") == ["42"]


def test_script_function_result_cannot_end_the_answer_early(coprocess):
    assert cmd(coprocess, "lines") == ["one", " END", "two"]


def test_script_function_failures_are_one_line(coprocess):
    assert "script function raised on purpose" in one_line(coprocess, "raise")
    assert one_line(coprocess, "nothing") == "error: nothing returned nil, expected a string"


@pytest.mark.parametrize(
    "command",
    [
        "dofile /etc/passwd",
        "load return",
        "loadstring return",
        "require os",
        "os.execute id",
        "debug.getinfo 1",
        "debug.sethook",
        "io.open /etc/passwd",
        "pcall x",
        "print x",
        "rawset x",
        "setfenv x",
        "collectgarbage count",
        "newDN x",
        "pdnslog x",
        "run_shell id",  # run_shell = os.execute in the script: an alias of a built-in
        "read_file /etc/passwd",  # read_file = dofile
        "no_such_function x",
    ],
)
def test_lua_builtins_are_not_callable(coprocess, command):
    word = command.split()[0]
    assert one_line(coprocess, command) == (
        f"error: unknown command '{word}': neither a lua2pipe command nor a function the script "
        "defined (try help)"
    )


def test_unknown_empty_and_malformed_commands(coprocess):
    assert one_line(coprocess, "").startswith("error: empty command")
    assert one_line(coprocess, "lua2pipe nosuch").startswith("error: lua2pipe 'nosuch' is not")
    assert one_line(coprocess, "domaininfo").startswith("error: domaininfo: missing ZONE")
    assert one_line(coprocess, "domaininfo a b").startswith("error: domaininfo: unexpected argument")
    assert one_line(coprocess, "keys example.com --bogus").startswith("error: keys: unknown option --bogus")
    assert coprocess.commands.run(b"domaininfo \xff") == b"error: command is not valid UTF-8\nEND\n"


def test_non_utf8_cmd_still_ends_in_end(coprocess):
    assert coprocess.answer(b"CMD\tdomaininfo \xff").endswith(b"\nEND\n")


def test_cmd_needs_abi_5():
    coprocess = make_coprocess(HOOKS, abi=4)
    assert coprocess.answer(b"CMD\thelp") == (
        b"LOG\tmalformed question: unknown question 'CMD' (CMD needs pipe-abi-version=5)\nFAIL\n"
    )


def test_protocol_keeps_its_framing_after_failing_commands(coprocess):
    for text in ("nsec 7 four.example.com", "raise", "dofile x", "domaininfo raise.example"):
        cmd(coprocess, text)
    answer = coprocess.answer(b"Q\twww.example.com\tIN\tA\t7\t192.0.2.9\t192.0.2.53\t192.0.2.9/32")
    assert answer == b"DATA\t0\t1\twww.example.com.\tIN\tA\t300\t7\t192.0.2.80\nEND\n"


def test_script_not_loaded(tmp_path):
    host = OfflineHost(None, load_error="boom")
    commands = lua2pipe.Commands(host)
    assert commands.execute(b"keys example.com") == (2, "error: script not loaded: boom")
    assert commands.execute(b"version")[1] == f"lua2pipe {lua2pipe.VERSION}, script not loaded"
    assert commands.execute(b"reload") == (2, "error: reload: the script's path is unknown")
    # Given the path (lua2pipe SCRIPT passes it on), reload recovers a script that failed.
    good = tmp_path / "good.lua"
    shutil.copy(HOOKS, good)
    commands = lua2pipe.Commands(host, script_path=str(good))
    status, line = commands.execute(b"reload")
    assert status == 0 and line.startswith("reloaded")
    assert commands.execute(b"echo x") == (0, "echo:x")
