"""Remote mode through the real pdns_server: launch=remote with lua2pipe against native
launch=lua2 running the same script, examples/signed.lua (DNSSEC live signing with NSEC, NSEC3
and NSEC3 narrow, empty non-terminals, a wildcard, a delegation with DS), with the zone cache on
at pdns's default interval. Native is the oracle: every answer must match it.

pdns orders the RRsets of a section differently from one answer to the next (an RRSIG before or
after the RRset it covers, with one server and one backend alike), so sections are compared as
sets of RRsets; everything in them (RRSIGs, NSEC and NSEC3 records, TTLs) must be equal.
"""

from __future__ import annotations

import shutil
import subprocess

import dns.message
import dns.query
import dns.rcode
import dns.rdata
import dns.rdatatype
import pytest
from pdns import REPO, PdnsServer, pdns_available

SCRIPT = REPO / "examples" / "signed.lua"

pytestmark = pytest.mark.skipif(
    not pdns_available("remote", "lua2"),
    reason="pdns_server with the remote and lua2 backends is not installed",
)

#: The zone cache on at pdns's default interval (BASE_SETTINGS turns it off for the pipe).
ZONE_CACHE = {"zone-cache-refresh-interval": None}

ZONES = ["nsec.example.", "nsec3.example.", "narrow.example."]

#: (relative name, type): positive answers, NXDOMAIN, NODATA, ENTs, the wildcard, the delegation.
QUESTIONS = [
    ("", "SOA"),
    ("", "DNSKEY"),
    ("", "NSEC3PARAM"),
    ("", "NS"),
    ("www", "A"),
    ("www", "ANY"),
    ("www", "MX"),
    ("mail", "A"),
    ("nope", "A"),
    ("zzz", "TXT"),
    ("ent", "A"),
    ("b.ent", "TXT"),
    ("a.b.ent", "A"),
    ("x.a.b.ent", "A"),
    ("wild", "TXT"),
    ("x.wild", "TXT"),
    ("x.wild", "A"),
    ("y.x.wild", "TXT"),
    ("sub", "DS"),
    ("sub", "NS"),
    ("x.sub", "A"),
    ("ns.sub", "A"),
]


def canonical(message: dns.message.Message) -> tuple:
    """What must be equal: rcode, flags, and each section as a set of RRsets."""

    def section(rrsets: list) -> list[str]:
        return sorted(sorted(rrset.to_text().splitlines()).__repr__() for rrset in rrsets)

    return (
        dns.rcode.to_text(message.rcode()),
        message.flags,
        section(message.answer),
        section(message.authority),
        section(message.additional),
    )


@pytest.fixture(scope="module")
def servers():
    with (
        PdnsServer.native(SCRIPT, ZONE_CACHE) as native,
        PdnsServer.remote(SCRIPT, ZONE_CACHE) as remote,
    ):
        yield native, remote


def ask(server: PdnsServer, name: str, rdtype: str, tcp: bool = False) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, want_dnssec=True)
    query.flags = 0
    send = dns.query.tcp if tcp else dns.query.udp
    return send(query, server.address, port=server.port, timeout=3.0)


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(("relative", "rdtype"), QUESTIONS)
def test_signed_answers_match_native(servers, zone, relative, rdtype):
    native, remote = servers
    name = f"{relative}.{zone}" if relative else zone
    expected, got = ask(native, name, rdtype), ask(remote, name, rdtype)
    assert canonical(got) == canonical(expected), f"native:\n{expected}\n\nremote:\n{got}"


@pytest.mark.parametrize("zone", ZONES)
def test_answers_are_signed_and_ents_are_nodata(servers, zone):
    _, remote = servers
    www = ask(remote, f"www.{zone}", "A")
    assert {rrset.rdtype for rrset in www.answer} == {dns.rdatatype.A, dns.rdatatype.RRSIG}
    for ent in ("ent", "b.ent", "wild"):
        answer = ask(remote, f"{ent}.{zone}", "A")
        assert answer.rcode() == dns.rcode.NOERROR and not answer.answer, answer
        denial = {rrset.rdtype for rrset in answer.authority}
        assert denial & {dns.rdatatype.NSEC, dns.rdatatype.NSEC3}, answer


@pytest.mark.parametrize("zone", ["nsec.example.", "nsec3.example."])
def test_signed_axfr_matches_native(servers, zone):
    # pdns builds and signs the NSEC or NSEC3 chain from dns_list's rows (narrow zones are
    # never transferred)
    native, remote = servers
    expected = sorted(rrset.to_text() for rrset in native.axfr(zone))
    got = sorted(rrset.to_text() for rrset in remote.axfr(zone))
    assert got == expected
    assert any(" NSEC" in text for text in got) and any(" RRSIG " in text for text in got)


