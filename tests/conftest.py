"""Shared pytest setup: markers for tests that need a real pdns_server, and a server factory.

Markers:
  @pytest.mark.pdns            needs pdns_server; ``pdns("pipe", "lua2")`` also needs those
                               backend modules.
  @pytest.mark.lua2pipe        needs a complete lua2pipe (lua2pipe.py and lua/*.lua).
Without what they need such tests are skipped, except under CI=true, where they fail: CI
installs everything, so a missing piece there is a broken build, not a reason to skip.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pdns import PdnsServer, lua2pipe_missing, pdns_available


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "pdns(*backends): needs a real pdns_server (and these backend modules); "
        "skipped when missing, failed when CI=true",
    )
    config.addinivalue_line(
        "markers",
        "lua2pipe: needs the complete lua2pipe coprocess; skipped when missing, failed when CI=true",
    )


def _missing(item: pytest.Item) -> str | None:
    for marker in item.iter_markers("pdns"):
        if not pdns_available(*marker.args):
            wanted = " with the " + ", ".join(marker.args) + " backend(s)" if marker.args else ""
            return f"pdns_server{wanted} is not installed (make setup installs it as root)"
    if item.get_closest_marker("lua2pipe") is not None:
        return lua2pipe_missing()
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # tryfirst: decide before any fixture (which would try to start pdns) is set up.
    reason = _missing(item)
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


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
