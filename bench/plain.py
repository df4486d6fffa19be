"""The plain-Python reference: the tightest pdns pipe coprocess (ABI 5) for the benchmark's data.

No Lua: buffered binary reads, split on tab, and a dict of prebuilt answer bytes written by
bench/zonedata.py (``b"<lower-case qname>\\t<QTYPE>"`` or ``b"<zone>\\tAXFR"`` -> answer).
One write per answer, as pdns waits for each one.

Usage: python plain.py REFDATA.marshal
"""

import marshal
import os
import sys


def serve(table: dict[bytes, bytes]) -> None:
    get = table.get
    write = os.write
    empty = b"END\n"
    for line in sys.stdin.buffer:
        fields = line.split(b"\t")
        tag = fields[0]
        if tag == b"Q":
            write(1, get(fields[1].lower() + b"\t" + fields[3], empty))
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