def test_remote_log_is_clean(servers):
    _, remote = servers
    log = remote.log_text()
    for trouble in ("Exception", "Traceback", "Timeout", "SERVFAIL", "No 'result'", "died"):
        assert trouble not in log, remote.log_tail()


@pytest.mark.skipif(not shutil.which("delv"), reason="delv (bind9-dnsutils) is not installed")
@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize(
    ("relative", "rdtype"), [("www", "A"), ("nope", "A"), ("ent", "A"), ("x.wild", "TXT")]
)
def test_delv_validates_remote_answers(servers, tmp_path, zone, relative, rdtype):
    _, remote = servers
    dnskey = next(r for r in ask(remote, zone, "DNSKEY").answer if r.rdtype == dns.rdatatype.DNSKEY)
    key = next(iter(dnskey))
    anchors = tmp_path / "anchors.conf"
    anchors.write_text(
        f'trust-anchors {{ "{zone}" static-key {key.flags} {key.protocol} {key.algorithm} '
        f'"{dns.rdata._base64ify(key.key, 0)}"; }};\n'
    )
    name = f"{relative}.{zone}"
    result = subprocess.run(
        [
            "delv",
            f"@{remote.address}",
            "-p",
            str(remote.port),
            "-a",
            str(anchors),
            f"+root={zone}",
            name,
            rdtype,
        ],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert "; fully validated" in result.stdout or "; negative response, fully validated" in result.stdout, (
        result.stdout + result.stderr
    )


@pytest.mark.parametrize(
    "args",
    [
        ("list-all-zones",),
        ("show-zone", "nsec3.example"),
        ("show-zone", "narrow.example"),
        ("list-keys", "nsec.example"),
        ("check-zone", "nsec.example"),
        ("export-zone-ds", "nsec.example"),
        ("list-zone", "nsec3.example"),
    ],
)
def test_pdnsutil_matches_native(servers, args):
    # each pdnsutil run starts its own backend instance: a fresh coprocess through remote. The
    # zone list's order is the iteration order of the script's {[newDN(zone)] = info} table,
    # keyed by object addresses in both implementations: compared sorted.
    native, remote = servers
    expected, got = native.pdnsutil(*args), remote.pdnsutil(*args)
    assert got.returncode == expected.returncode, got.stderr
    if args[0] == "list-all-zones":
        assert sorted(got.stdout.split()) == sorted(expected.stdout.split())
    elif args[0] == "check-zone":
        # pdnsutil 4.7.3's check-zone prints "Parsed and original record content are not
        # equal" for the name-valued contents in some runs and not in others, through native
        # lua2 as through remote (measured: 4 of 6 native runs): only its errors are compared
        def errors(text: str) -> list[str]:
            return [line for line in text.splitlines() if line.startswith("[Error]")]

        assert errors(got.stdout) == errors(expected.stdout) and errors(got.stdout)
    else:
        assert got.stdout == expected.stdout


def test_backend_cmd_reaches_the_same_commands_as_cmd(servers):
    _, remote = servers
    result = remote.pdnsutil("backend-cmd", "remote", "lua2pipe version", "domaininfo nsec.example")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("lua2pipe 0.1.0 LuaJIT 2.1")
    assert "nsec.example. id=1 kind=native serial=2024010101" in result.stdout


DIAG = REPO / "conformance" / "differential" / "scripts" / "diag.lua"

#: diag.lua cases about what the hooks receive: type() and tostring of qname, qtype and ctx, and
#: pairs/next/ipairs/rawget/rawset/rawequal/#/.. on each (remote.lua builds them, not dispatch.lua).
DIAG_CASES = ["argtypes", "args", "rawargs", "ctx", "types", "raw-dn", "raw-qt", "raw-ca", "dr-text"]


def test_hook_arguments_match_native():
    with PdnsServer.native(DIAG) as native, PdnsServer.remote(DIAG) as remote:
        for case in DIAG_CASES:
            name = f"{case}.diag.example"
            expected, got = ask(native, name, "TXT", tcp=True), ask(remote, name, "TXT", tcp=True)
            assert expected.answer, f"{case}: native gave no answer"
            assert got.answer == expected.answer, f"{case}: native {expected.answer}, remote {got.answer}"
