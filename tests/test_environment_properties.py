"""Property tests: lua/environment.lua against dnspython (names) and ipaddress/inet_ntop (addresses).

Presentation texts legitimately differ between pdns and dnspython: pdns escapes only bytes outside
0x21-0x7E (as \\DDD) plus "." and "\\", while dnspython also escapes characters such as '"', '(', ';', '@'
and '$'. So names are compared on their labels and wire form, and the pdns text is checked against an
independent Python rendition of pdns's escaping rule.
"""

from __future__ import annotations

import ipaddress
import socket

import dns.name
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lua_env import LuaEnv

SETTINGS = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

ENV = LuaEnv("luajit21")

# ---------------------------------------------------------------- names

# Mostly DNS-ish bytes, with every other byte (dots, backslashes, controls, high bytes) mixed in.
label_bytes = st.one_of(
    st.sampled_from(b"abcxyzABCXYZ019-_"),
    st.integers(min_value=0, max_value=255),
)
labels_strategy = st.lists(
    st.lists(label_bytes, min_size=1, max_size=12).map(bytes), min_size=0, max_size=6
).filter(lambda labels: sum(len(label) + 1 for label in labels) + 1 <= 255)


def pdns_escape(label: bytes) -> str:
    out = []
    for b in label:
        if b in (0x2E, 0x5C):
            out.append("\\" + chr(b))
        elif 0x21 <= b <= 0x7E:
            out.append(chr(b))
        else:
            out.append(f"\\{b:03d}")
    return "".join(out)


def pdns_text(labels: list[bytes]) -> str:
    return "".join(pdns_escape(label) + "." for label in labels) or "."


def wire(labels: list[bytes]) -> bytes:
    return b"".join(bytes([len(label)]) + label for label in labels) + b"\0"


def lua_name(text: str):
    return ENV.run("local n = newDN(...) return n", text.encode("latin-1"))


def lua_labels(name) -> list[bytes]:
    raw = ENV.run("return (...):getRawLabels()", name)
    return [bytes(raw[i]) for i in range(1, len(raw) + 1)]


def random_case(labels: list[bytes], flips: list[bool]) -> list[bytes]:
    out = []
    for i, label in enumerate(labels):
        out.append(label.swapcase() if flips[i % len(flips)] else label)
    return out


@SETTINGS
@given(labels_strategy)
def test_name_round_trip(labels):
    text = pdns_text(labels)
    oracle = dns.name.from_text(text)  # dnspython reads pdns's escapes
    assert list(oracle.labels) == [*labels, b""]
    name = lua_name(text)
    assert lua_labels(name) == labels
    assert ENV.run("local n = ... return n:toString(), n:countLabels(), n:wireLength()", name) == (
        text,
        len(labels),
        len(oracle.to_wire()),
    )
    # The unescaped fast path (no backslash) gives the same name when it can express it.
    if labels and all(0x21 <= b <= 0x7E and b not in (0x2E, 0x5C) for label in labels for b in label):
        plain = ".".join(label.decode() for label in labels)
        assert ENV.run("return newDN(...):toString()", plain.encode()) == text


@SETTINGS
@given(labels_strategy, st.lists(st.booleans(), min_size=1, max_size=6), st.none() | labels_strategy)
def test_name_equality_is_ascii_case_insensitive(labels, flips, unrelated):
    # the same name in another case, or (mostly) another name
    other = random_case(labels, flips) if unrelated is None else unrelated
    a, b = lua_name(pdns_text(labels)), lua_name(pdns_text(other))
    expected = dns.name.Name([*labels, b""]) == dns.name.Name([*other, b""])
    assert ENV.run("local a, b = ... return a == b, a:equal(b:toString())", a, b) == (expected, expected)


def lower(data: bytes) -> bytes:
    return bytes(b + 32 if 65 <= b <= 90 else b for b in data)


