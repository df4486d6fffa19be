"""The plain-Python reference: the tightest pdns pipe coprocess (ABI 5) for the benchmark's data.

No Lua: buffered binary reads, split on tab, and a dict of prebuilt answer bytes written by
bench/zonedata.py (``b"<lower-case qname>\\t<QTYPE>"`` or ``b"<zone>\\tAXFR"`` -> answer).
Questions about hosts.test are answered by computing what bench/hosts.lua computes.
One write per answer, as pdns waits for each one.

Usage: python plain.py REFDATA.marshal
"""

import marshal
import os
import sys

HOSTS = 100_000
HOSTS_SUFFIX = b".hosts.test"
HOSTS_APEX = (
    (b"SOA", b"ns1.hosts.test. hostmaster.hosts.test. 2024010101 10800 3600 604800 300"),
    (b"NS", b"ns1.hosts.test."),
    (b"NS", b"ns2.hosts.test."),
)


def hosts_row(name: bytes, qtype: bytes, content: bytes) -> bytes:
    return b"DATA\t0\t1\t%s.\tIN\t%s\t3600\t6\t%s\n" % (name, qtype, content)


def host_number(name: bytes) -> int | None:
    """N of a lower-case b"host<N>.hosts.test" (N below HOSTS, no leading zeros), or None."""
    digits = name[4 : -len(HOSTS_SUFFIX)]
    if not name.startswith(b"host") or not digits.isdigit():
        return None
    number = int(digits)
    if number >= HOSTS or digits != b"%d" % number:
        return None
    return number


def hosts_answer(name: bytes, qtype: bytes) -> bytes:
    """The answer to a question about a lower-case name in hosts.test."""
    rows = []
    if name == HOSTS_SUFFIX[1:]:
        rows = [hosts_row(name, rtype, content) for rtype, content in HOSTS_APEX if qtype in (b"ANY", rtype)]
    elif (number := host_number(name)) is not None:
        if qtype in (b"ANY", b"A"):
            address = b"10.%d.%d.%d" % (number // 65536, number // 256 % 256, number % 256)
            rows.append(hosts_row(name, b"A", address))
        if qtype in (b"ANY", b"AAAA"):
            address = b"2001:db8:6::%x:%x" % (number // 65536, number % 65536)
            rows.append(hosts_row(name, b"AAAA", address))
    return b"".join(rows) + b"END\n"


def serve(table: dict[bytes, bytes]) -> None:
    get = table.get
    write = os.write
    empty = b"END\n"
    for line in sys.stdin.buffer:
        fields = line.split(b"\t")
        tag = fields[0]
        if tag == b"Q":
            name = fields[1].lower()
            if name.endswith(HOSTS_SUFFIX) or name == HOSTS_SUFFIX[1:]:
                write(1, hosts_answer(name, fields[3]))
            else:
                write(1, get(name + b"\t" + fields[3], empty))
        elif tag == b"AXFR":
            answer = memoryview(get(fields[2].rstrip(b"\n").lower() + b"\tAXFR", empty))
            while answer:
                answer = answer[write(1, answer) :]
        elif tag.startswith(b"HELO"):
            write(1, b"OK\tplain Python reference\n")
        else:
            write(1, b"FAIL\n")


if __name__ == "__main__":
    with open(sys.argv[1], "rb") as data:
        serve(marshal.load(data))
