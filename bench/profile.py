"""make profile: where lua2pipe's time goes, per question and per AXFR row.

In process, no pdns, on the question stream `make bench` captured from pdns (captured first if
missing) and bench/zone.lua:

1. A cost ladder, µs per question (best of 3): Coprocess.serve (Python's loop) and
   LuaLoopCoprocess.serve (lua/serve.lua's, LuaJIT's) with more and more of lua2pipe in them
   (input through a pipe, answers to /dev/null), then the dispatcher called from Python and from
   Lua, so each loop, the Python↔Lua crossing and the Lua side each get a figure.
2. LuaJIT's sampling profiler (bench/profile.lua) over the question stream and over AXFRs of
   big.test (100,000 records): the share of samples per source line and VM state.

Usage: python bench/profile.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

import lua2pipe  # noqa: E402

QUESTIONS = BENCH / "out" / "questions.txt"
ZONE_SCRIPT = str(BENCH / "zone.lua")
AXFR_LINE = b"AXFR\t4\tbig.test"
STREAM_REPEATS = 20  # the captured block (about 12,000 questions) this many times a run
RUNS = 3
# The profiler's samples come at the kernel's timer tick (often 4 ms): a few seconds each.
PROFILED_STREAM_REPEATS = 200
PROFILED_AXFRS = 100


def question_lines() -> list[bytes]:
    if not QUESTIONS.exists():
        print("capturing pdns's question stream first (bench/run.py --quick, no benchmarks)")
        skip = ["--skip", "coprocess", "--skip", "e2e", "--skip", "startup"]
        subprocess.run([sys.executable, str(BENCH / "run.py"), "--quick", *skip], check=True)
    return QUESTIONS.read_bytes().splitlines()


def loaded_script() -> lua2pipe.Script:
    script = lua2pipe.Script(ZONE_SCRIPT)
    script.set_abi(5)
    return script


def _write_and_close(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.close(fd)


def serve_micros(
    lines: list[bytes],
    answer: Callable[[lua2pipe.Script], Any] | None = None,
    loop: type[lua2pipe.Coprocess] = lua2pipe.Coprocess,
) -> float:
    """µs per question through ``loop``'s serve (Python's loop unless ``loop`` is
    LuaLoopCoprocess); ``answer(script)`` replaces the dispatcher."""
    data = b"HELO\t5\n" + (b"\n".join(lines) + b"\n") * STREAM_REPEATS
    best = float("inf")
    for _ in range(RUNS):
        script = loaded_script()
        read_end, write_end = os.pipe()
        devnull = os.open(os.devnull, os.O_WRONLY)
        coprocess = loop(script, read_end, devnull, max_query_ms=1000)
        if answer is not None:
            coprocess.lua_answer = answer(script)

        threading.Thread(target=_write_and_close, args=(write_end, data), daemon=True).start()
        began = time.perf_counter()
        coprocess.serve()
        best = min(best, time.perf_counter() - began)
        os.close(read_end)
        os.close(devnull)
    return best / (len(lines) * STREAM_REPEATS) * 1e6


def call_micros(function: Callable[[bytes], Any], lines: list[bytes]) -> float:
    best = float("inf")
    for _ in range(RUNS):
        began = time.perf_counter()
        for _ in range(STREAM_REPEATS // 4):
            for line in lines:
                function(line)
        best = min(best, time.perf_counter() - began)
    return best / (len(lines) * (STREAM_REPEATS // 4)) * 1e6


def lua_loop_micros(script: lua2pipe.Script, lines: list[bytes]) -> float:
    loop = script.lua.eval(
        "function(answer, lines, count, rounds)"
        " local began = os.clock()"
        " for _ = 1, rounds do for i = 1, count do answer(lines[i]) end end"
        " return (os.clock() - began) / (count * rounds) * 1e6 end"
    )
    table = script.lua.table_from(lines)
    return min(loop(script.dispatch.answer, table, len(lines), STREAM_REPEATS // 4) for _ in range(RUNS))


def constant_from_lua(script: lua2pipe.Script) -> Any:
    return script.lua.eval("function() return 'END\\n' end")


def ladder(lines: list[bytes]) -> None:
    script = loaded_script()
    rows = [
        (
            "Coprocess.serve, constant answer from Python: read, frame, clock, lock, write",
            serve_micros(lines, lambda _script: lambda _line: b"END\n"),
        ),
        (
            "  + the crossing: a Lua function returns a constant answer",
            serve_micros(lines, constant_from_lua),
        ),
        (
            "  + the dispatcher and the script: Python's loop (PUC runtimes, --record ...)",
            serve_micros(lines),
        ),
        (
            "LuaLoopCoprocess.serve, constant answer: lua/serve.lua reads, splits, clocks, locks, writes",
            serve_micros(lines, constant_from_lua, lua2pipe.LuaLoopCoprocess),
        ),
        (
            "  + the dispatcher and the script: lua2pipe as it runs on LuaJIT",
            serve_micros(lines, loop=lua2pipe.LuaLoopCoprocess),
        ),
        ("dispatch.answer called from Python (crossing + Lua)", call_micros(script.dispatch.answer, lines)),
        ("dispatch.answer called from Lua (Lua only: dispatcher + script)", lua_loop_micros(script, lines)),
    ]
    print(f"## Cost ladder: {len(lines):,} questions x {STREAM_REPEATS}, best of {RUNS}\n")
    print("| stage | µs/question |\n|---|---|")
    for label, micros in rows:
        print(f"| {label} | {micros:.2f} |")


def axfr_figures(script: lua2pipe.Script) -> None:
    answer = script.dispatch.answer
    answer(AXFR_LINE)  # builds big.test (the script's own first-AXFR cost)
    best = float("inf")
    for _ in range(RUNS):
        began = time.perf_counter()
        text = answer(AXFR_LINE)
        best = min(best, time.perf_counter() - began)
    rows = text.count(b"\n") - 1
    print(f"\n## AXFR of big.test in process: {best * 1e3:.1f} ms, {best / rows * 1e9:.0f} ns a row\n")


def lua_profiles(lines: list[bytes]) -> None:
    script = loaded_script()
    with open(BENCH / "profile.lua", "rb") as source:
        profile = script.lua.execute(source.read())
    table = script.lua.table_from(lines)
    print("## LuaJIT profile: the question stream\n\n```")
    print(profile(script.dispatch.answer, table, len(lines), PROFILED_STREAM_REPEATS).decode())
    print("```")
    axfr_figures(script)
    print(f"## LuaJIT profile: AXFR of big.test, {PROFILED_AXFRS} times\n\n```")
    print(profile(script.dispatch.answer, script.lua.table_from([AXFR_LINE]), 1, PROFILED_AXFRS).decode())
    print("```")


def main() -> int:
    lines = question_lines()
    ladder(lines)
    print()
    lua_profiles(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
