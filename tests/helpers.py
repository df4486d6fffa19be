"""Helpers the tests share: question lines as pdns writes them, an in-process coprocess, and
a watch for failures (to print logs at teardown)."""

from __future__ import annotations

import os
from typing import Any

import lua2pipe

#: The remote, local and real-remote fields of a question from a client, and of the lookups
#: pdns makes for itself (no packet).
PACKET = "\t192.0.2.1\t192.0.2.53\t192.0.2.0/24"
NO_PACKET = "\t0.0.0.0\t0.0.0.0\t0.0.0.0/0"


def q(name: str, qtype: str = "ANY", zone_id: int = 1, packet: str = PACKET) -> str:
    """A ``Q`` line (pipe ABI 3 and up) without its newline."""
    return f"Q\t{name}\tIN\t{qtype}\t{zone_id}{packet}"


def make_coprocess(script: str | os.PathLike[str], abi: int = 5, lua: str = "luajit") -> lua2pipe.Coprocess:
    """A coprocess serving ``script`` in this process, past HELO at ``abi``: drive it with
    ``answer(line)``."""
    loaded = lua2pipe.Script(str(script), lua=lua)
    loaded.set_abi(abi)
    read_end, write_end = os.pipe()
    return lua2pipe.Coprocess(loaded, read_end, write_end, resume_abi=abi)


class FailureWatch:
    """Tells whether any test failed since it was created (for printing logs at teardown)."""

    def __init__(self, request: Any) -> None:
        self.session = request.session
        self.before = self.session.testsfailed

    @property
    def failed(self) -> bool:
        return self.session.testsfailed > self.before
