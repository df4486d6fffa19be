"""The pytest plugin every test directory shares (tests/, conformance/): the markers of tests
that need a real pdns_server or a complete lua2pipe, and the rule that skips them when what
they need is missing, or fails them under CI=true (tests/pdns.py, skip_or_fail_if_missing).

Markers:
  @pytest.mark.pdns            needs pdns_server; ``pdns("pipe", "lua2")`` also needs those
                               backend modules.
  @pytest.mark.lua2pipe        needs a complete lua2pipe (lua2pipe.py, _lua2pipe/ and lua/*.lua).
"""

from __future__ import annotations

import pytest
from pdns import MARKERS, skip_or_fail_if_missing


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    # tryfirst: decide before any fixture (which would try to start pdns) is set up.
    skip_or_fail_if_missing(item)