@SETTINGS
@given(labels_strategy, labels_strategy, st.booleans())
def test_name_orders(left, right, share_suffix):
    if share_suffix:  # make isPartOf/makeRelative interesting
        right = right[:2] + left[len(left) // 2 :]
        if sum(len(label) + 1 for label in right) + 1 > 255:
            right = left[len(left) // 2 :]
    a_dn, b_dn = dns.name.Name([*left, b""]), dns.name.Name([*right, b""])
    a, b = lua_name(pdns_text(left)), lua_name(pdns_text(right))
    canon, fast, part = ENV.run("local a, b = ... return a:canonCompare(b), a:__lt(b), a:isPartOf(b)", a, b)
    assert canon == (a_dn < b_dn)  # dnspython orders names canonically (RFC 4034 6.1)
    assert fast == (lower(wire(left))[::-1] < lower(wire(right))[::-1])
    assert part == a_dn.is_subdomain(b_dn)
    relative = ENV.run("local a, b = ... return a:makeRelative(b)", a, b)
    if part:
        assert lua_labels(relative) == list(a_dn.relativize(b_dn).labels)
    else:
        assert ENV.run("local r = ... return r:wireLength(), r:countLabels()", relative) == (0, 0)


@SETTINGS
@given(labels_strategy)
def test_chop_off_walks_to_the_root(labels):
    name = lua_name(pdns_text(labels))
    for i in range(len(labels)):
        assert ENV.run("return (...):chopOff()", name) is True
        assert lua_labels(name) == labels[i + 1 :]
    assert ENV.run("return (...):chopOff()", name) is False


# ---------------------------------------------------------------- addresses

ipv4 = st.integers(min_value=0, max_value=2**32 - 1).map(ipaddress.IPv4Address)
# IPv6 with long zero runs and the ::ffff: / :: embedded-IPv4 shapes that inet_ntop prints specially.
ipv6 = st.one_of(
    st.binary(min_size=16, max_size=16),
    st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0xDB8, 0x2001]), min_size=8, max_size=8).map(
        lambda words: b"".join(w.to_bytes(2, "big") for w in words)
    ),
    st.binary(min_size=4, max_size=4).map(lambda v4: b"\0" * 10 + b"\xff\xff" + v4),
    st.binary(min_size=4, max_size=4).map(lambda v4: b"\0" * 12 + v4),
).map(ipaddress.IPv6Address)
address = st.one_of(ipv4, ipv6)


def ntop(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    return socket.inet_ntop(family, addr.packed)  # glibc's formatting, which pdns prints


@SETTINGS
@given(address, st.integers(min_value=0, max_value=65535), st.booleans())
def test_combo_address_formats_like_inet_ntop(addr, port, exploded):
    text = addr.exploded if exploded else str(addr)
    with_port = f"{text}:{port}" if addr.version == 4 else f"[{text}]:{port}"
    got = ENV.run(
        "local c = newCA(...) return c:toString(), c:toStringWithPort(), c:getPort(), c:getRaw()",
        with_port.encode(),
    )
    shown = ntop(addr)
    expected_port = f"{shown}:{port}" if addr.version == 4 else f"[{shown}]:{port}"
    assert got == (shown, expected_port, port, addr.packed.decode("latin-1"))


@SETTINGS
@given(address, st.integers(min_value=0, max_value=140))
def test_truncate_matches_ipaddress(addr, bits):
    got = ENV.run(
        "local text, bits = ... local c = newCA(text) c:truncate(bits) return c:toString()",
        str(addr).encode(),
        bits,
    )
    if bits >= addr.max_prefixlen:
        expected = addr
    else:
        expected = ipaddress.ip_network((addr, bits), strict=False).network_address
    assert got == ntop(expected)


@SETTINGS
@given(address, st.integers(min_value=0, max_value=128), address)
def test_netmask_matches_ipaddress(addr, bits, probe):
    bits = min(bits, addr.max_prefixlen)
    network = ipaddress.ip_network((addr, bits), strict=False)
    got = ENV.run(
        "local text, probe = ... local nm = newNetmask(text)\n"
        "return nm:toString(), nm:getBits(), nm:match(probe)",
        f"{addr}/{bits}".encode(),
        str(probe).encode(),
    )
    assert got == (f"{ntop(network.network_address)}/{bits}", bits, probe in network)


masks = st.lists(
    st.tuples(ipv4, st.integers(min_value=0, max_value=32), st.booleans()), min_size=1, max_size=8
)


@SETTINGS
@given(masks, ipv4)
def test_netmask_group_longest_prefix_wins(entries, probe):
    texts, decided = [], {}
    for addr, bits, positive in entries:
        network = ipaddress.ip_network((addr, bits), strict=False)
        texts.append(("" if positive else "!") + f"{addr}/{bits}")
        decided[network] = positive  # re-adding a mask replaces its sign
    matching = [net for net in decided if probe in net]
    expected = decided[max(matching, key=lambda net: net.prefixlen)] if matching else False
    table = ENV.lua.table_from([t.encode() for t in texts])
    assert (
        ENV.run(
            "local masks, probe = ... return newNMG(masks):match(newCA(probe))", table, str(probe).encode()
        )
        is expected
    )
