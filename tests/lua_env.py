"""Test helper: a lupa runtime with lua/environment.lua installed and a fake host.

The fake host records log lines, answers resolve() from a fixed table and, when asked
to, normalises record content with dnspython (the real wiring lives in lua2pipe.py).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype

ROOT = Path(__file__).resolve().parent.parent
ENVIRONMENT_LUA = ROOT / "lua" / "environment.lua"
CONTENT_LUA = ROOT / "lua" / "content.lua"  # the chunk environment.lua is called with

# A Lua helper: pcall a chunk and hand back (ok, results...) with errors as strings.
_RUN = b"""
return function(code, ...)
  local chunk = assert((loadstring or load)(code, "=test.lua"))
  return pcall(chunk, ...)
end
"""


def parse_content(type_code: int, content: bytes) -> bytes:
    """What pdns's DNSRecordContent::mastermake + getZoneRepresentation do, via dnspython."""
    try:
        rdata = dns.rdata.from_text(
            dns.rdataclass.IN,
            dns.rdatatype.RdataType.make(type_code),
            content.decode(),
            origin=dns.name.root,
            relativize=False,
        )
    except Exception as exc:
        raise ValueError(str(exc) or type(exc).__name__) from None
    return rdata.to_text().encode()


class LuaEnv:
    """One Lua state with the environment installed into its globals."""

    def __init__(self, module: str = "luajit21", *, with_parser: bool = True, seed: int = 42):
        lupa = importlib.import_module(f"lupa.{module}")
        self.lua = lupa.LuaRuntime(encoding=None, unpack_returned_tuples=True)
        self.logs: list[tuple[int, bytes]] = []
        self.resolve_calls: list[tuple[bytes, int]] = []
        self.resolve_rows: list[dict[str, Any]] = []
        content_chunk = self.lua.compile(CONTENT_LUA.read_bytes())
        self.module = self.lua.execute(ENVIRONMENT_LUA.read_bytes(), content_chunk)
        callbacks: dict[bytes, Any] = {
            b"log": self._log,
            b"resolve": self._resolve,
            b"random_seed": seed,
        }
        if with_parser:
            callbacks[b"parse_content"] = parse_content
        self.host = self.lua.table_from(callbacks)
        self.module.install(self.host, self.lua.globals())
        self._run = self.lua.execute(_RUN)

    def _log(self, level, message):
        self.logs.append((None if level is None else int(level), bytes(message)))

    def _resolve(self, qname, qtype):
        self.resolve_calls.append((bytes(qname), int(qtype)))
        rows = [self.lua.table_from({k.encode(): v for k, v in row.items()}) for row in self.resolve_rows]
        return self.lua.table_from(rows)

    def run(self, code: str, *args):
        """Run a chunk; return its results (a tuple when more than one), raise LuaFailed on error."""
        ok, *results = _as_tuple(self._run(code.encode(), *args))
        if not ok:
            raise LuaFailed(_text(results[0]))
        results = [_text(r) for r in results]
        if len(results) == 1:
            return results[0]
        return tuple(results) if results else None

    def error(self, code: str, *args) -> str:
        """Run a chunk that must fail; return the error message."""
        ok, *results = _as_tuple(self._run(code.encode(), *args))
        assert not ok, f"expected an error, got {results!r}"
        return _text(results[0])

    def ev(self, expr: str):
        """Evaluate one Lua expression (possibly several comma-separated values)."""
        return self.run("return " + expr)


class LuaFailed(Exception):
    pass


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)


def _text(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if value is None or isinstance(value, bool | int | float):
        return value
    return value  # Lua tables and objects stay as lupa proxies
