"""``resolve(qname, qtype)`` in a script: a real stub query (dnspython) to a real pdns_server on
loopback, whose answers become DNSResourceRecords as in native AuthLua4."""

from __future__ import annotations

from pathlib import Path

import dns.resolver
import pytest
from pdns import PdnsServer

import lua2pipe

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "geo.lua"
SCRIPT = REPO / "tests" / "scripts" / "protocol.lua"

pytestmark = [pytest.mark.pdns("pipe"), pytest.mark.lua2pipe]


@pytest.fixture
def resolver_at(start_pdns, monkeypatch):
    server = start_pdns(PdnsServer.pipe(EXAMPLE))
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [server.address]
    resolver.port = server.port
    monkeypatch.setattr(dns.resolver, "default_resolver", resolver)
    return server


def test_resolve_returns_the_records_as_drrs(resolver_at):
    script = lua2pipe.Script(str(SCRIPT))
    run = script.lua.eval("""function()
      local rows = {}
      for _, drr in ipairs(resolve("example.org", pdns.MX)) do
        rows[#rows + 1] = table.concat({ drr:qname():toString(), drr:qtype(), drr:ttl(), drr:content() }, " ")
      end
      table.sort(rows)
      return table.concat(rows, "|")
    end""")
    assert run().decode().split("|") == [
        "example.org. 15 3600 10 mail.example.org",
        "example.org. 15 3600 20 mail2.example.org",
    ]


def test_resolve_failure_gives_an_empty_table_and_a_log_line(resolver_at, capsys):
    script = lua2pipe.Script(str(SCRIPT))
    assert script.lua.eval('#resolve("nosuch.invalid", pdns.A)') == 0
    assert 'event="resolve failed"' in capsys.readouterr().err
