"""The memory LuaJIT's serving loop (``lua/serve.lua``) and lua2pipe's Python threads share.

``lua2pipe.LuaLoopCoprocess`` imports this module when its loop starts, after HELO is answered:
importing ctypes took 2.1-2.4 ms on the 2-CPU test machine, about a tenth of HELO→OK (make
bench's startup row, whose target is 3 times a bare ``python -c pass``).
"""

from __future__ import annotations

import ctypes

#: The latencies the Lua loop keeps until Python folds them into ``Coprocess.latencies``
#: (at every read of it: CMD stats, the metrics file's fold every watchdog poll).
LATENCY_RING = 4096

_libc = ctypes.CDLL(None)
_libc.pthread_mutex_init.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_libc.pthread_mutex_lock.argtypes = [ctypes.c_void_p]
_libc.pthread_mutex_unlock.argtypes = [ctypes.c_void_p]


class LoopShared(ctypes.Structure):
    """lua/serve.lua's lua2pipe_shared, field for field (tests/test_lua_loop.py compares the two
    layouts)."""

    _fields_ = [
        ("lock", ctypes.c_ubyte * 64),  # a pthread_mutex_t (40 bytes on x86-64 glibc, 48 on arm64)
        ("busy_since", ctypes.c_double),  # time.monotonic() when the question in hand began; 0: none
        ("questions", ctypes.c_double),  # counters as doubles: plain numbers on the Lua side
        ("failures", ctypes.c_double),
        ("lists", ctypes.c_double),
        ("latency_count", ctypes.c_double),
        ("chores", ctypes.c_int32),
        ("input_fd", ctypes.c_int32),
        ("output_fd", ctypes.c_int32),
        ("capacity", ctypes.c_int32),
        ("start", ctypes.c_int32),  # the unread input is buffer[start:stop]
        ("stop", ctypes.c_int32),
        ("line_start", ctypes.c_int32),  # the line in hand is buffer[line_start:][:line_length]
        ("line_length", ctypes.c_int32),
        ("buffer", ctypes.c_void_p),
        ("latencies", ctypes.c_double * LATENCY_RING),
    ]


class SharedMutex:
    """The shared pthread mutex as Python's lock: ``Coprocess.answer_lock`` for the watchdog,
    AXFR parts written from Python and off_the_clock. ctypes releases the GIL while it waits."""

    def __init__(self, shared: LoopShared) -> None:
        self.address = ctypes.addressof(shared)
        _libc.pthread_mutex_init(self.address, None)

    def __enter__(self) -> None:
        _libc.pthread_mutex_lock(self.address)

    def __exit__(self, *_exc: object) -> None:
        _libc.pthread_mutex_unlock(self.address)
