"""End to end: the real pdns_server serving examples/geo.lua, asked with dnspython.

Each test is one question and the answer pdns must give, in the style of PowerDNS's
regression-tests.auth-py. The whole class runs once per way of hosting the script:

  native   launch=lua2, the script inside pdns: the reference behaviour.
  pipe     launch=pipe with lua2pipe (ABI 5): must give the same answers. Marked ``lua2pipe``:
           skipped until lua2pipe.py and lua/*.lua exist (failed instead under CI=true).

Clients use source addresses from 127.0.0.0/8 only: on Linux every 127.x.y.z is on the loopback
interface, so 127.0.1.1 is a "different client" with no network configuration.
"""

from __future__ import annotations

from collections.abc import Iterator

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import pytest
from helpers import FailureWatch
from pdns import REPO, PdnsServer

SCRIPT = REPO / "examples" / "geo.lua"

KINDS = [
    pytest.param("native", marks=pytest.mark.pdns("lua2"), id="native"),
    pytest.param("pipe", marks=[pytest.mark.pdns("pipe"), pytest.mark.lua2pipe], id="pipe"),
]

SOA_CONTENT = "ns1.example.org. hostmaster.example.org. 2024010101 10800 3600 604800 300"
SOA = f"example.org. 3600 IN SOA {SOA_CONTENT}"
# The SOA in negative answers: pdns uses min(SOA TTL, SOA minimum) = 300 as its TTL.
NEGATIVE_SOA = f"example.org. 300 IN SOA {SOA_CONTENT}"


def make_server(kind: str) -> PdnsServer:
    if kind == "native":
        return PdnsServer.native(SCRIPT)
    return PdnsServer.pipe(SCRIPT, abi=5)


@pytest.fixture(scope="class", params=KINDS)
def server(request: pytest.FixtureRequest) -> Iterator[PdnsServer]:
    """One server per class and kind: starting pdns takes ~0.1 s, each question ~1 ms."""
    watch = FailureWatch(request)
    server = make_server(request.param)
    with server:
        yield server
        if watch.failed:
            print(f"{server!r}\n{server.log_tail(60)}")


def lines(section: list) -> list[str]:
    """RRsets as sorted zone-file lines, names lower-cased (pdns echoes the question's case)."""
    out = []
    for rrset in section:
        for line in rrset.to_text().splitlines():
            name, rest = line.split(" ", 1)
            out.append(f"{name.lower()} {rest}")
    return sorted(out)


def assert_answer(
    response: dns.message.Message,
    rcode: int,
    answer: list[str],
    authority: list[str] = (),
    additional: list[str] = (),
    aa: bool = True,
) -> None:
    assert dns.rcode.to_text(response.rcode()) == dns.rcode.to_text(rcode), response
    assert lines(response.answer) == sorted(answer), response
    assert lines(response.authority) == sorted(authority), response
    assert lines(response.additional) == sorted(additional), response
    assert bool(response.flags & dns.flags.AA) == aa, response


NOERROR, NXDOMAIN, REFUSED = dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.REFUSED


