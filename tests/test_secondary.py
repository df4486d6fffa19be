"""The scale-out path of remote mode: a second, real pdns_server (gsqlite3 backend, secondary
mode) receives NOTIFY from a script-served primary (launch=remote running lua2pipe with
tests/scripts/primary.lua, primary=yes), transfers the zone signed as the primary serves it,
and follows a serial change made in the script.

pdns 4.7.3's communicator asks the backend for the zones to notify (getUpdatedMasters, which
lua2pipe derives from dns_get_all_domains: kind PRIMARY, serial not the notified serial) at
start and every xfr-cycle-interval, notifies also-notify, then calls setNotified
(pdns/mastercommunicator.cc CommunicatorClass::masterUpdateCheck).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import dns.rdatatype
import pytest
from pdns import PdnsServer, free_port, pdns_available

SCRIPT = Path(__file__).resolve().parent / "scripts" / "primary.lua"
SCHEMA = Path("/usr/share/doc/pdns-backend-sqlite3/schema.sqlite3.sql")
ZONE = "primary.example."

pytestmark = pytest.mark.skipif(
    not pdns_available("remote", "gsqlite3") or not SCHEMA.exists(),
    reason="pdns_server with the remote and gsqlite3 backends is not installed",
)


def soa_serial(server: PdnsServer) -> int | None:
    """The serial the server answers for the zone, or None while it has none (REFUSED)."""
    answer = server.query(ZONE, "SOA", flags=())
    return answer.answer[0][0].serial if answer.answer else None


def wait_for_serial(server: PdnsServer, serial: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while soa_serial(server) != serial:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def zone_text(server: PdnsServer) -> list[str]:
    """The AXFR as sorted RRsets (the SOA, sent first and last, once)."""
    return sorted({rrset.to_text() for rrset in server.axfr(ZONE)})


def test_a_secondary_receives_notify_and_transfers_the_zone_signed_as_served(tmp_path):
    serial_file = tmp_path / "serial"
    serial_file.write_text("2024010101\n")
    script = tmp_path / "primary.lua"
    script.write_text(f"SERIAL_FILE = {str(serial_file)!r}\n" + SCRIPT.read_text())
    database = tmp_path / "secondary.sqlite3"
    with sqlite3.connect(database) as connection:
        connection.executescript(SCHEMA.read_text())
    primary_port, secondary_port = free_port(), free_port()
    secondary = PdnsServer(
        {
            "launch": "gsqlite3",
            "gsqlite3-database": str(database),
            "gsqlite3-dnssec": "yes",
            "secondary": "yes",
        },
        port=secondary_port,
    )
    secondary.write_config()
    created = secondary.pdnsutil("create-secondary-zone", ZONE, f"127.0.0.1:{primary_port}")
    assert created.returncode == 0, created.stderr
    primary = PdnsServer.remote(
        script,
        # pdns asks getUpdatedMasters every xfr-cycle-interval seconds (60 by default)
        {"primary": "yes", "also-notify": f"127.0.0.1:{secondary_port}", "xfr-cycle-interval": 1},
        port=primary_port,
    )
    # The secondary first, while the primary is down: its own start-up check of the zone fails,
    # so what brings the zone over is the primary's NOTIFY.
    with secondary, primary:
        assert wait_for_serial(secondary, 2024010101, 20), secondary.log_tail() + primary.log_tail(60)
        assert secondary.wait_for_log(f"Received NOTIFY for {ZONE[:-1]}", 1), secondary.log_tail()
        served = zone_text(primary)
        assert any(f" {dns.rdatatype.RRSIG.name} " in rrset for rrset in served)
        assert any(f" {dns.rdatatype.NSEC.name} " in rrset for rrset in served)
        assert zone_text(secondary) == served  # signatures, NSEC chain and all, byte for byte

        serial_file.write_text("2024010102\n")
        assert wait_for_serial(secondary, 2024010102, 30), secondary.log_tail()
        assert zone_text(secondary) == zone_text(primary)
