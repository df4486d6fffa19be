"""Shared pytest setup: markers for tests that need a real pdns_server, and a server factory.

Markers:
  @pytest.mark.pdns            needs pdns_server; ``pdns("pipe", "lua2")`` also needs those
                               backend modules.
  @pytest.mark.lua2pipe        needs a complete lua2pipe (lua2pipe.py and lua/*.lua).
Without what they need such tests are skipped, except under CI=true, where they fail: CI
installs everything, so a missing piece there is a broken build, not a reason to skip.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pdns import MARKERS, PdnsServer, skip_or_fail_if_missing


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # tryfirst: decide before any fixture (which would try to start pdns) is set up.
    skip_or_fail_if_missing(item)


class FailureWatch:
    """Tells whether any test failed since it was created (for printing logs at teardown)."""

    def __init__(self, request: pytest.FixtureRequest) -> None:
        self.session = request.session
        self.before = self.session.testsfailed

    @property
    def failed(self) -> bool:
        return self.session.testsfailed > self.before


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
