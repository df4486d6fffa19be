"""The fixture that starts real pdns servers for tests/ (the pdns markers and their skips are
the repository's conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from helpers import FailureWatch
from pdns import PdnsServer


@pytest.fixture
def start_pdns(request: pytest.FixtureRequest) -> Iterator[Callable[..., PdnsServer]]:
    """Factory: ``start_pdns(PdnsServer.native(script))`` starts it and stops it after the test.

    When the test fails, the tail of each server's log is printed (pytest shows it with the
    failure).
    """
    servers: list[PdnsServer] = []
    watch = FailureWatch(request)

    def start(server: PdnsServer) -> PdnsServer:
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
        if watch.failed:
            print(f"{server!r}\n{server.log_tail()}")
        server.cleanup()