class TestGeoExample:
    # -- the dynamic record: www.example.org A depends on the client ---------------------------

    @pytest.mark.parametrize(
        ("source", "address"),
        [
            ("127.0.0.1", "192.0.2.10"),  # 127.0.0.0/24: pool "lab"
            ("127.0.0.99", "192.0.2.10"),
            ("127.0.1.1", "192.0.2.20"),  # 127.0.1.0/24: pool "europe"
            ("127.0.2.1", "192.0.2.30"),  # no pool: the default
        ],
    )
    def test_www_by_client_address(self, server: PdnsServer, source: str, address: str) -> None:
        response = server.query("www.example.org", "A", source=source)
        assert_answer(response, NOERROR, [f"www.example.org. 60 IN A {address}"])

    @pytest.mark.parametrize(
        ("subnet", "address"),
        [
            ("198.51.100.0/24", "192.0.2.20"),  # europe
            ("10.1.2.0/24", "192.0.2.10"),  # lab
            ("203.0.113.0/24", "192.0.2.30"),  # default
        ],
    )
    def test_www_by_client_subnet(self, server: PdnsServer, subnet: str, address: str) -> None:
        # ECS from a resolver: the subnet, not the resolver's 127.0.0.1, decides; the answer's
        # ECS option carries the script's scopeMask (24).
        response = server.query("www.example.org", "A", ecs=subnet)
        assert_answer(response, NOERROR, [f"www.example.org. 60 IN A {address}"])
        ecs = [o for o in response.options if isinstance(o, dns.edns.ECSOption)]
        assert len(ecs) == 1
        assert ecs[0].scopelen == 24

    def test_www_over_tcp(self, server: PdnsServer) -> None:
        response = server.query("www.example.org", "A", tcp=True, source="127.0.1.1")
        assert_answer(response, NOERROR, ["www.example.org. 60 IN A 192.0.2.20"])

    def test_www_aaaa_is_static(self, server: PdnsServer) -> None:
        response = server.query("www.example.org", "AAAA", source="127.0.1.1")
        assert_answer(response, NOERROR, ["www.example.org. 3600 IN AAAA 2001:db8::80"])

    def test_cname_is_followed_with_the_client_address(self, server: PdnsServer) -> None:
        response = server.query("ftp.example.org", "A", source="127.0.1.1")
        assert_answer(
            response,
            NOERROR,
            ["ftp.example.org. 3600 IN CNAME www.example.org.", "www.example.org. 60 IN A 192.0.2.20"],
        )

    def test_names_are_case_insensitive(self, server: PdnsServer) -> None:
        response = server.query("WwW.ExAmPlE.oRg", "A", source="127.0.0.1")
        assert_answer(response, NOERROR, ["www.example.org. 60 IN A 192.0.2.10"])

    # -- static data ---------------------------------------------------------------------------

    def test_soa(self, server: PdnsServer) -> None:
        response = server.query("example.org", "SOA")
        assert_answer(response, NOERROR, [SOA])

    def test_ns_with_addresses(self, server: PdnsServer) -> None:
        response = server.query("example.org", "NS")
        assert_answer(
            response,
            NOERROR,
            ["example.org. 3600 IN NS ns1.example.org.", "example.org. 3600 IN NS ns2.example.org."],
            additional=[
                "ns1.example.org. 3600 IN A 192.0.2.1",
                "ns1.example.org. 3600 IN AAAA 2001:db8::1",
                "ns2.example.org. 3600 IN A 192.0.2.2",
                "ns2.example.org. 3600 IN AAAA 2001:db8::2",
            ],
        )

    def test_mx_with_addresses(self, server: PdnsServer) -> None:
        response = server.query("example.org", "MX")
        assert_answer(
            response,
            NOERROR,
            ["example.org. 3600 IN MX 10 mail.example.org.", "example.org. 3600 IN MX 20 mail2.example.org."],
            additional=["mail.example.org. 3600 IN A 192.0.2.25", "mail2.example.org. 3600 IN A 192.0.2.26"],
        )

    def test_srv_with_address(self, server: PdnsServer) -> None:
        response = server.query("_sip._tcp.example.org", "SRV")
        assert_answer(
            response,
            NOERROR,
            ["_sip._tcp.example.org. 3600 IN SRV 10 60 5060 sip.example.org."],
            additional=["sip.example.org. 3600 IN A 192.0.2.60"],
        )

    def test_txt(self, server: PdnsServer) -> None:
        response = server.query("example.org", "TXT")
        assert_answer(response, NOERROR, ['example.org. 3600 IN TXT "v=spf1 mx -all"'])

    @pytest.mark.parametrize(
        ("rdtype", "answer"),
        [
            ("A", "foo.apps.example.org. 3600 IN A 192.0.2.50"),
            ("TXT", 'foo.apps.example.org. 3600 IN TXT "served by the wildcard"'),
        ],
    )
    def test_wildcard(self, server: PdnsServer, rdtype: str, answer: str) -> None:
        response = server.query("foo.apps.example.org", rdtype)
        assert_answer(response, NOERROR, [answer])

    # -- negative answers ----------------------------------------------------------------------

    def test_nxdomain(self, server: PdnsServer) -> None:
        response = server.query("nosuch.example.org", "A")
        assert_answer(response, NXDOMAIN, [], authority=[NEGATIVE_SOA])

    def test_nodata(self, server: PdnsServer) -> None:
        response = server.query("www.example.org", "MX")
        assert_answer(response, NOERROR, [], authority=[NEGATIVE_SOA])

    def test_name_outside_the_zone_is_refused(self, server: PdnsServer) -> None:
        response = server.query("www.example.com", "A")
        assert_answer(response, REFUSED, [], aa=False)

    # -- delegation ----------------------------------------------------------------------------

    @pytest.mark.parametrize("qname", ["host.sub.example.org", "sub.example.org"])
    def test_referral_with_glue(self, server: PdnsServer, qname: str) -> None:
        response = server.query(qname, "A")
        assert_answer(
            response,
            NOERROR,
            [],
            authority=[
                "sub.example.org. 3600 IN NS ns1.sub.example.org.",
                "sub.example.org. 3600 IN NS ns2.sub.example.org.",
            ],
            additional=[
                "ns1.sub.example.org. 3600 IN A 192.0.2.53",
                "ns2.sub.example.org. 3600 IN AAAA 2001:db8::53",
            ],
            aa=False,
        )

    # -- AXFR ----------------------------------------------------------------------------------

    def test_axfr(self, server: PdnsServer) -> None:
        rrsets = server.axfr("example.org")
        assert lines(rrsets[:1]) == [SOA]
        assert lines(rrsets[-1:]) == [SOA]
        assert lines(rrsets[1:-1]) == sorted(
            [
                "example.org. 3600 IN NS ns1.example.org.",
                "example.org. 3600 IN NS ns2.example.org.",
                "example.org. 3600 IN MX 10 mail.example.org.",
                "example.org. 3600 IN MX 20 mail2.example.org.",
                'example.org. 3600 IN TXT "v=spf1 mx -all"',
                "ns1.example.org. 3600 IN A 192.0.2.1",
                "ns1.example.org. 3600 IN AAAA 2001:db8::1",
                "ns2.example.org. 3600 IN A 192.0.2.2",
                "ns2.example.org. 3600 IN AAAA 2001:db8::2",
                "www.example.org. 3600 IN AAAA 2001:db8::80",
                "www.example.org. 60 IN A 192.0.2.30",  # listed as for a client with no address
                "mail.example.org. 3600 IN A 192.0.2.25",
                "mail2.example.org. 3600 IN A 192.0.2.26",
                "sip.example.org. 3600 IN A 192.0.2.60",
                "_sip._tcp.example.org. 3600 IN SRV 10 60 5060 sip.example.org.",
                "ftp.example.org. 3600 IN CNAME www.example.org.",
                "*.apps.example.org. 3600 IN A 192.0.2.50",
                '*.apps.example.org. 3600 IN TXT "served by the wildcard"',
                "sub.example.org. 3600 IN NS ns1.sub.example.org.",
                "sub.example.org. 3600 IN NS ns2.sub.example.org.",
                "ns1.sub.example.org. 3600 IN A 192.0.2.53",
                "ns2.sub.example.org. 3600 IN AAAA 2001:db8::53",
            ]
        )

    # -- around the answers --------------------------------------------------------------------

    def test_backend_command(self, server: PdnsServer) -> None:
        # pdnsutil builds fresh backend instances of its own: the counters start at zero.
        backend = server.settings["launch"]
        result = server.pdnsutil("backend-cmd", backend, "stats")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == ["lookups=0", "lists=0", "lab=0", "europe=0", "default=0"]
        result = server.pdnsutil("backend-cmd", backend, "stats lookups")
        assert result.stdout.splitlines() == ["lookups=0"]

    def test_script_logs_through_pdnslog(self, server: PdnsServer) -> None:
        assert server.wait_for_log("geo.lua: loaded 22 records for example.org."), server.log_tail()
