"""The benchmark's records, read from bench/zone.lua, and the reference coprocesses' tables.

bench/zone.lua is the one source of the data: this module runs its ``bench_zones()`` and
``bench_big_zone()`` functions (pure Lua, no pdns environment needed) and renders, from the same
rows, the answers the references serve:

- ``refdata.marshal`` for bench/plain.py: a dict ``b"<lower-case qname>\\t<QTYPE>"`` -> answer bytes
  (``b"<zone>\\tAXFR"`` for a zone's AXFR), answers in pipe ABI 5 form ending in ``END\\n``;
- ``refdata.h`` for bench/ceiling.c: the same pairs as a sorted C array, for bsearch.

Names follow pdns's question form: lower case, no trailing dot (the root would be ``.``).
"""

from __future__ import annotations

import marshal
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ZONE_SCRIPT = BENCH / "zone.lua"
BIG_ZONE_LOOKUPS = 10_000

# Serialise rows in Lua: one tab-separated line per row is much faster than reading 100k Lua
# tables field by field from Python.
_DUMP_LUA = """
local function dump(zone)
  local lines = {}
  for i, r in ipairs(zone.rows) do
    lines[i] = table.concat({ r.name, r.type, r.content, r.ttl, r.domain_id }, "\\t")
  end
  return zone.zone, zone.id, table.concat(lines, "\\n")
end
return dump
"""


@dataclass(frozen=True)
class Record:
    name: str  # absolute, as the script wrote it ("www.alpha.test.")
    type: str
    content: str
    ttl: int
    domain_id: int

    def data_line(self) -> str:
        """The pipe ABI 5 answer line pdns reads as exactly this record."""
        content = self.content
        if self.type in ("MX", "SRV"):  # priority, tab, the rest (pipebackend.cc PipeBackend::get)
            content = content.replace(" ", "\t", 1)
        return f"DATA\t0\t1\t{self.name}\tIN\t{self.type}\t{self.ttl}\t{self.domain_id}\t{content}\n"


@dataclass(frozen=True)
class Zone:
    name: str  # absolute ("alpha.test.")
    id: int
    records: tuple[Record, ...]

    @property
    def question_name(self) -> str:
        return question_name(self.name)


def question_name(name: str) -> str:
    """A name the way pdns writes it in a question: no trailing dot, root as ".", lower case."""
    return (name.rstrip(".") or ".").lower()


def load_zones(script: Path = ZONE_SCRIPT) -> tuple[list[Zone], Zone]:
    """(the small zones, the big AXFR zone), as bench/zone.lua builds them."""
    import lupa.luajit21 as lupa  # the runtime pdns's Debian build has

    lua = lupa.LuaRuntime()
    lua.execute(script.read_text())
    dump = lua.execute(_DUMP_LUA)
    globals_ = lua.globals()

    def read(lua_zone: object) -> Zone:
        name, zone_id, text = dump(lua_zone)
        records = []
        for line in text.split("\n"):
            rname, rtype, content, ttl, domain_id = line.split("\t")
            records.append(Record(rname, rtype, content, int(ttl), int(domain_id)))
        return Zone(name, int(zone_id), tuple(records))

    small = [read(z) for z in globals_.bench_zones().values()]
    return small, read(globals_.bench_big_zone())


def answer_table(zones: list[Zone]) -> dict[bytes, bytes]:
    """Every answer a reference gives: per name, one per type it has, ANY, and AXFR per zone.

    Questions not in the table get an empty answer (``END``). Names of a zone bigger than
    BIG_ZONE_LOOKUPS records answer at the apex only: the benchmarks ask about their hosts by
    AXFR alone, and 200k prebuilt answers would only slow the references' start.
    """
    table: dict[bytes, bytes] = {}
    for zone in zones:
        by_name: dict[str, list[Record]] = defaultdict(list)
        for record in zone.records:
            name = question_name(record.name)
            if len(zone.records) <= BIG_ZONE_LOOKUPS or name == zone.question_name:
                by_name[name].append(record)
        for name, records in by_name.items():
            for qtype in {r.type for r in records} | {"ANY"}:
                lines = [r.data_line() for r in records if qtype in ("ANY", r.type)]
                table[f"{name}\t{qtype}".encode()] = ("".join(lines) + "END\n").encode()
        listing = "".join(r.data_line() for r in zone.records) + "END\n"
        table[f"{zone.question_name}\tAXFR".encode()] = listing.encode()
    return table


_C_ESCAPES = {ord("\\"): "\\\\", ord('"'): '\\"', ord("\t"): "\\t", ord("\n"): "\\n"}


def _c_literal(text: str) -> str:
    return '"' + text.translate(_C_ESCAPES) + '"'


def _c_lines(data: bytes) -> str:
    """data as adjacent C string literals, one per line of it."""
    return "\n    ".join(_c_literal(line) for line in data.decode("ascii").splitlines(keepends=True))


def write_c_header(table: dict[bytes, bytes], path: Path) -> None:
    entries = [
        f"  {{{_c_literal(key.decode('ascii'))}, {len(table[key])},\n    {_c_lines(table[key])}}},"
        for key in sorted(table)  # strcmp order: the keys are ASCII
    ]
    path.write_text(
        "/* Generated by bench/zonedata.py from bench/zone.lua; do not edit. */\n"
        "static const struct entry TABLE[] = {\n" + "\n".join(entries) + "\n};\n"
    )


def write_reference_data(out: Path) -> tuple[list[Zone], Zone, dict[bytes, bytes]]:
    """Writes out/refdata.marshal and out/refdata.h; returns (small zones, big zone, answer table)."""
    small, big = load_zones()
    table = answer_table([*small, big])
    out.mkdir(parents=True, exist_ok=True)
    (out / "refdata.marshal").write_bytes(marshal.dumps(table))
    write_c_header(table, out / "refdata.h")
    return small, big, table


if __name__ == "__main__":
    zones, big_zone, _ = write_reference_data(BENCH / "out")
    print(
        f"{len(zones)} small zones, {sum(len(z.records) for z in zones)} records; "
        f"{big_zone.name} {len(big_zone.records)} records"
    )
